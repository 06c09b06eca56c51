"""The kubelet's share of the physics on virtual time: graceful pod deletion, node heartbeats
and Leases, and Cluster API draining a Machine's node before deleting it.

Everything runs on a seeded world over a ``ManualClock`` (``tests.sim.test_world.make_world``).
"""

from __future__ import annotations

from typing import Any

import pytest

from gitops.fleet.wellknown import MACHINE_ANNOTATION
from gitops.sim.api.resources import LEASES, MACHINES, NODES, PDBS, PODS
from gitops.sim.api.store import Event, Store
from gitops.sim.world.kubelet import LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE
from gitops.sim.world.machines import EXCLUDE_DRAIN_ANNOTATION
from tests.sim.helpers import CLUSTER, NS, machine_or_none, make_world, node_or_none, pods_on

Obj = dict[str, Any]


def shop_pod(store: Store, app: str = "checkout") -> Obj:
    return store.list(CLUSTER, PODS, "shop", label_selector=f"app={app}")[0][0]


def pod_or_none(store: Store, name: str) -> Obj | None:
    found = store.list(CLUSTER, PODS, "shop", field_selector=f"metadata.name={name}")[0]
    return found[0] if found else None


def live(store: Store, app: str) -> list[Obj]:
    pods = store.list(CLUSTER, PODS, "shop", label_selector=f"app={app}")[0]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


# -- graceful pod deletion ---------------------------------------------------------------------


def test_a_deleted_pod_stays_terminating_for_its_grace_period_then_its_kubelet_removes_it() -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    pod = shop_pod(store)
    name, grace = pod["metadata"]["name"], pod["spec"]["terminationGracePeriodSeconds"]
    assert grace == 2  # seeded pods use a short grace period

    store.delete(CLUSTER, PODS, "shop", name)
    clock.advance(0)
    going = pod_or_none(store, name)
    assert going is not None
    assert going["metadata"]["deletionGracePeriodSeconds"] == grace
    assert going["metadata"]["deletionTimestamp"]
    assert going["status"]["phase"] == "Running"  # Terminating, still running
    assert len(live(store, "checkout")) == 6  # its ReplicaSet replaced it at once

    clock.advance(grace - 0.01)
    assert pod_or_none(store, name) is not None
    clock.advance(0.01)
    assert pod_or_none(store, name) is None
    assert [c["name"] for c in audit.events("pod-terminated")] == [name]


def test_delete_options_set_the_grace_period_a_later_delete_shortens_it_and_zero_is_at_once() -> (
    None
):
    _, store, clock, _ = make_world(heartbeats=False)
    first, second = [p["metadata"]["name"] for p in live(store, "checkout")[:2]]

    store.delete(CLUSTER, PODS, "shop", first, grace_period=60)
    clock.advance(10)
    assert pod_or_none(store, first)["metadata"]["deletionGracePeriodSeconds"] == 60  # type: ignore[index]
    store.delete(CLUSTER, PODS, "shop", first, grace_period=120)  # never lengthened
    assert pod_or_none(store, first)["metadata"]["deletionGracePeriodSeconds"] == 60  # type: ignore[index]
    store.delete(CLUSTER, PODS, "shop", first, grace_period=5)
    assert pod_or_none(store, first)["metadata"]["deletionGracePeriodSeconds"] == 5  # type: ignore[index]
    clock.advance(5)
    assert pod_or_none(store, first) is None

    store.delete(CLUSTER, PODS, "shop", second, grace_period=0)
    assert pod_or_none(store, second) is None


def test_the_grace_period_is_scaled_by_the_time_scale() -> None:
    _, store, clock, _ = make_world(heartbeats=False, time_scale=0.5, pod_grace_seconds=30)
    name = shop_pod(store)["metadata"]["name"]
    store.delete(CLUSTER, PODS, "shop", name)
    assert pod_or_none(store, name)["metadata"]["deletionGracePeriodSeconds"] == 30  # type: ignore[index]
    clock.advance(14.9)
    assert pod_or_none(store, name) is not None
    clock.advance(0.1)
    assert pod_or_none(store, name) is None


