"""Physics on virtual time: machines provision, nodes register and boot, pods move, PDBs count.

Everything runs in-process on a store and a ``ManualClock``: ``clock.advance(s)`` runs what is
due, in order, so each test states exactly when things happen and never sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitops.fleet.wellknown import MACHINE_ANNOTATION, POOL_LABEL, ZONE_LABEL
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    DEPLOYMENTS,
    MACHINES,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.api.store import Store
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import Latencies
from tests.sim.test_world import make_world, ready

Obj = dict[str, Any]
CLUSTER, NS = "canary-eu-1", "canary-eu-1"
INFRA_API = "infrastructure.cluster.x-k8s.io/v1alpha1"


def new_machine(
    name: str,
    *,
    infra_kind: str = "SimMachineTemplate",
    infra_name: str = "general",
    pool: str = "general",
    zone: str = "eu-west-1b",
    labels: dict[str, str] | None = None,
) -> Obj:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "cluster.x-k8s.io/cluster-name": CLUSTER,
                POOL_LABEL: pool,
                **(labels or {}),
            },
            "finalizers": ["machine.cluster.x-k8s.io"],
        },
        "spec": {
            "clusterName": CLUSTER,
            "version": "v1.31.4",
            "bootstrap": {"dataSecretName": f"{CLUSTER}-{pool}-bootstrap"},
            "infrastructureRef": {
                "apiVersion": INFRA_API,
                "kind": infra_kind,
                "name": infra_name,
                "namespace": NS,
            },
            "failureDomain": zone,
        },
    }


def clone_like_a_machineset(store: Store, name: str, source: str) -> None:
    """What gitops.providers.clusterapi does: the template's spec, the new image source set."""
    template = store.get("", SIMMACHINETEMPLATES, NS, "general")
    spec = dict(template["spec"]["template"]["spec"])
    spec["image"] = source
    store.create(
        "",
        SIMMACHINES,
        {
            "apiVersion": INFRA_API,
            "kind": "SimMachine",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        },
    )


def node_or_none(store: Store, name: str, cluster: str = CLUSTER) -> Obj | None:
    found = store.list(cluster, NODES, field_selector=f"metadata.name={name}")[0]
    return found[0] if found else None


def machine_or_none(store: Store, name: str) -> Obj | None:
    found = store.list("", MACHINES, NS, field_selector=f"metadata.name={name}")[0]
    return found[0] if found else None


def pods_on(store: Store, node: str, cluster: str = CLUSTER) -> list[Obj]:
    return store.list(cluster, PODS, field_selector=f"spec.nodeName={node}")[0]


def test_a_machine_provisions_registers_its_node_then_the_node_turns_ready() -> None:
    world, store, clock, audit = make_world()
    store.create(
        "",
        MACHINES,
        new_machine(
            "canary-eu-1-general-aaaaa", labels={"node.cluster.x-k8s.io/rack": "r7", "team": "x"}
        ),
    )
    clock.advance(0)
    machine = store.get("", MACHINES, NS, "canary-eu-1-general-aaaaa")
    assert machine["status"]["phase"] == "Provisioning"
    sim = store.get("", SIMMACHINES, NS, "canary-eu-1-general-aaaaa")  # cloned from the template
    assert sim["metadata"]["ownerReferences"][0]["uid"] == machine["metadata"]["uid"]

    clock.advance(19.9)
    assert node_or_none(store, "canary-eu-1-general-aaaaa") is None
    clock.advance(0.1)  # provisioning latency (20 s) reached
    node = node_or_none(store, "canary-eu-1-general-aaaaa")
    assert node is not None and not ready(node)
    labels = node["metadata"]["labels"]
    assert labels[ZONE_LABEL] == "eu-west-1b"
    assert labels[POOL_LABEL] == "general"
    assert labels["node-role.acme.io/general"] == "true"  # the pool's own labels
    assert labels["node.cluster.x-k8s.io/rack"] == "r7"  # synced from the Machine's domain
    assert "team" not in labels  # other Machine labels are not
    assert node["metadata"]["annotations"][MACHINE_ANNOTATION] == "canary-eu-1-general-aaaaa"
    assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["nodeInfo"]["osImage"] == "Talos (v1.9.2)"
    machine = store.get("", MACHINES, NS, "canary-eu-1-general-aaaaa")
    assert machine["status"]["phase"] == "Running"
    assert machine["status"]["nodeRef"]["name"] == "canary-eu-1-general-aaaaa"
    assert (
        machine["spec"]["providerID"]
        == node["spec"]["providerID"]
        == "sim://canary-eu-1/canary-eu-1-general-aaaaa"
    )

    clock.advance(9.9)
    assert not ready(store.get(CLUSTER, NODES, None, "canary-eu-1-general-aaaaa"))
    clock.advance(0.1)  # boot latency (10 s) reached
    node = store.get(CLUSTER, NODES, None, "canary-eu-1-general-aaaaa")
    assert ready(node)
    assert "taints" not in node["spec"]
    assert [c["event"] for c in audit.changes] == [
        "machine-created",
        "node-registered",
        "node-ready",
    ]
    assert world.physics.errors == []


