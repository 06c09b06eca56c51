"""Drift injection (``--drift SPEC``): each kind does what it says, reproducibly from the seed."""

from __future__ import annotations

import pytest

from gitops.fleet.wellknown import CORDONED_BY_ANNOTATION, MACHINE_ANNOTATION, POOL_LABEL
from gitops.sim.api.resources import MACHINES, NODES
from gitops.sim.world import drift
from gitops.sim.world import seed as seed_
from tests.sim.helpers import example_fleet, make_world

NOW = 1_767_225_600.0


def injected(spec: str, seed: int = 0) -> tuple[seed_.Seeding, list[drift.Injected]]:
    fleet = example_fleet()
    seeding = seed_.build(fleet, seed=seed, now=NOW)
    return seeding, drift.inject(seeding, fleet, drift.parse(spec), seed, now=NOW)


def node_named(seeding: seed_.Seeding, name: str) -> seed_.SeededNode:
    return next(n for n in seeding.nodes if n.node["metadata"]["name"] == name)


@pytest.mark.parametrize(
    ("spec", "counts"),
    [
        ("", {}),
        ("kernel:3", {"kernel": 3}),
        (
            "kernel:3,label:2,taint:1,unmanaged:1,cordoned:1",
            {"kernel": 3, "label": 2, "taint": 1, "unmanaged": 1, "cordoned": 1},
        ),
        (" kernel : 2 , taint ", {"kernel": 2, "taint": 1}),
        ("label:0", {"label": 0}),
    ],
)
def test_parse_reads_kind_count_pairs(spec: str, counts: dict[str, int]) -> None:
    assert drift.parse(spec) == counts


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kernal:3", "unknown kind 'kernal'; use one of kernel, label"),
        ("kernel:three", "count of 'kernel' must be a whole number"),
        ("kernel:-1", "count of 'kernel' must be a whole number"),
        ("kernel:1,kernel:2", "'kernel' is given twice"),
        ("kernel=3", "cannot read 'kernel=3'"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        drift.parse(spec)


def test_asking_for_more_drifted_nodes_than_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="only 122"):
        injected("kernel:100,label:100")


def test_same_seed_same_drift_other_seed_other_drift() -> None:
    spec = "kernel:3,label:2,taint:1,unmanaged:1,cordoned:1"
    first = injected(spec, seed=11)[1]
    assert first == injected(spec, seed=11)[1]
    assert [(i.cluster, i.node) for i in first] != [
        (i.cluster, i.node) for i in injected(spec, seed=12)[1]
    ]
    assert len(first) == 8
    assert len({i.node for i in first}) == 8  # each drift on its own node


def test_drift_is_spread_over_the_clusters() -> None:
    done = injected("kernel:4")[1]
    assert sorted(i.cluster for i in done) == sorted(c.name for c in example_fleet().clusters)


def test_kernel_drift_patches_a_kernel_no_image_has() -> None:
    seeding, done = injected("kernel:2", seed=3)
    kernels = {img.kernel_version for img in example_fleet().images.values()}
    assert len(done) == 2
    for item in done:
        node = node_named(seeding, item.node).node
        kernel = node["status"]["nodeInfo"]["kernelVersion"]
        assert kernel not in kernels
        assert kernel.endswith("-talos")
        assert item.detail.endswith(kernel)
    untouched = [
        n for n in seeding.nodes if n.node["metadata"]["name"] not in {i.node for i in done}
    ]
    assert all(n.node["status"]["nodeInfo"]["kernelVersion"] in kernels for n in untouched)


def test_label_drift_changes_or_removes_a_declared_pool_label() -> None:
    fleet = example_fleet()
    seeding, done = injected("label:6", seed=5)
    outcomes = set()
    assert len(done) == 6
    for item in done:
        seeded = node_named(seeding, item.node)
        declared = fleet.cluster(seeded.cluster).pool(seeded.pool).labels  # type: ignore[union-attr]
        labels = seeded.node["metadata"]["labels"]
        differing = [k for k in declared if labels.get(k) != declared[k]]
        assert len(differing) == 1, item
        outcomes.add("removed" if differing[0] not in labels else "changed")
    assert outcomes == {"removed", "changed"}


def test_taint_drift_adds_an_undeclared_noschedule_taint() -> None:
    seeding, (item,) = injected("taint:1")
    taints = node_named(seeding, item.node).node["spec"]["taints"]
    assert {"key": drift.HAND_TAINT_KEY, "value": "true", "effect": "NoSchedule"} in taints


def test_unmanaged_nodes_have_no_machine_and_no_pool() -> None:
    seeding, (item,) = injected("unmanaged:1")
    node = node_named(seeding, item.node)
    assert node.machine is None and node.pool == ""
    assert POOL_LABEL not in node.node["metadata"]["labels"]
    assert MACHINE_ANNOTATION not in node.node["metadata"]["annotations"]
    assert sum(1 for o in seeding.objects if o.resource == seed_.NODES) == 123


