"""The batch rules as a table, in the manner of Cluster API's MachineDeployment rollout tests.

Each row is one pool: (replicas, maxSurge, maxUnavailable, its nodes) → the first batch the
planner lays out and, when the later batches cannot finish, why they stall (``PoolPlan.reason``).
Percentages resolve as Cluster API resolves them: maxSurge rounds up, maxUnavailable rounds
down. Nodes are written one token each, oldest first (``n0``, ``n1``, ...):

=========  ======================================================================
``old``    on the previous image (Outdated), Ready
``new``    on the declared image, Ready
``drift``  on the declared image, kernel patched by hand (ImageMismatch)
``boot``   a machine the controller created (a scale-up), its node not Ready yet
``!``      NotReady                          ``~``  cordoned by a human
``#``      quarantined after a drain timeout ``>``  being drained by the controller
``+``      a replacement is booting          ``*``  a replacement is Ready
``@z``     in zone z (default: the pool's zones in turn, as ``factories.declared`` does)
=========  ======================================================================

A step reads ``create n0@a`` (a replacement for n0 in zone a), ``retire n0``, ``add @b``
(scale up), ``remove n0`` (scale down), ``wait <on> <what>``; ``later`` marks a step shown in
batch 1 that is not ready yet (it waits for a replacement to be Ready, or for its turn).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops.fleet import Fleet
from gitops.fleet.wellknown import QUARANTINE_LABEL
from gitops.inventory import ClusterInventory, Inventory, Machine, Node
from gitops.plan import (
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    PoolPlan,
    RetireNode,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    make,
)
from tests.unit.core import factories as f

T0 = f.T0
OLD = {
    "os_image": "OS (v1)",
    "kernel_version": "6.6.1",
    "kubelet_version": "v1.31.0",
    "container_runtime_version": "containerd://2.0.0",
}


def _pool_plan(
    replicas: int, surge: int | str, unavailable: int | str, nodes: str, zones: str
) -> PoolPlan:
    fleet = f.fleet(
        [
            f.cluster(
                "prod",
                pools=[
                    f.pool(
                        replicas=replicas, surge=surge, unavailable=unavailable, zones=tuple(zones)
                    )
                ],
            )
        ]
    )
    observed: list[Node] = []
    machines: list[Machine] = []
    for i, token in enumerate(nodes.split()):
        _observe(fleet, i, token, zones, observed, machines)
    inventory = Inventory((ClusterInventory.build("prod", observed, machines),))
    (pool,) = make(fleet, inventory, RolloutState(), T0).waves[0].clusters[0].pools
    return pool


def _observe(
    fleet: Fleet, i: int, token: str, zones: str, nodes: list[Node], machines: list[Machine]
) -> None:
    """Add node ``n<i>`` as ``token`` says, with its machine and its replacement if any."""
    token, _, zone = token.partition("@")
    zone = zone or zones[i % len(zones)]
    kind = token.rstrip("!~#>+*")
    mods = token[len(kind) :]
    assert kind in ("old", "new", "drift", "boot"), token
    doc = fleet.cluster("prod")
    pool = doc.pool("workers") if doc is not None else None
    name = f"n{i}"
    if kind == "boot":
        machines.append(
            f.machine(f"m{i}", "workers", zone=zone, by_controller=True, created=T0 - 60)
        )
        return
    node = f.node(fleet, name, pool_=pool, zone=zone, created=T0 - 10_000 + 100 * i, machine=name)
    if kind == "old":
        node = replace(node, **OLD)
    if kind == "drift":
        node = replace(node, kernel_version="patched")
    if "!" in mods:
        node = replace(node, ready=False)
    if "~" in mods:
        node = replace(node, unschedulable=True)
    if "#" in mods:
        node = replace(node, labels={**node.labels, QUARANTINE_LABEL: "drain-timeout"})
        node = replace(node, unschedulable=True)
    if ">" in mods:
        node = replace(node, **f.cordoned_by_us(node, "draining"))
    nodes.append(node)
    machines.append(f.machine(name, "workers", node_name=name, zone=zone, created=node.created))
    if "+" in mods or "*" in mods:
        ready = "*" in mods
        repl = f"r{i}"
        if ready:
            nodes.append(
                f.node(fleet, repl, pool_=pool, zone=zone, machine=repl, ready_since=T0 - 5)
            )
        machines.append(
            f.machine(
                repl,
                "workers",
                node_name=repl if ready else "",
                zone=zone,
                replaces=name,
                created=T0 - 60,
            )
        )


def _step(action: AnyAction) -> str:
    later = "" if action.ready or isinstance(action, Wait) else " later"
    if isinstance(action, CreateReplacement):
        return f"create {action.replaces}@{action.zone}{later}"
    if isinstance(action, RetireNode):
        return f"retire {action.node}{later}"
    if isinstance(action, ScaleUp):
        return f"add @{action.zone}{later}"
    if isinstance(action, ScaleDown):
        return f"remove {action.node}{later}"
    if isinstance(action, Wait):
        return f"wait {action.on} {action.what}"
    if isinstance(action, AbandonMachine):
        return f"abandon {action.machine}"
    assert isinstance(action, Uncordon)
    return f"uncordon {action.node}"


def row(
    id: str,
    replicas: int,
    surge: int | str,
    unavailable: int | str,
    nodes: str,
    first: list[str],
    stall: str = "",
    zones: str = "ab",
) -> object:
    return pytest.param(replicas, surge, unavailable, nodes, zones, first, stall, id=id)


def stalls(
    after: int,
    left: str,
    surge: int,
    unavailable: int,
    available: int,
    replicas: int,
    machines: int,
) -> str:
    return (
        f"stalls after batch {after}: {left} cannot proceed within maxSurge {surge} and "
        f"maxUnavailable {unavailable} ({available} of {replicas} available, {machines} machines)"
    )


# fmt: off
ROWS = [
    # ── maxSurge only ─────────────────────────────────────────────────────────────────────
    row("surge 1 creates one replacement and retires its node once it is Ready",
        3, 1, 0, "old old old", ["create n0@a", "retire n0 later"]),
    row("surge 2 replaces two nodes at once, oldest first",
        3, 2, 0, "old old old",
        ["create n0@a", "create n1@b", "retire n0 later", "retire n1 later"],
    ),
    row("a surge larger than the pool replaces every node in one batch",
        3, 5, 0, "old old old",
        ["create n0@a", "create n1@b", "create n2@a", "retire n0 later", "retire n1 later",
         "retire n2 later"],
    ),
    row("nodes already on the image are left alone",
        3, 1, 0, "new old old", ["create n1@b", "retire n1 later"]),
    row("a drifted node is replaced like an outdated one",
        3, 1, 0, "new drift new", ["create n1@b", "retire n1 later"]),
    row("a converged pool has no batch",
        3, 1, 0, "new new new", []),
    # ── maxUnavailable only (maxSurge 0: break before make) ───────────────────────────────
    row("surge 0 and unavailable 1 retire one node, then scale back up",
        3, 0, 1, "old old old", ["retire n0", "add @a later"]),
    row("surge 0 and unavailable 2 retire two nodes at once",
        4, 0, 2, "old old old old", ["retire n0", "retire n1", "add @a later", "add @b later"]),
    # ── both ──────────────────────────────────────────────────────────────────────────────
    row("surge 1 and unavailable 1 still make before they break",
        3, 1, 1, "old old old", ["create n0@a", "retire n0 later"]),
    row("surge 2 and unavailable 1 create two replacements",
        4, 2, 1, "old old old old",
        ["create n0@a", "create n1@b", "retire n0 later", "retire n1 later"],
    ),
    # ── percentages, rounded as Cluster API rounds them ───────────────────────────────────
    row("maxSurge 25% of 4 rounds up to 1",
        4, "25%", 0, "old old old old", ["create n0@a", "retire n0 later"]),
    row("maxSurge 25% of 5 rounds up to 2",
        5, "25%", 0, "old old old old old",
        ["create n0@a", "create n1@b", "retire n0 later", "retire n1 later"],
    ),
    row("maxSurge 10% of 3 rounds up to 1",
        3, "10%", 0, "old old old", ["create n0@a", "retire n0 later"]),
    row("maxSurge 100% replaces the whole pool in one batch",
        3, "100%", 0, "old old old",
        ["create n0@a", "create n1@b", "create n2@a", "retire n0 later", "retire n1 later",
         "retire n2 later"],
    ),
    row("maxUnavailable 25% of 5 rounds down to 1",
        5, 0, "25%", "old old old old old", ["retire n0", "add @a later"]),
    row("maxUnavailable 50% of 3 rounds down to 1",
        3, 0, "50%", "old old old", ["retire n0", "add @a later"]),
    row("maxUnavailable 34% of 3 rounds down to 1",
        3, 0, "34%", "old old old", ["retire n0", "add @a later"]),
    row("maxUnavailable 30% of 3 rounds down to 0, so surge 1 makes before it breaks",
        3, 1, "30%", "old old old", ["create n0@a", "retire n0 later"]),
    row("maxSurge 20% and maxUnavailable 20% of 6 give 2 and 1",
        6, "20%", "20%", "old old old old old old",
        ["create n0@a", "create n1@b", "retire n0 later", "retire n1 later"],
    ),
    # ── nodes that do not serve count against availability ────────────────────────────────
    row("a NotReady old node is replaced first",
        3, 1, 0, "old old old!", ["create n2@a", "retire n2 later"]),
    row("an old node cordoned by a human is not available and is replaced first",
        3, 1, 0, "old old old~", ["create n2@a", "retire n2 later"]),
    row("surge 0 retires a NotReady old node without spending maxUnavailable",
        3, 0, 1, "old old! old", ["retire n1", "add @b later"]),
    row("surge 0 retires both NotReady old nodes; the Ready one waits for the floor",
        3, 0, 1, "old! old! old", ["retire n0", "retire n1", "add @a later", "add @b later"]),
    row("surge 0 waits when a NotReady current node already uses maxUnavailable",
        3, 0, 1, "new! old old",
        ["wait availability workers"],
        stalls(1, "2 nodes to replace", 0, 1, 2, 3, 3),
    ),
    row("surge 1 with no room under the floor creates, then stalls on the retire",
        3, 1, 0, "new! old old",
        ["create n1@b", "retire n1 later"],
        stalls(1, "1 nodes to replace", 1, 0, 2, 3, 3),
    ),
    row("maxUnavailable 1 absorbs a NotReady current node",
        3, 1, 1, "new! old old", ["create n1@b", "retire n1 later"]),
    row("a Ready replacement waits while another node is down and the floor is reached",
        3, 1, 0, "old* new! old",
        ["wait availability n0"],
        stalls(1, "1 nodes to replace", 1, 0, 2, 3, 3),
    ),
    # ── work in flight ────────────────────────────────────────────────────────────────────
    row("a booting replacement is waited for and its node retired after",
        3, 1, 0, "old+ old old", ["wait node-ready r0", "retire n0 later"]),
    row("a Ready replacement lets its old node go at once",
        3, 1, 0, "old* old old", ["retire n0"]),
    row("a dead old node goes before its replacement when the surge room is full",
        2, 1, 0, "old+ old!", ["wait node-ready r0", "retire n1", "retire n0 later"]),
    row("a node already being drained is carried on and its slot refilled",
        3, 1, 0, "old> old old", ["retire n0", "add @a"]),
    row("a node being drained with surge 0 leaves no room for more",
        3, 0, 1, "old> old old", ["retire n0"]),
    # ── scaling during a replacement ──────────────────────────────────────────────────────
    row("scale up during a rollout adds the missing nodes before replacing",
        4, 1, 0, "old old", ["add @a", "add @b", "create n0@a", "retire n0 later"]),
    row("scale down during a rollout removes old nodes, oldest first, then waits for room",
        2, 1, 0, "old old old old", ["remove n0", "remove n1", "wait surge workers"]),
    row("scale down removes a drifted node before current ones",
        2, 1, 0, "new new drift", ["remove n2"]),
    row("scale up while a replacement boots takes the last surge slot",
        3, 1, 0, "old+ old", ["wait node-ready r0", "add @a", "retire n0 later"]),
    row("scale down while a replacement boots removes another old node",
        2, 1, 0, "old+ old old", ["wait node-ready r0", "remove n1", "retire n0 later"]),
    row("scale down waits on the floor while a scale-up boots; the booting one goes later",
        2, 1, 0, "old new boot", ["wait node-ready m2", "wait availability workers"]),
    row("scale down next to a Ready replacement retires both old nodes at once",
        2, 1, 0, "old* old old", ["retire n0", "remove n1"]),
    # ── zones ─────────────────────────────────────────────────────────────────────────────
    row("each replacement goes to the zone of the node it replaces",
        3, 3, 0, "old old old",
        ["create n0@a", "create n1@b", "create n2@c", "retire n0 later", "retire n1 later",
         "retire n2 later"],
        zones="abc",
    ),
    row("a node in a zone no longer declared is replaced in the least-filled declared zone",
        2, 1, 0, "old@c old@a", ["create n0@b", "retire n0 later"]),
    row("scale up fills the least-filled zones first",
        4, 2, 0, "new@a new@a", ["add @b", "add @c"], zones="abc"),
    # ── quarantine ────────────────────────────────────────────────────────────────────────
    row("a quarantined node keeps its slot and holds the floor until a human acts",
        3, 1, 0, "old# old old",
        ["wait human n0", "create n1@b", "retire n1 later"],
        stalls(1, "1 nodes to replace", 1, 0, 2, 3, 3),
    ),
    row("a quarantined node with a Ready replacement holds the surge slot as well",
        3, 1, 0, "old#* old old",
        ["wait human n0"],
        stalls(1, "2 nodes to replace", 1, 0, 3, 3, 4),
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "nodes", "zones", "first", "stall"), ROWS
)
def test_first_batch_and_stall(
    replicas: int,
    surge: int | str,
    unavailable: int | str,
    nodes: str,
    zones: str,
    first: list[str],
    stall: str,
) -> None:
    pool = _pool_plan(replicas, surge, unavailable, nodes, zones)
    batch = pool.batches[0] if pool.batches and not pool.batches[0].projected else None
    steps = [_step(a) for a in batch.actions] if batch is not None else []
    assert steps == first
    assert pool.reason == stall