def test_the_node_boots_the_source_its_simmachine_names_not_a_stale_image_name() -> None:
    """The provider clones the template (imageName: the old image) and sets the new source."""
    _, store, clock, _ = make_world(initial="previous")
    clone_like_a_machineset(
        store, "canary-eu-1-general-bbbbb", "ghcr.io/siderolabs/installer:v1.9.2"
    )
    store.create(
        "",
        MACHINES,
        new_machine(
            "canary-eu-1-general-bbbbb",
            infra_kind="SimMachine",
            infra_name="canary-eu-1-general-bbbbb",
        ),
    )
    clock.advance(30)
    node = store.get(CLUSTER, NODES, None, "canary-eu-1-general-bbbbb")
    assert node["status"]["nodeInfo"]["kernelVersion"] == "6.12.9-talos"
    assert ready(node)
    sim = store.get("", SIMMACHINES, NS, "canary-eu-1-general-bbbbb")
    assert (
        sim["status"]["initialization"] == {"provisioned": True}  # the v1beta2 contract
        and sim["spec"]["providerID"] == node["spec"]["providerID"]
    )


def test_a_machine_waits_for_its_simmachine_then_provisions() -> None:
    _, store, clock, _ = make_world()
    store.create("", MACHINES, new_machine("m-late", infra_kind="SimMachine", infra_name="m-late"))
    clock.advance(60)
    assert store.get("", MACHINES, NS, "m-late")["status"]["phase"] == "Pending"
    assert node_or_none(store, "m-late") is None
    clone_like_a_machineset(store, "m-late", "ghcr.io/siderolabs/installer:v1.9.2")
    clock.advance(30)
    assert ready(store.get(CLUSTER, NODES, None, "m-late"))


def test_unknown_images_and_providers_fail_the_machine() -> None:
    _, store, clock, _ = make_world()
    clone_like_a_machineset(store, "m-bad-image", "quay.io/nobody/os:v0")
    store.create(
        "", MACHINES, new_machine("m-bad-image", infra_kind="SimMachine", infra_name="m-bad-image")
    )
    store.create("", MACHINES, new_machine("m-aws", infra_kind="AWSMachine", infra_name="x"))
    clock.advance(30)
    bad = store.get("", MACHINES, NS, "m-bad-image")["status"]
    assert bad["phase"] == "Failed" and "quay.io/nobody/os:v0" in bad["failureMessage"]
    aws = store.get("", MACHINES, NS, "m-aws")["status"]
    assert aws["phase"] == "Failed" and aws["failureReason"] == "UnsupportedInfrastructure"
    assert node_or_none(store, "m-bad-image") is None


