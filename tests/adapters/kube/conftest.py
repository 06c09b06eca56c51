"""The kube adapters' shared fixture: a client of a fresh, empty simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.kube.client import Kube, connect
from gitops.sim import Simulator


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    with Simulator(kubeconfig_out=tmp_path / "kubeconfig") as sim:
        client = connect(sim.kubeconfig_path)
        yield client
        client.close()