def test_an_evicted_pod_terminates_gracefully_and_no_longer_counts_as_healthy() -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    name = shop_pod(store)["metadata"]["name"]
    store.post_subresource(CLUSTER, PODS, "shop", name, "eviction", {})
    assert pod_or_none(store, name)["metadata"]["deletionTimestamp"]  # type: ignore[index]
    assert [c["name"] for c in audit.events("pod-evicted")] == [name]
    budget = store.get(CLUSTER, PDBS, "shop", "checkout")["status"]
    assert budget["currentHealthy"] == 5 and budget["disruptionsAllowed"] == 0
    clock.advance(2)
    assert pod_or_none(store, name) is None


# -- heartbeats and Leases ---------------------------------------------------------------------


def test_every_node_renews_its_lease_and_reports_its_status_periodically() -> None:
    _, store, clock, _ = make_world()
    nodes = {n["metadata"]["name"]: n for n in store.list(CLUSTER, NODES)[0]}
    assert nodes
    changes: list[Event] = []
    store.subscribe(lambda ev: changes.append(ev) if ev.cluster == CLUSTER else None)

    clock.advance(10)  # one renewal period
    leases = {
        lease["metadata"]["name"]: lease
        for lease in store.list(CLUSTER, LEASES, NODE_LEASE_NAMESPACE)[0]
    }
    assert set(leases) == set(nodes)
    for name, lease in leases.items():
        assert lease["spec"]["holderIdentity"] == name
        assert lease["spec"]["leaseDurationSeconds"] == LEASE_DURATION_SECONDS
        owner = lease["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"]) == ("Node", nodes[name]["metadata"]["uid"])
    renewed = {n: lease["spec"]["renewTime"] for n, lease in leases.items()}

    clock.advance(300)  # nodeStatusReportFrequency
    after = {n["metadata"]["name"]: n for n in store.list(CLUSTER, NODES)[0]}
    for name, node in after.items():
        before = [c["lastHeartbeatTime"] for c in nodes[name]["status"]["conditions"]]
        now = [c["lastHeartbeatTime"] for c in node["status"]["conditions"]]
        assert all(b < n for b, n in zip(before, now, strict=True))
    leases_now = store.list(CLUSTER, LEASES, NODE_LEASE_NAMESPACE)[0]
    assert all(
        lease["spec"]["renewTime"] > renewed[lease["metadata"]["name"]] for lease in leases_now
    )
    node_updates = [ev for ev in changes if ev.resource is NODES and ev.type == "MODIFIED"]
    assert len(node_updates) >= len(
        nodes
    )  # a 5-minute watch of Nodes sees every node at least once


def test_heartbeats_scale_with_time_and_stop_with_their_node() -> None:
    _, store, clock, _ = make_world(time_scale=0.1)
    clock.advance(1.0)  # 10 s scaled: every node has renewed once
    node = store.list(CLUSTER, NODES)[0][0]
    name = node["metadata"]["name"]
    assert store.get(CLUSTER, LEASES, NODE_LEASE_NAMESPACE, name)

    store.delete(CLUSTER, NODES, None, name)
    clock.advance(1.0)
    assert name not in {x["metadata"]["name"] for x in store.list(CLUSTER, LEASES)[0]}


def test_heartbeats_can_be_turned_off() -> None:
    _, store, clock, _ = make_world(heartbeats=False)
    rv = store.resource_version
    clock.advance(600)
    assert store.list(CLUSTER, LEASES, NODE_LEASE_NAMESPACE)[0] == []
    assert store.resource_version == rv


# -- Cluster API draining a deleted Machine's node ---------------------------------------------


def blocked_machine(store: Store) -> tuple[str, str, str]:
    """A Machine whose node holds a pod no budget lets go: (machine, node, pod)."""
    pod = shop_pod(store)
    store.mutate(
        CLUSTER,
        PDBS,
        "shop",
        "checkout",
        lambda o: {**o, "spec": {"selector": o["spec"]["selector"], "minAvailable": 6}},
    )
    node = pod["spec"]["nodeName"]
    machine = store.get(CLUSTER, NODES, None, node)["metadata"]["annotations"][MACHINE_ANNOTATION]
    return machine, node, pod["metadata"]["name"]