def test_deleting_a_machine_drains_its_node_through_the_budgets_then_removes_it() -> None:
    _, store, clock, audit = make_world()
    pods = store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0]
    victim = pods[0]["spec"]["nodeName"]
    moving = {
        p["metadata"]["name"]
        for p in pods_on(store, victim)
        if p["metadata"]["namespace"] == "shop"
    }
    machine = store.get(CLUSTER, NODES, None, victim)["metadata"]["annotations"][MACHINE_ANNOTATION]

    store.delete("", MACHINES, NS, machine)
    clock.advance(0)
    status = store.get("", MACHINES, NS, machine)["status"]
    assert status["phase"] == "Deleting"
    assert status["deletion"]["nodeDrainStartTime"]
    draining = [c for c in status["conditions"] if c["type"] == "DrainingSucceeded"]
    assert [(c["status"], c["reason"]) for c in draining] == [("False", "Draining")]
    assert store.get(CLUSTER, NODES, None, victim)["spec"]["unschedulable"] is True
    evicted = {c["name"] for c in audit.events("pod-evicted")}
    assert evicted and evicted <= moving  # through the budgets: checkout lets one go at a time
    terminating = [p for p in pods_on(store, victim) if p["metadata"]["name"] in evicted]
    assert terminating and all(p["metadata"]["deletionTimestamp"] for p in terminating)

    for _ in range(30):  # drain passes every 20 s, until the node is empty
        if machine_or_none(store, machine) is None:
            break
        clock.advance(5)
    assert node_or_none(store, victim) is None
    assert machine_or_none(store, machine) is None  # finalizer removed: gone
    assert store.list("", SIMMACHINES, NS, field_selector=f"metadata.name={machine}")[0] == []
    assert {c["name"] for c in audit.events("pod-evicted")} == moving  # none deleted outright
    events = [c["event"] for c in audit.changes]
    last_eviction = max(i for i, e in enumerate(events) if e == "pod-terminated")
    assert last_eviction < events.index("node-removed") < events.index("machine-deleted")
    shop = store.list(CLUSTER, PODS, "shop")[0]
    assert len(shop) == 10
    assert all(p["status"]["phase"] == "Running" and p["spec"]["nodeName"] != victim for p in shop)
    assert not moving & {p["metadata"]["name"] for p in shop}  # new pods, new names


def test_a_boot_failure_leaves_a_node_that_never_turns_ready() -> None:
    _, store, clock, audit = make_world(boot_failure_rate=1.0)
    store.create("", MACHINES, new_machine("m-broken"))
    clock.advance(3600)
    node = store.get(CLUSTER, NODES, None, "m-broken")
    assert not ready(node)
    assert [c["node"] for c in audit.events("node-boot-failed")] == ["m-broken"]
    assert audit.events("node-ready") == []


def test_boot_failures_are_drawn_from_the_seed() -> None:
    def failed(seed: int) -> list[str]:
        _, store, clock, audit = make_world(seed=seed, boot_failure_rate=0.5)
        for i in range(12):
            store.create("", MACHINES, new_machine(f"m-{i:02d}"))
        clock.advance(60)
        return sorted(c["node"] for c in audit.events("node-boot-failed"))

    first = failed(1)
    assert first == failed(1)
    assert 0 < len(first) < 12
    assert first != failed(2)


def test_the_time_scale_multiplies_every_latency() -> None:
    world, store, clock, _ = make_world(
        time_scale=0.1, latencies=Latencies(provision=20, boot=10, deprovision=5, reschedule=3)
    )
    assert world.latencies == Latencies(
        provision=2.0, boot=1.0, deprovision=0.5, reschedule=pytest.approx(0.3)
    )
    store.create("", MACHINES, new_machine("m-fast"))
    clock.advance(1.99)
    assert node_or_none(store, "m-fast") is None
    clock.advance(0.01)
    assert node_or_none(store, "m-fast") is not None
    clock.advance(1.0)
    assert ready(store.get(CLUSTER, NODES, None, "m-fast"))


