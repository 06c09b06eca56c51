"""Fixtures of the dashboard tests: a headless browser, and the controller stories' world.

``world`` and ``gitops_run`` are the controller stories' own fixtures (a fleet remote, the
simulator, ``gitops run`` processes), ``hub`` and ``repo`` the bot's (a fleet repository on
each fake forge), shared rather than rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.conftest import hub, repo  # noqa: F401  (shared fixtures)
from tests.controller.conftest import gitops_run, world  # noqa: F401  (shared fixtures)
from tests.dashboard.browser import Chromium
from tests.gitrepo.conftest import signers  # noqa: F401  (needed by the controller fixtures)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path / "chromium")
    try:
        yield chromium
    finally:
        chromium.close()