def test_a_machine_whose_node_has_a_pod_its_budget_protects_waits_for_the_drain() -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    machine, node, pod = blocked_machine(store)
    store.delete("", MACHINES, NS, machine)
    clock.advance(3600)  # an hour of drain passes, every one refused
    assert machine_or_none(store, machine) is not None
    assert node_or_none(store, node) is not None
    assert pod_or_none(store, pod) is not None
    assert not pod_or_none(store, pod)["metadata"].get("deletionTimestamp")  # type: ignore[index]
    assert store.get(CLUSTER, NODES, None, node)["spec"]["unschedulable"] is True
    assert pod not in {c["name"] for c in audit.events("pod-evicted")}

    store.mutate(
        CLUSTER, PDBS, "shop", "checkout", lambda o: {**o, "spec": {**o["spec"], "minAvailable": 0}}
    )
    clock.advance(20 + 2)  # the next drain pass evicts it; its grace period
    assert pod_or_none(store, pod) is None
    assert node_or_none(store, node) is not None
    clock.advance(18 + 5)  # the pass after finds the node empty; deprovisioning
    assert node_or_none(store, node) is None
    assert machine_or_none(store, machine) is None


def test_node_drain_timeout_ends_a_blocked_drain() -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    machine, node, pod = blocked_machine(store)
    store.mutate(
        "", MACHINES, NS, machine, lambda o: {**o, "spec": {**o["spec"], "nodeDrainTimeout": "2m"}}
    )
    store.delete("", MACHINES, NS, machine)
    clock.advance(100)
    assert node_or_none(store, node) is not None
    clock.advance(20 + 5)  # the first pass after two minutes gives up, then deprovisioning
    assert node_or_none(store, node) is None
    assert machine_or_none(store, machine) is None
    assert pod not in {c["name"] for c in audit.events("pod-evicted")}  # never evicted


def test_the_exclude_node_draining_annotation_skips_the_drain() -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    machine, node, _ = blocked_machine(store)
    store.mutate(
        "",
        MACHINES,
        NS,
        machine,
        lambda o: {
            **o,
            "metadata": {
                **o["metadata"],
                "annotations": {
                    **(o["metadata"].get("annotations") or {}),
                    EXCLUDE_DRAIN_ANNOTATION: "",
                },
            },
        },
    )
    store.delete("", MACHINES, NS, machine)
    clock.advance(5)  # deprovisioning only
    assert node_or_none(store, node) is None
    assert machine_or_none(store, machine) is None
    assert audit.events("pod-evicted") == []


@pytest.mark.parametrize("kind", ["DaemonSet", "mirror"])
def test_the_drain_leaves_daemonset_and_mirror_pods(kind: str) -> None:
    _, store, clock, audit = make_world(heartbeats=False)
    pod = shop_pod(store)
    node = pod["spec"]["nodeName"]
    if kind == "mirror":
        for p in pods_on(store, node):
            if p["metadata"]["namespace"] == "shop":
                store.delete(CLUSTER, PODS, "shop", p["metadata"]["name"], grace_period=0)
        store.create(
            CLUSTER,
            PODS,
            {
                "metadata": {
                    "name": f"static-{node}",
                    "namespace": "kube-system",
                    "annotations": {"kubernetes.io/config.mirror": "x"},
                },
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running"},
            },
        )
    skipped = {
        p["metadata"]["name"]
        for p in pods_on(store, node)
        if p["metadata"]["namespace"] == "kube-system"
        and (kind == "mirror") == p["metadata"]["name"].startswith("static-")
    }
    assert skipped
    machine = store.get(CLUSTER, NODES, None, node)["metadata"]["annotations"][MACHINE_ANNOTATION]
    store.delete("", MACHINES, NS, machine)
    clock.advance(60)
    assert machine_or_none(store, machine) is None
    assert not {c["name"] for c in audit.events("pod-evicted")} & skipped
    assert {c["name"] for c in audit.events("pod-deleted")} >= skipped  # went with the node
