"""Fixtures of the dashboard's browser stories: a headless browser, and the controller's world.

``world`` and ``gitops_run`` are the controller tests' own fixtures (a fleet remote, the
simulator, ``gitops run`` processes), shared rather than rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.controller.conftest import gitops_run, world  # noqa: F401  (shared fixtures)
from tests.adapters.gitrepo.conftest import signers  # noqa: F401  (needed by the controller fixtures)
from tests.stories.dashboard.browser import Chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path / "chromium")
    try:
        yield chromium
    finally:
        chromium.close()
