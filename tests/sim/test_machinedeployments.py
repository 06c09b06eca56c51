"""The simulated Cluster API controllers: MachineSets, MachineDeployments and topology.

On virtual time (ManualClock) against the store: seeding in MachineDeployment mode, a template
change rolled within maxSurge / maxUnavailable at every step, pause, scaling, the deletion
order, adoption of owner-less Machines, a topology override rotating the template, and the
v1beta1 view of a deployment mid-rollout. Every seeded object validates against the upstream
CRDs read in place from ../shared/crds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitops.fleet import load
from gitops.fleet.wellknown import POOL_LABEL
from gitops.sim.api.resources import (
    CLUSTERCLASSES,
    CLUSTERS,
    CLUSTERS_V1BETA1,
    MACHINEDEPLOYMENTS,
    MACHINEDEPLOYMENTS_V1BETA1,
    MACHINES,
    MACHINES_V1BETA2,
    MACHINESETS,
    MACHINESETS_V1BETA1,
    NODES,
    PDBS,
    PODS,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.api.store import Store
from gitops.sim.world import capi
from gitops.sim.world import seed as seed_
from gitops.sim.world.clock import ManualClock
from gitops.sim.world.world import World
from tests.conftest import EXAMPLE
from tests.sim.crds import assert_valid_crd
from tests.sim.mdfleet import NS, md_world

Obj = dict[str, Any]
DEPLOYMENT = "cluster.x-k8s.io/deployment-name"


def machines_of(store: Store, md: str) -> list[Obj]:
    return [
        m
        for m in store.list("", MACHINES_V1BETA2, NS)[0]
        if (m["metadata"].get("labels") or {}).get(DEPLOYMENT) == md
    ]


def is_available(machine: Obj) -> bool:
    return not machine["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Available" and c["status"] == "True"
        for c in (machine.get("status") or {}).get("conditions") or []
    )


def image_of(store: Store, machine: Obj) -> str:
    infra = store.get("", SIMMACHINES, NS, machine["spec"]["infrastructureRef"]["name"])
    return str(infra["spec"]["image"])


def swap_template(store: Store, md: str, image: str) -> str:
    """What gitops does in MachineDeployment mode: clone the referenced template with the new
    image under a new name and point the deployment at it."""
    current = store.get("", MACHINEDEPLOYMENTS, NS, md)
    ref = current["spec"]["template"]["spec"]["infrastructureRef"]["name"]
    template = store.get("", SIMMACHINETEMPLATES, NS, ref)
    name = f"{md}-{capi.short_suffix(image)}"
    store.create(
        "",
        SIMMACHINETEMPLATES,
        {
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"spec": {"image": image}}},
        },
    )
    edit(store, md, lambda s: s["template"]["spec"]["infrastructureRef"].update(name=name))
    return name


def edit(store: Store, md: str, fn: Callable[[Obj], Any]) -> None:
    def change(o: Obj) -> Obj:
        fn(o["spec"])
        return o

    store.mutate("", MACHINEDEPLOYMENTS, NS, md, change)


def rolled(store: Store, md: str) -> bool:
    """Done by the v1beta2 rule: observed generation current, every replica up to date and
    available."""
    obj = store.get("", MACHINEDEPLOYMENTS, NS, md)
    status, want = obj.get("status") or {}, obj["spec"]["replicas"]
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("replicas") == status.get("upToDateReplicas") == want
        and status.get("availableReplicas") == want
    )


def roll(store: Store, clock: ManualClock, md: str, *, steps: int = 400) -> tuple[int, int, int]:
    """Advance until rolled; (most Machines at once, fewest available, steps taken)."""
    most, fewest = 0, 1 << 30
    for step in range(steps):
        clock.advance(2)
        machines = machines_of(store, md)
        most = max(most, len(machines))
        fewest = min(fewest, sum(1 for m in machines if is_available(m)))
        if rolled(store, md):
            return most, fewest, step
    raise AssertionError(
        f"{md} did not finish rolling: {store.get('', MACHINEDEPLOYMENTS, NS, md)}"
    )


def test_seeding_makes_deployments_sets_and_machines_as_cluster_api_does(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    md = store.get("", MACHINEDEPLOYMENTS, NS, "workers")
    assert md["spec"]["replicas"] == 3
    assert md["spec"]["rollout"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    (ms,) = [
        s
        for s in store.list("", MACHINESETS, NS)[0]
        if s["metadata"]["name"].startswith("workers-")
    ]
    assert capi.controller_of(ms)["uid"] == md["metadata"]["uid"]  # type: ignore[index]
    digest = capi.template_hash(md["spec"]["template"])
    assert ms["metadata"]["labels"][capi.TEMPLATE_HASH_LABEL] == digest
    machines = machines_of(store, "workers")
    assert len(machines) == 3
    for m in machines:
        labels = m["metadata"]["labels"]
        assert labels[capi.SET_NAME_LABEL] == ms["metadata"]["name"]
        assert labels[capi.TEMPLATE_HASH_LABEL] == digest
        assert labels[POOL_LABEL] == "workers"
        assert capi.controller_of(m)["uid"] == ms["metadata"]["uid"]  # type: ignore[index]
    assert md["status"]["availableReplicas"] == md["status"]["upToDateReplicas"] == 3
    assert rolled(store, "workers")
    # The topology pool: ClusterClass, Cluster with spec.topology, managed deployment.
    cluster = store.get("", CLUSTERS, NS, NS)
    (worker,) = cluster["spec"]["topology"]["workers"]["machineDeployments"]
    assert worker["name"] == "md-0" and worker["class"] == "batch" and worker["replicas"] == 2
    assert worker["variables"]["overrides"] == [{"name": "image", "value": "registry/img:v1"}]
    cls = store.get("", CLUSTERCLASSES, NS, cluster["spec"]["topology"]["classRef"]["name"])
    (patch,) = cls["spec"]["patches"]
    assert patch["definitions"][0]["jsonPatches"][0]["valueFrom"] == {"variable": "image"}
    managed = store.list(
        "", MACHINEDEPLOYMENTS, NS, label_selector=f"{capi.TOPOLOGY_DEPLOYMENT_LABEL}=md-0"
    )[0]
    assert len(managed) == 1 and capi.TOPOLOGY_OWNED_LABEL in managed[0]["metadata"]["labels"]
    assert len(machines_of(store, managed[0]["metadata"]["name"])) == 2
    # Standalone Machines stay owner-less.
    standalone = [
        m
        for m in store.list("", MACHINES_V1BETA2, NS)[0]
        if DEPLOYMENT not in m["metadata"]["labels"]
    ]
    assert len(standalone) == 2 and all(capi.controller_of(m) is None for m in standalone)


def test_every_seeded_cluster_api_object_validates_in_both_versions(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    checked = 0
    for rtypes in (
        (MACHINES, MACHINES_V1BETA2),
        (MACHINESETS_V1BETA1, MACHINESETS),
        (MACHINEDEPLOYMENTS_V1BETA1, MACHINEDEPLOYMENTS),
        (CLUSTERS_V1BETA1, CLUSTERS),
    ):
        for rtype in rtypes:
            objects = store.list("", rtype, NS)[0]
            assert objects
            for obj in objects:
                assert_valid_crd(obj)
                checked += 1
    assert checked >= 2 * (7 + 2 + 2 + 1)


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (0, 1), (2, 1)])
def test_a_template_change_rolls_within_the_budgets(
    tmp_path: Path, surge: int, unavailable: int
) -> None:
    _, store, clock = md_world(tmp_path, replicas=4, surge=surge, unavailable=unavailable)
    clock.advance(0)
    before = {m["metadata"]["name"] for m in machines_of(store, "workers")}
    swap_template(store, "workers", "registry/img:v2")
    most, fewest, _ = roll(store, clock, "workers")
    assert most <= 4 + surge
    assert fewest >= 4 - unavailable
    after = machines_of(store, "workers")
    assert len(after) == 4 and not before & {m["metadata"]["name"] for m in after}
    assert {image_of(store, m) for m in after} == {"registry/img:v2"}
    for m in after:  # Cluster API copies the node.cluster.x-k8s.io labels onto the Node
        node = store.get(NS, NODES, None, m["status"]["nodeRef"]["name"])
        assert node["metadata"]["labels"][POOL_LABEL] == "workers"
        assert node["status"]["nodeInfo"]["osImage"] == "OS (v2)"
    sets = [
        s
        for s in store.list("", MACHINESETS, NS)[0]
        if s["metadata"]["name"].startswith("workers-")
    ]
    assert len(sets) == 1  # the old set, at zero, was deleted
    assert sets[0]["metadata"]["annotations"][capi.REVISION_ANNOTATION] == "2"


def test_rolling_back_points_back_at_the_previous_template(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    first = store.get("", MACHINEDEPLOYMENTS, NS, "workers")["spec"]["template"]["spec"]
    swap_template(store, "workers", "registry/img:v2")
    roll(store, clock, "workers")
    edit(
        store,
        "workers",
        lambda s: s["template"]["spec"].update(infrastructureRef=first["infrastructureRef"]),
    )
    roll(store, clock, "workers")
    assert {image_of(store, m) for m in machines_of(store, "workers")} == {"registry/img:v1"}


def test_a_paused_deployment_scales_nothing_until_resumed(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    before = {m["metadata"]["name"] for m in machines_of(store, "workers")}
    edit(store, "workers", lambda s: s.update(paused=True))
    swap_template(store, "workers", "registry/img:v2")
    clock.advance(600)
    assert {m["metadata"]["name"] for m in machines_of(store, "workers")} == before
    status = store.get("", MACHINEDEPLOYMENTS, NS, "workers")["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Paused"] == "True"
    edit(store, "workers", lambda s: s.update(paused=False))
    roll(store, clock, "workers")
    assert {image_of(store, m) for m in machines_of(store, "workers")} == {"registry/img:v2"}


def test_scaling_up_and_down(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    edit(store, "workers", lambda s: s.update(replicas=5))
    roll(store, clock, "workers")
    assert len(machines_of(store, "workers")) == 5
    zones = sorted(m["spec"]["failureDomain"] for m in machines_of(store, "workers"))
    assert zones.count("a") >= 2 and zones.count("b") >= 2
    edit(store, "workers", lambda s: s.update(replicas=2))
    roll(store, clock, "workers")
    assert len(machines_of(store, "workers")) == 2


def test_scale_down_deletes_the_annotated_machine_first_then_by_order(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    names = sorted(m["metadata"]["name"] for m in machines_of(store, "workers"))
    chosen = names[1]

    def mark(o: Obj) -> Obj:
        o["metadata"].setdefault("annotations", {})[capi.DELETE_MACHINE_ANNOTATION] = "yes"
        return o

    store.mutate("", MACHINES_V1BETA2, NS, chosen, mark)
    edit(store, "workers", lambda s: s.update(replicas=2))
    roll(store, clock, "workers")
    left = {m["metadata"]["name"] for m in machines_of(store, "workers")}
    assert chosen not in left and len(left) == 2
    # Oldest: the Machine created first goes next.
    edit(store, "workers", lambda s: s.update(deletion={"order": "Oldest"}))
    for ms in store.list("", MACHINESETS, NS)[0]:
        if ms["metadata"]["name"].startswith("workers-"):
            store.mutate(
                "",
                MACHINESETS,
                NS,
                ms["metadata"]["name"],
                lambda o: {**o, "spec": {**o["spec"], "deletion": {"order": "Oldest"}}},
            )
    oldest = min(
        machines_of(store, "workers"),
        key=lambda m: (m["metadata"]["creationTimestamp"], m["metadata"]["name"]),
    )
    edit(store, "workers", lambda s: s.update(replicas=1))
    roll(store, clock, "workers")
    (last,) = machines_of(store, "workers")
    assert last["metadata"]["name"] != oldest["metadata"]["name"]


def test_a_machine_set_adopts_owner_less_machines_its_selector_matches(tmp_path: Path) -> None:
    """Why gitops must never create a standalone Machine such a selector matches."""
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    (ms,) = [
        s
        for s in store.list("", MACHINESETS, NS)[0]
        if s["metadata"]["name"].startswith("workers-")
    ]
    stray = {
        "apiVersion": capi.API_VERSION,
        "kind": "Machine",
        "metadata": {
            "name": "stray",
            "namespace": NS,
            "labels": dict(ms["spec"]["selector"]["matchLabels"]),
            "finalizers": ["machine.cluster.x-k8s.io"],
        },
        "spec": {
            "clusterName": NS,
            "bootstrap": {"dataSecretName": "x"},
            "infrastructureRef": {
                "apiGroup": capi.INFRA_GROUP,
                "kind": "SimMachineTemplate",
                "name": ms["spec"]["template"]["spec"]["infrastructureRef"]["name"],
            },
        },
    }
    store.create("", MACHINES_V1BETA2, stray)
    clock.advance(0)
    adopted = store.get("", MACHINES_V1BETA2, NS, "stray")
    assert capi.controller_of(adopted)["uid"] == ms["metadata"]["uid"]  # type: ignore[index]
    # Four Machines for three replicas: the set deletes one, the unhealthy newcomer first.
    assert adopted["metadata"].get("deletionTimestamp")
    clock.advance(120)
    left = machines_of(store, "workers")
    assert len(left) == 3 and "stray" not in {m["metadata"]["name"] for m in left}


def test_a_topology_override_rotates_the_template_and_rolls_the_managed_deployment(
    tmp_path: Path,
) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    (managed,) = store.list(
        "", MACHINEDEPLOYMENTS, NS, label_selector=f"{capi.TOPOLOGY_DEPLOYMENT_LABEL}=md-0"
    )[0]
    name = managed["metadata"]["name"]
    before = managed["spec"]["template"]["spec"]["infrastructureRef"]["name"]

    def override(o: Obj) -> Obj:
        (worker,) = o["spec"]["topology"]["workers"]["machineDeployments"]
        worker["variables"]["overrides"] = [{"name": "image", "value": "registry/img:v2"}]
        worker["replicas"] = 3
        worker["rollout"]["strategy"]["rollingUpdate"] = {"maxSurge": 2, "maxUnavailable": 0}
        worker["minReadySeconds"] = 5
        return o

    store.mutate("", CLUSTERS, NS, NS, override)
    clock.advance(0)
    md = store.get("", MACHINEDEPLOYMENTS, NS, name)
    after = md["spec"]["template"]["spec"]["infrastructureRef"]["name"]
    assert after != before
    assert store.get("", SIMMACHINETEMPLATES, NS, after)["spec"]["template"]["spec"]["image"] == (
        "registry/img:v2"
    )
    assert md["spec"]["replicas"] == 3
    assert md["spec"]["rollout"]["strategy"]["rollingUpdate"]["maxSurge"] == 2
    assert md["spec"]["template"]["spec"]["minReadySeconds"] == 5
    most, _, _ = roll(store, clock, name)
    assert most <= 3 + 2
    assert {image_of(store, m) for m in machines_of(store, name)} == {"registry/img:v2"}


def test_the_v1beta1_view_of_a_rolling_deployment(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    swap_template(store, "workers", "registry/img:v2")
    seen_partial = False
    for _ in range(400):
        clock.advance(2)
        old = store.get("", MACHINEDEPLOYMENTS_V1BETA1, NS, "workers")
        assert old["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        assert old["status"]["updatedReplicas"] == old["status"]["v1beta2"]["upToDateReplicas"] or (
            old["status"]["updatedReplicas"] >= old["status"]["v1beta2"]["upToDateReplicas"]
        )
        if 0 < old["status"]["v1beta2"]["upToDateReplicas"] < 3:
            seen_partial = True
            assert_valid_crd(old)
            # Machines of the old set say they are not up to date, in both versions.
            flags = {
                m["metadata"]["name"]: {c["type"]: c["status"] for c in m["status"]["conditions"]}[
                    "UpToDate"
                ]
                for m in machines_of(store, "workers")
            }
            assert "False" in flags.values() and "True" in flags.values()
            stale = next(n for n, v in flags.items() if v == "False")
            view = store.get("", MACHINES, NS, stale)["status"]["v1beta2"]["conditions"]
            assert {c["type"]: c["status"] for c in view}["UpToDate"] == "False"
        if rolled(store, "workers"):
            break
    assert seen_partial
    assert (
        store.get("", MACHINEDEPLOYMENTS_V1BETA1, NS, "workers")["status"]["updatedReplicas"] == 3
    )


def test_machines_a_set_deletes_are_drained_first_and_pdbs_hold_them(tmp_path: Path) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    nodes = [m["status"]["nodeRef"]["name"] for m in machines_of(store, "workers")]
    assert len(nodes) == 3
    for i, node in enumerate(nodes):
        store.create(
            NS,
            PODS,
            {
                "metadata": {
                    "name": f"pinned-{i}",
                    "namespace": "default",
                    "labels": {"app": "pinned"},
                },
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
    pdb = {
        "metadata": {"name": "pinned", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "pinned"}}, "maxUnavailable": 0},
    }
    store.create(NS, PDBS, pdb)
    swap_template(store, "workers", "registry/img:v2")
    clock.advance(600)
    machines = machines_of(store, "workers")
    deleting = [m for m in machines if m["metadata"].get("deletionTimestamp")]
    assert len(deleting) == 1 and len(machines) <= 4
    node = store.get(NS, NODES, None, deleting[0]["status"]["nodeRef"]["name"])
    assert node["spec"].get("unschedulable") is True  # cordoned, drain blocked by the PDB
    assert not rolled(store, "workers")
    store.delete(NS, PDBS, "default", "pinned")
    roll(store, clock, "workers")
    assert {image_of(store, m) for m in machines_of(store, "workers")} == {"registry/img:v2"}


def test_every_fleet_cluster_gets_its_cluster_api_cluster() -> None:
    fleet = load(EXAMPLE)
    store = Store(seed=0)
    World(store, fleet, clock=ManualClock(), heartbeats=False).seed()
    clusters = store.list("", CLUSTERS)[0]
    assert sorted((c["metadata"]["namespace"], c["metadata"]["name"]) for c in clusters) == sorted(
        (c.namespace, c.name) for c in fleet.clusters
    )
    for cluster in clusters:
        assert cluster["status"]["phase"] == "Provisioned"
        assert_valid_crd(cluster)
        assert_valid_crd(
            store.get(
                "", CLUSTERS_V1BETA1, cluster["metadata"]["namespace"], cluster["metadata"]["name"]
            )
        )


@pytest.mark.parametrize(
    ("contract", "expected"),
    [("v1beta2", {"initialization": {"provisioned": True}}), ("v1beta1", {"ready": True})],
)
def test_sim_machines_follow_the_infrastructure_contract_of_the_version(
    tmp_path: Path, contract: str, expected: Obj
) -> None:
    """An old management cluster's providers say ``status.ready``, v1beta2 ones
    ``status.initialization.provisioned``: seeded, and made at run time by a MachineSet."""
    from tests.sim.mdfleet import md_fleet

    store, clock = Store(seed=0), ManualClock()
    world = World(store, md_fleet(tmp_path), clock=clock, heartbeats=False, infra_contract=contract)
    world.seed()
    edit(store, "workers", lambda s: s.update(replicas=4))
    roll(store, clock, "workers")
    sims = store.list("", SIMMACHINES, NS)[0]
    assert len(sims) == 2 + 4 + 2
    for sim in sims:
        status = {k: v for k, v in sim["status"].items() if k != "addresses"}
        assert status == expected, sim["metadata"]["name"]


def test_min_ready_seconds_holds_old_machines_until_new_ones_are_available(
    tmp_path: Path,
) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    before = {m["metadata"]["name"] for m in machines_of(store, "workers")}
    edit(store, "workers", lambda s: s["template"]["spec"].update(minReadySeconds=60))
    roll(store, clock, "workers")  # a template change too: the set is replaced once
    before = {m["metadata"]["name"] for m in machines_of(store, "workers")}
    swap_template(store, "workers", "registry/img:v2")
    first_ready: float | None = None
    first_deleted: float | None = None
    for _ in range(400):
        clock.advance(2)
        for m in machines_of(store, "workers"):
            name = m["metadata"]["name"]
            conds = {c["type"]: c for c in (m.get("status") or {}).get("conditions") or []}
            if name not in before and conds.get("Ready", {}).get("status") == "True":
                since = seed_.parse_rfc3339(conds["Ready"]["lastTransitionTime"])
                first_ready = since if first_ready is None else min(first_ready, since)
            if name in before and m["metadata"].get("deletionTimestamp") and first_deleted is None:
                first_deleted = clock.now()
        if rolled(store, "workers"):
            break
    assert first_ready is not None and first_deleted is not None
    assert first_deleted >= first_ready + 60


def test_deleting_a_deployment_takes_its_sets_and_drained_machines_with_it(
    tmp_path: Path,
) -> None:
    _, store, clock = md_world(tmp_path)
    clock.advance(0)
    nodes = {m["status"]["nodeRef"]["name"] for m in machines_of(store, "workers")}
    assert len(nodes) == 3
    store.delete("", MACHINEDEPLOYMENTS, NS, "workers")
    clock.advance(300)
    assert machines_of(store, "workers") == []
    assert not [
        s
        for s in store.list("", MACHINESETS, NS)[0]
        if s["metadata"]["name"].startswith("workers-")
    ]
    assert not nodes & {n["metadata"]["name"] for n in store.list(NS, NODES)[0]}
