"""The world as a whole: seeding into a store, its physics thread on the real clock, and scale.

The world the other world-side tests build comes from ``tests.sim.helpers.make_world``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitops.fleet import load
from gitops.sim.api.resources import (
    DAEMONSETS,
    MACHINES,
    NODES,
    PDBS,
    PODS,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.api.store import Store
from gitops.sim.world.clock import ManualClock, RealClock
from gitops.sim.world.synthetic import write_fleet
from gitops.sim.world.world import World
from tests.sim.helpers import example_fleet, make_world, ready


def test_seed_creates_the_fleet_in_the_store_with_statuses_computed() -> None:
    world, store, _, audit = make_world()
    fleet = example_fleet()
    assert store.count("", MACHINES) == store.count("", SIMMACHINES) == 122
    # One per pool, and the clone the topology controller made for prod-us-1's gpu-a100 worker.
    assert store.count("", SIMMACHINETEMPLATES) == len(fleet.pools()) + 1 == 13
    assert fleet.clusters  # the loop below has clusters to check
    for cluster in fleet.clusters:
        assert store.count(cluster.name, NODES) == sum(p.replicas for p in cluster.spec.node_pools)
        assert store.count(cluster.name, DAEMONSETS) == 1
        pdbs = store.list(cluster.name, PDBS)[0]
        assert pdbs, f"no PodDisruptionBudget seeded in {cluster.name}"
        for pdb in pdbs:
            # computed by the world before anything is served, not left for a client to wait on
            assert pdb["status"]["observedGeneration"] == 1
            assert pdb["status"]["expectedPods"] > 0
    # Seeding is history, not news: no state-change lines for what was already there.
    assert audit.changes == []
    assert world.physics.errors == []


def test_owner_references_point_at_the_created_owners() -> None:
    _, store, _, _ = make_world()
    uids = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["uid"]
        for rtype in (DAEMONSETS,)
        for o in store.list("canary-eu-1", rtype)[0]
    }
    pods = store.list("canary-eu-1", PODS, "kube-system")[0]
    assert pods and uids  # DaemonSet pods, and their DaemonSet
    for pod in pods:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref["uid"] == uids[(ref["kind"], ref["name"])]


def test_physics_thread_runs_on_the_real_clock_with_the_time_scale() -> None:
    """With the real clock, ``start`` runs physics on its own thread (latencies × time scale)."""
    store = Store()
    world = World(store, example_fleet(), time_scale=0.002, clock=RealClock())
    world.seed()
    world.start()
    try:
        node = "canary-eu-1-general-7h4kq"
        tmpl = store.get("", SIMMACHINETEMPLATES, "canary-eu-1", "general")
        store.create(
            "",
            MACHINES,
            {
                "metadata": {
                    "name": node,
                    "namespace": "canary-eu-1",
                    "labels": {"node.cluster.x-k8s.io/pool": "general"},
                },
                "spec": {
                    "clusterName": "canary-eu-1",
                    "bootstrap": {"dataSecretName": "b"},
                    "infrastructureRef": {
                        "apiVersion": tmpl["apiVersion"],
                        "kind": "SimMachineTemplate",
                        "name": "general",
                    },
                },
            },
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = store.list("canary-eu-1", NODES, field_selector=f"metadata.name={node}")[0]
            if found and ready(found[0]):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the node never turned Ready on the physics thread")
    finally:
        world.stop()
    assert world.latencies.provision == pytest.approx(20 * 0.002)


def test_bad_settings_are_refused_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="time-scale"):
        World(Store(), example_fleet(), time_scale=0)
    with pytest.raises(ValueError, match="initial"):
        World(Store(), example_fleet(), initial="latest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown kind 'kernal'"):
        World(Store(), example_fleet(), drift="kernal:1")
    with pytest.raises(ValueError, match="boot failure rate"):
        World(Store(), example_fleet(), boot_failure_rate=1.5)


@pytest.mark.slow
def test_a_ten_cluster_five_hundred_node_fleet_seeds_every_node_and_machine(
    tmp_path: Path,
) -> None:
    # How long it takes is measured by bench/bench_sim.py, not bounded here: a wall-clock
    # ceiling would fail on a slow or busy machine with nothing wrong.
    fleet = load(write_fleet(tmp_path / "fleet", clusters=10, nodes_per_cluster=500))
    store = Store()
    world = World(store, fleet, clock=ManualClock())
    world.seed()
    assert sum(store.count(c.name, NODES) for c in fleet.clusters) == 5000
    assert store.count("", MACHINES) == 5000