def test_daemonset_pods_follow_nodes() -> None:
    _, store, clock, _ = make_world()
    store.create("", MACHINES, new_machine("m-ds"))
    clock.advance(20)
    (agent,) = pods_on(store, "m-ds")
    assert agent["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert agent["status"]["phase"] == "Pending"  # the node is not Ready yet
    clock.advance(10)
    assert pods_on(store, "m-ds")[0]["status"]["phase"] == "Running"
    store.delete("", MACHINES, NS, "m-ds")
    clock.advance(5)
    assert pods_on(store, "m-ds") == []
    assert store.list(CLUSTER, PODS, "kube-system")[0].__len__() == store.count(CLUSTER, NODES)


def test_cordons_are_audited_and_tainted_as_the_node_lifecycle_controller_does() -> None:
    _, store, clock, audit = make_world()
    name = store.list(CLUSTER, NODES)[0][0]["metadata"]["name"]

    def cordon(value: bool) -> None:
        def patch(o: Obj) -> Obj:
            o["spec"]["unschedulable"] = value
            return o

        store.mutate(CLUSTER, NODES, None, name, patch)
        clock.advance(0)

    cordon(True)
    taints = store.get(CLUSTER, NODES, None, name)["spec"]["taints"]
    assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in taints
    cordon(False)
    taints = store.get(CLUSTER, NODES, None, name)["spec"].get("taints") or []
    assert all(t["key"] != "node.kubernetes.io/unschedulable" for t in taints)
    assert [(c["event"], c["node"]) for c in audit.changes] == [
        ("node-cordoned", name),
        ("node-uncordoned", name),
    ]


def cordon_all_general_but(store: Store, keep: str | None) -> None:
    for node in store.list(CLUSTER, NODES, label_selector=f"{POOL_LABEL}=general")[0]:
        if node["metadata"]["name"] != keep:

            def patch(o: Obj) -> Obj:
                o["spec"]["unschedulable"] = True
                return o

            store.mutate(CLUSTER, NODES, None, node["metadata"]["name"], patch)


def test_replacement_pods_go_only_to_schedulable_nodes_they_tolerate() -> None:
    _, store, clock, _ = make_world()
    general = sorted(
        n["metadata"]["name"]
        for n in store.list(CLUSTER, NODES, label_selector=f"{POOL_LABEL}=general")[0]
    )
    keep = general[-1]
    cordon_all_general_but(store, keep)
    clock.advance(0)
    for pod in store.list(CLUSTER, PODS, "shop")[0]:
        if pod["spec"]["nodeName"] != keep:
            store.delete(CLUSTER, PODS, "shop", pod["metadata"]["name"])
    clock.advance(3)
    shop = store.list(CLUSTER, PODS, "shop")[0]
    assert len(shop) == 10
    assert {p["spec"]["nodeName"] for p in shop} == {keep}  # not the tainted system nodes either


def test_a_pod_no_node_can_take_waits_pending_until_one_can() -> None:
    _, store, clock, audit = make_world()
    cordon_all_general_but(store, None)
    clock.advance(0)
    victim = store.list(CLUSTER, PODS, "shop", label_selector="app=frontend")[0][0]
    store.delete(CLUSTER, PODS, "shop", victim["metadata"]["name"])
    clock.advance(60)
    pending = [p for p in store.list(CLUSTER, PODS, "shop")[0] if p["status"]["phase"] == "Pending"]
    assert len(pending) == 1 and "nodeName" not in pending[0]["spec"]
    assert pending[0]["status"]["conditions"][0]["reason"] == "Unschedulable"
    first = store.list(CLUSTER, NODES, label_selector=f"{POOL_LABEL}=general")[0][0]["metadata"][
        "name"
    ]

    def uncordon(o: Obj) -> Obj:
        o["spec"]["unschedulable"] = False
        return o

    store.mutate(CLUSTER, NODES, None, first, uncordon)
    clock.advance(0)
    bound = store.get(CLUSTER, PODS, "shop", pending[0]["metadata"]["name"])
    assert bound["spec"]["nodeName"] == first and bound["status"]["phase"] == "Running"
    assert audit.events("pod-rescheduled")[-1]["node"] == first


def test_scaling_a_deployment_scales_its_replicaset_and_pods() -> None:
    _, store, clock, _ = make_world()

    def scale(o: Obj) -> Obj:
        o["spec"]["replicas"] = 8
        return o

    store.mutate(CLUSTER, DEPLOYMENTS, "shop", "frontend", scale)
    clock.advance(3)
    (rs,) = store.list(CLUSTER, REPLICASETS, "shop", label_selector="app=frontend")[0]
    assert rs["spec"]["replicas"] == 8
    pods = store.list(CLUSTER, PODS, "shop", label_selector="app=frontend")[0]
    assert len(pods) == 8 and all(p["status"]["phase"] == "Running" for p in pods)
    deploy = store.get(CLUSTER, DEPLOYMENTS, "shop", "frontend")
    assert deploy["status"]["readyReplicas"] == 8
    pdb = store.get(CLUSTER, PDBS, "shop", "frontend")["status"]  # minAvailable 50% of 8
    assert (pdb["expectedPods"], pdb["desiredHealthy"], pdb["disruptionsAllowed"]) == (8, 4, 4)


def test_pdb_status_follows_pods_as_the_disruption_controller_computes_it() -> None:
    _, store, clock, _ = make_world()
    status = store.get(CLUSTER, PDBS, "shop", "checkout")["status"]
    assert {
        k: status[k]
        for k in (
            "expectedPods",
            "currentHealthy",
            "desiredHealthy",
            "disruptionsAllowed",
            "observedGeneration",
        )
    } == {
        "expectedPods": 6,
        "currentHealthy": 6,
        "desiredHealthy": 5,
        "disruptionsAllowed": 1,
        "observedGeneration": 1,
    }
    assert status["conditions"][0]["reason"] == "SufficientPods"
    victim = store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0][0]
    store.delete(CLUSTER, PODS, "shop", victim["metadata"]["name"])
    clock.advance(0)
    status = store.get(CLUSTER, PDBS, "shop", "checkout")["status"]
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (5, 0)
    assert status["conditions"][0]["status"] == "False"
    clock.advance(3)
    status = store.get(CLUSTER, PDBS, "shop", "checkout")["status"]
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (6, 1)

    def tighten(o: Obj) -> Obj:
        o["spec"] = {"selector": o["spec"]["selector"], "minAvailable": 6}
        return o

    store.mutate(CLUSTER, PDBS, "shop", "checkout", tighten)
    clock.advance(0)
    status = store.get(CLUSTER, PDBS, "shop", "checkout")["status"]
    assert (
        status["observedGeneration"],
        status["desiredHealthy"],
        status["disruptionsAllowed"],
    ) == (2, 6, 0)


