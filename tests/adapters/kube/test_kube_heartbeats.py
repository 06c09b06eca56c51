"""Node heartbeats reach the observer's caches without waking anything that decides.

Adapter tier: an in-process ``Simulator`` of the example fleet whose kubelets report every
Node's status every 5 minutes (3 s at time scale 0.01), observed over HTTP. The Nodes cache
follows them, but a change of heartbeat times alone (kept out of the Node record) moves
neither the observer's generation (which wakes the executor) nor the inventory it reuses.
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
    nodes = observer._workloads[cluster].nodes
    assert nodes is not None
    before_inventory = observer.inventory([cluster])
    generation = observer.generation()
    followed = int(nodes.resource_version)
    deadline = time.monotonic() + 30
    while nodes.quiet_events < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nodes.quiet_events >= 5  # heartbeats arrived...
    assert observer.generation() == generation  # ...and woke nothing
    assert observer.inventory([cluster]) == before_inventory
    # the cache followed them all the same (its records are replaced; they compare equal)
    assert int(nodes.resource_version) > followed
    name = sorted(n.name for n in nodes.objects())[0]

    # and a change that matters still does
    sim.store.mutate(
        cluster, NODES, None, name, lambda o: {**o, "spec": {**o["spec"], "unschedulable": True}}
    )
    deadline = time.monotonic() + 10
    while observer.generation() == generation and time.monotonic() < deadline:
        time.sleep(0.05)
    assert observer.generation() > generation


def test_a_status_report_makes_an_equal_node_record_and_a_real_change_does_not() -> None:
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
    assert translate.node(node) == translate.node(beat)
    assert translate.node(node) != translate.node(not_ready)
    assert translate.node(node) != translate.node({**beat, "spec": {"unschedulable": True}})
