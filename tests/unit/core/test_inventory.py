"""The observed-state model: normalised on construction, joined as the adapter needs, hashed."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError, replace

import pytest

from gitops.fleet.wellknown import (
    MACHINE_ANNOTATION,
    PHASE_ANNOTATION,
    POOL_LABEL,
    QUARANTINE_LABEL,
    ZONE_LABEL,
)
from gitops.inventory import (
    ClusterInventory,
    FrozenMap,
    Inventory,
    Machine,
    Member,
    Node,
    NodeTaint,
    sha256_hex,
)
from tests.unit.core import factories as f


def test_frozen_map_is_sorted_hashable_and_immutable() -> None:
    a = FrozenMap({"b": "2", "a": "1"})
    assert list(a) == ["a", "b"]
    assert a == {"a": "1", "b": "2"} and hash(a) == hash(FrozenMap([("a", "1"), ("b", "2")]))
    with pytest.raises(TypeError):
        a["c"] = "3"  # type: ignore[index]
    with pytest.raises(TypeError):
        a.update(c="3")


def test_node_normalises_and_derives_pool_zone_machine_from_labels() -> None:
    node = Node(
        name="n",
        labels={ZONE_LABEL: "z", POOL_LABEL: "p"},
        annotations={MACHINE_ANNOTATION: "m"},
        taints=(NodeTaint("b", "NoSchedule"), NodeTaint("a", "NoExecute")),
    )
    assert (node.pool, node.zone, node.machine) == ("p", "z", "m")
    assert [t.key for t in node.taints] == ["a", "b"]
    assert isinstance(node.labels, FrozenMap)
    with pytest.raises(FrozenInstanceError):
        node.name = "x"  # type: ignore[misc]


def test_build_joins_nodes_to_machines_through_the_node_ref() -> None:
    node = Node(name="n1", ready=True)
    machine = Machine(name="m1", labels={POOL_LABEL: "gpu"}, node="n1", zone="z1")
    cluster = ClusterInventory.build("c", [node], [machine])
    joined = cluster.node("n1")
    assert joined is not None
    assert (joined.machine, joined.pool, joined.zone) == ("m1", "gpu", "z1")
    (member,) = cluster.members("gpu")
    assert member.machine is machine and member.available


def test_members_include_machines_still_without_a_node() -> None:
    machines = [Machine(name="m2", labels={POOL_LABEL: "p"}), Machine(name="m1", node="n1")]
    nodes = [Node(name="n1", labels={POOL_LABEL: "p"}, ready=True)]
    members = ClusterInventory.build("c", nodes, machines).members("p")
    assert [(m.name, m.node is not None, m.ready) for m in members] == [
        ("m2", False, False),
        ("n1", True, True),
    ]


@pytest.mark.parametrize(
    ("node", "machine", "leaving", "available"),
    [
        ({"ready": True}, {}, False, True),
        ({"ready": False}, {}, False, False),
        ({"ready": True, "unschedulable": True}, {}, False, False),
        ({"ready": True, "annotations": {PHASE_ANNOTATION: "draining"}}, {}, True, True),
        ({"ready": True}, {"annotations": {PHASE_ANNOTATION: "cordoned"}}, True, True),
        ({"ready": True}, {"deleting": True}, True, False),
        ({"ready": True, "deleting": True}, {}, True, False),
    ],
)
def test_member_leaving_and_available(
    node: dict[str, object], machine: dict[str, object], leaving: bool, available: bool
) -> None:
    member = Member.of(Node(name="n", **node), Machine(name="m", node="n", **machine))  # type: ignore[arg-type]
    assert (member.leaving, member.available) == (leaving, available)


def test_member_reads_the_controller_annotations() -> None:
    m = f.machine("r", "p", replaces="old", failed="boot timeout", phase="provisioning")
    member = Member.of(None, m)
    assert (member.replaces, member.failed, member.phase, member.by_controller) == (
        "old",
        "boot timeout",
        "provisioning",
        True,
    )
    q = Member.of(Node(name="q", labels={QUARANTINE_LABEL: "x"}), None)
    assert q.quarantined
    with pytest.raises(ValueError, match="node or a machine"):
        Member.of(None, None)


def test_digest_ignores_input_order_and_sees_every_change() -> None:
    fleet = f.example()
    inv = f.declared(fleet)
    shuffled = Inventory(
        tuple(
            ClusterInventory(
                name=c.name,
                nodes=c.nodes[::-1],
                machines=c.machines[::-1],
                pdbs=c.pdbs,
                deployments=c.deployments[::-1],
            )
            for c in inv.clusters[::-1]
        )
    )
    assert shuffled == inv and shuffled.digest() == inv.digest()
    first = inv.clusters[0]
    touched = replace(first.nodes[0], kernel_version="patched")
    changed = Inventory(
        (
            ClusterInventory(
                name=first.name, nodes=(touched, *first.nodes[1:]), machines=first.machines
            ),
            *inv.clusters[1:],
        )
    )
    assert changed.digest() != inv.digest()
    with_md = next(c for c in inv.clusters if c.deployments)
    rolled = replace(with_md.deployments[0], template="another")
    moved = replace(with_md, deployments=(rolled, *with_md.deployments[1:]))
    assert moved.digest() != with_md.digest()  # a deployment's change is seen too
    relabelled = replace(first.nodes[0], labels={**first.nodes[0].labels, "x": "y"})
    assert relabelled.content != first.nodes[0].content
    assert len(inv.digest()) == 64


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4095, 50_000])
def test_digests_are_the_sha256_of_the_text_whatever_its_length(size: int) -> None:
    """Digests are hashed in pieces (the interpreter lock stays held): the same SHA-256."""
    text = ("é" * size)[: size // 2] + "x" * size
    assert sha256_hex(text) == hashlib.sha256(text.encode()).hexdigest()


def test_unreachable_cluster_keeps_only_its_reason() -> None:
    c = ClusterInventory.unreachable("c", "")
    assert (c.reachable, c.error, c.nodes) == (False, "unreachable", ())