def _pod(
    name: str, owner: str, *, ready: bool = True, deleting: bool = False, app: str = "a"
) -> Obj:
    meta: Obj = {
        "name": name,
        "labels": {"app": app},
        "ownerReferences": [
            {"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _budget(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "b", "generation": 3},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "pods", "scales", "expected"),
    [
        # integer minAvailable: expected is the number of pods, desired the number given
        ({"minAvailable": 2}, ["r", "r", "r"], {}, (3, 3, 2, 1)),
        # maxUnavailable: expected is the controllers' scale (the Deployment's 4), not the pods
        ({"maxUnavailable": 1}, ["r", "r", "r"], {"r": ("d", 4)}, (4, 3, 3, 0)),
        # percentages round up: 25% of 6 = 1.5 -> 2 unavailable; 50% of 3 minAvailable -> 2
        ({"maxUnavailable": "25%"}, ["r"] * 6, {"r": ("d", 6)}, (6, 6, 4, 2)),
        ({"minAvailable": "50%"}, ["r"] * 3, {"r": ("d", 3)}, (3, 3, 2, 1)),
        # two ReplicaSets of one Deployment count its scale once
        ({"maxUnavailable": 0}, ["r", "s"], {"r": ("d", 2), "s": ("d", 2)}, (2, 2, 2, 0)),
        # a pod whose controller has no scale: the controller gives up, nothing is allowed
        ({"maxUnavailable": 1}, ["r", "x"], {"r": ("d", 2)}, (2, 2, 0, 0)),
    ],
)
def test_pdb_arithmetic(
    spec: Obj, pods: list[str], scales: dict, expected: tuple[int, int, int, int]
) -> None:
    status = wl.pdb_status(
        _budget(**spec), [_pod(f"p{i}", o) for i, o in enumerate(pods)], scales, 0.0
    )
    got = (
        status["expectedPods"],
        status["currentHealthy"],
        status["desiredHealthy"],
        status["disruptionsAllowed"],
    )
    assert got == expected
    assert status["observedGeneration"] == 3


def test_unready_and_terminating_pods_are_not_healthy() -> None:
    pods = [
        _pod("a", "r"),
        _pod("b", "r", ready=False),
        _pod("c", "r", deleting=True),
        _pod("d", "r", app="other"),
    ]
    status = wl.pdb_status(_budget(minAvailable=1), pods, {}, 0.0)
    assert (status["expectedPods"], status["currentHealthy"], status["disruptionsAllowed"]) == (
        3,
        1,
        0,
    )


def test_world_actions_tolerate_objects_deleted_under_them() -> None:
    """A client deleting what physics is about to touch is a race, not a crash."""
    world, store, clock, _ = make_world()
    store.create("", MACHINES, new_machine("m-racy"))
    clock.advance(20)
    store.delete(CLUSTER, NODES, None, "m-racy")  # someone deletes the node while it boots
    clock.advance(10)
    assert node_or_none(store, "m-racy") is None
    with pytest.raises(ApiError):
        store.get(CLUSTER, NODES, None, "m-racy")
    assert world.physics.errors == []