def test_cordoned_drift_is_a_cordon_the_controller_did_not_make() -> None:
    seeding, (item,) = injected("cordoned:1")
    node = node_named(seeding, item.node).node
    assert node["spec"]["unschedulable"] is True
    assert CORDONED_BY_ANNOTATION not in node["metadata"].get("annotations", {})
    assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]


def test_the_world_serves_the_drift_it_injected() -> None:
    world, store, _, _ = make_world(drift="kernel:1,unmanaged:1,cordoned:1", seed=4)
    by_kind = {i.kind: i for i in world.injected}
    kernel = store.get(by_kind["kernel"].cluster, NODES, None, by_kind["kernel"].node)
    assert kernel["status"]["nodeInfo"]["kernelVersion"] not in {"6.12.9-talos", "6.6.64-talos"}
    cordoned = store.get(by_kind["cordoned"].cluster, NODES, None, by_kind["cordoned"].node)
    assert cordoned["spec"]["unschedulable"] is True
    unmanaged = by_kind["unmanaged"]
    store.get(unmanaged.cluster, NODES, None, unmanaged.node)
    machines = {m["metadata"]["name"] for m in store.list("", MACHINES)[0]}
    assert unmanaged.node not in machines and len(machines) == 122
    # nothing seeded in a cordoned or tainted state gets workload pods scheduled on it later
    assert world.physics.errors == []


def test_the_drift_finder_sees_exactly_the_drift_injected() -> None:
    """Read back as the controller reads it, each injection is one finding of its kind, no more."""
    translate = pytest.importorskip("gitops.kube.translate")
    from gitops import drift as finder
    from gitops.inventory import Inventory
    from gitops.sim.api.resources import PDBS

    world, store, _, _ = make_world(drift="kernel:3,label:2,taint:1,unmanaged:1,cordoned:1", seed=9)
    fleet = example_fleet()
    inventory = Inventory(
        tuple(
            translate.cluster(
                c.name,
                store.list(c.name, NODES)[0],
                store.list("", MACHINES, c.namespace)[0],
                store.list(c.name, PDBS)[0],
            )
            for c in fleet.clusters
        )
    )
    kinds = {
        "kernel": "ImageMismatch",
        "label": "ConfigMismatch",
        "taint": "ConfigMismatch",
        "unmanaged": "UnmanagedNode",
        "cordoned": "StuckCordoned",
    }
    expected = sorted((i.cluster, i.node, kinds[i.kind]) for i in world.injected)
    found = sorted((f.cluster, f.node, f.kind) for f in finder.find(fleet, inventory))
    assert found == expected


DRIVER = "nvidia.com/cuda.driver-version.full"


def test_gpu_nodes_carry_the_facts_their_image_declares_and_plain_nodes_do_not() -> None:
    seeding, _ = injected("")
    fleet = example_fleet()
    gpu = [n for n in seeding.nodes if n.pool and n.pool.startswith("gpu")]
    plain = [n for n in seeding.nodes if n.pool in ("general", "system")]
    assert gpu and plain
    assert fleet.images["talos-1.9.2-nvidia"].facts.labels[DRIVER] == "550.127.08"
    for seeded in gpu:
        labels = seeded.node["metadata"]["labels"]
        assert labels[DRIVER] == "550.127.08"
        assert seeded.node["metadata"]["annotations"]["extensions.talos.dev/schematic"]
    assert all(DRIVER not in n.node["metadata"]["labels"] for n in plain)


@pytest.mark.parametrize(
    ("kind", "where", "key"),
    [
        ("driver", "labels", DRIVER),
        ("extension", "labels", "extensions.talos.dev/"),
        ("schematic", "annotations", "extensions.talos.dev/schematic"),
        ("driver-upgrade", "labels", "nvidia.com/gpu-driver-upgrade-state"),
    ],
)
def test_fact_kinds_change_one_gpu_node_reproducibly(kind: str, where: str, key: str) -> None:
    before, _ = injected("")
    seeding, done = injected(f"{kind}:1")
    (one,) = done
    assert one.kind == kind and key in one.detail
    changed = node_named(seeding, one.node)
    original = node_named(before, one.node)
    assert changed.pool is not None and changed.pool.startswith("gpu")
    mine = {k: v for k, v in changed.node["metadata"][where].items() if k.startswith(key)}
    theirs = {k: v for k, v in original.node["metadata"][where].items() if k.startswith(key)}
    assert mine and mine != theirs
    assert injected(f"{kind}:1")[1] == done  # the same seed, the same node and value
    if kind == "driver-upgrade":
        assert mine == {key: "upgrade-required"}


def test_a_fact_kind_on_a_fleet_without_that_fact_is_refused() -> None:
    fleet = example_fleet()
    seeding = seed_.build(fleet, seed=0, now=NOW)
    for n in seeding.nodes:
        n.node["metadata"]["labels"].pop(DRIVER, None)
    with pytest.raises(ValueError, match="no node's image declares the fact"):
        drift.inject(seeding, fleet, drift.parse("driver:1"), 0, now=NOW)
