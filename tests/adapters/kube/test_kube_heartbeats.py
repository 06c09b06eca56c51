"""Node heartbeats reach the observer's caches without waking anything that decides.

Adapter tier: an in-process ``Simulator`` of the example fleet whose kubelets report every
Node's status every 5 minutes (3 s at time scale 0.01), observed over HTTP. The Node objects
in the caches stay current, but a change of heartbeat times alone moves neither the
observer's generation (which wakes the executor) nor the translation it reuses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.fleet import load
from gitops.kube import translate
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.sim import Simulator
from gitops.sim.api.resources import NODES
from tests.conftest import EXAMPLE


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[tuple[Simulator, Observer]]:
    fleet = load(EXAMPLE)
    with Simulator(EXAMPLE, time_scale=0.01, kubeconfig_out=tmp_path / "kubeconfig") as sim:
        observer = Observer(connect(sim.kubeconfig_path))
        observer.track((c.name, c.namespace) for c in fleet.clusters)
        assert observer.wait_synced(30)
        try:
            yield sim, observer
        finally:
            observer.stop()


def test_heartbeat_only_changes_do_not_wake_the_observer(
    observed: tuple[Simulator, Observer],
) -> None:
    sim, observer = observed
    cluster = sorted(observer._workloads)[0]  # the caches' own counters
    nodes = observer._workloads[cluster].caches["nodes"]
    before_inventory = observer.inventory([cluster])
    generation = observer.generation()
    deadline = time.monotonic() + 30
    while nodes.quiet_events < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nodes.quiet_events >= 5  # heartbeats arrived...
    assert observer.generation() == generation  # ...and woke nothing
    assert observer.inventory([cluster]) == before_inventory
    # the cached Nodes are current all the same
    name = sorted(o["metadata"]["name"] for o in nodes.objects())[0]
    live = sim.store.get(cluster, NODES, None, name)
    cached = nodes.get("", name)
    assert cached is not None
    assert int(cached["metadata"]["resourceVersion"]) <= int(live["metadata"]["resourceVersion"])

    # and a change that matters still does
    sim.store.mutate(
        cluster, NODES, None, name, lambda o: {**o, "spec": {**o["spec"], "unschedulable": True}}
    )
    deadline = time.monotonic() + 10
    while observer.generation() == generation and time.monotonic() < deadline:
        time.sleep(0.05)
    assert observer.generation() > generation


def test_heartbeat_only_tells_a_status_report_from_a_real_change() -> None:
    node = {
        "metadata": {"name": "n1", "resourceVersion": "5"},
        "spec": {},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}
            ]
        },
    }
    beat = {
        **node,
        "metadata": {"name": "n1", "resourceVersion": "9"},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:05:00Z"}
            ]
        },
    }
    not_ready = {
        **beat,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "lastHeartbeatTime": "2026-01-01T00:05:00Z"}
            ]
        },
    }
    assert translate.heartbeat_only(node, beat)
    assert not translate.heartbeat_only(node, not_ready)
    assert not translate.heartbeat_only(node, {**beat, "spec": {"unschedulable": True}})
