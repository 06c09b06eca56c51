"""Cluster API version discovery over HTTP, outside the observer: the demo's own reads.

Adapter tier: a ``Simulator`` serving both versions (the default) or only v1beta1 (an old
management cluster). The demo stage counts failed Machines from raw objects; it must follow
discovery (v1beta2 when served) and find a failure wherever that version keeps it (v1beta1
``status.failureReason``, v1beta2 ``status.deprecated.v1beta1.failureReason``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.demo.stage import Stage
from gitops.kube import capi
from gitops.kube.client import connect
from gitops.sim import Simulator
from gitops.sim.api.resources import MACHINES_V1BETA2

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"


@pytest.fixture(params=["v1beta2", "v1beta1"])
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(
        EXAMPLE,
        seed=3,
        time_scale=0.01,
        audit_log=tmp_path / "audit.jsonl",
        kubeconfig_out=tmp_path / "kubeconfig",
        capi_version=request.param,
    ).start()
    yield sim
    sim.stop()


def _fail(obj: dict[str, Any]) -> dict[str, Any]:
    """Cluster API's terminal failure, stored (v1beta2) where v1beta2 keeps it."""
    status = obj.setdefault("status", {})
    deprecated = status.setdefault("deprecated", {}).setdefault("v1beta1", {})
    deprecated.update(failureReason="CreateError", failureMessage="no capacity")
    return obj


def test_the_demo_reads_machines_in_the_version_discovery_chooses(
    sim: Simulator, tmp_path: Path
) -> None:
    served = sim.capi_versions
    # The stage reads the simulator's audit log under its root, where the fixture wrote it.
    stage = Stage(EXAMPLE, tmp_path, time_scale=0.01, deadline=time.monotonic() + 60)
    stage.sim = sim
    machines = stage._machines()
    assert machines
    expected = "v1beta2" if "v1beta2" in served else "v1beta1"
    assert {m["apiVersion"] for m in machines} == {f"{capi.GROUP}/{expected}"}
    # The controller's client agrees with the demo.
    management = connect(str(sim.kubeconfig_path))
    try:
        assert capi.version(management) == expected
    finally:
        management.close()

    before = stage.failed_nodes()
    first = machines[0]["metadata"]
    sim.store.mutate(
        "", MACHINES_V1BETA2, first["namespace"], first["name"], _fail, subresource="status"
    )
    assert stage.failed_nodes() == before + 1
