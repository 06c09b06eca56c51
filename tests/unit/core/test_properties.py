"""Properties of the planner over generated fleets (hypothesis).

* the same plan, byte for byte, whatever order the API listed clusters, nodes and machines in;
* every batch of every plan keeps ``machines <= replicas + maxSurge`` and ``available >=
  replicas - maxUnavailable`` at each step when carried out in the order listed (or, where the
  observed fleet already broke a bound, never makes it worse);
* carried out by a fake executor (tests/unit/core/executor.py), plan → act → observe → plan
  converges to an empty plan with no finding left, every outdated or drifted node retired
  exactly once, no node given two replacements, and the bounds checked after every action.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops import drift
from gitops.fleet import Fleet
from gitops.inventory import ClusterInventory, Inventory, Node
from gitops.plan import (
    AbandonMachine,
    CreateReplacement,
    Plan,
    RetireNode,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
    jsonout,
    make,
)
from tests.examples import examples
from tests.unit.core import factories as f
from tests.unit.core.executor import FakeFleet

SETTINGS = settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
OLD = {
    "os_image": "OS (v1)",
    "kernel_version": "6.6.1",
    "kubelet_version": "v1.31.0",
    "container_runtime_version": "containerd://2.0.0",
}
# What may be wrong with a node. Only nodes due for replacement are made unhealthy or cordoned
# by a human: a healthy, current node that is down would (rightly) hold the rollout forever.
STATES = ["ok", "ok", "old", "old", "patched", "unlabelled", "old-notready", "old-cordoned"]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Fleet, Inventory]:
    clusters = []
    for c in range(draw(st.integers(1, 3))):
        pools = []
        for p in range(draw(st.integers(1, 2))):
            surge = draw(st.integers(0, 3))
            unavailable = draw(st.integers(0 if surge else 1, 2))
            zones = ("a", "b", "c")[: draw(st.integers(1, 3))]
            pools.append(
                f.pool(
                    f"p{p}",
                    replicas=draw(st.integers(0, 6)),
                    surge=surge,
                    unavailable=unavailable,
                    zones=zones,
                    labels={"role": f"p{p}"},
                    soak=draw(st.sampled_from(["0", "2m"])),
                )
            )
        ring = draw(st.sampled_from(["canary", "prod"]))
        clusters.append(f.cluster(f"c{c}", ring=ring, pools=pools))
    fleet = f.fleet(
        clusters,
        waves=[
            {"name": "canary", "clusters": {"matchLabels": {"ring": "canary"}}, "soak": "5m"},
            {
                "name": "prod",
                "clusters": {"matchLabels": {"ring": "prod"}},
                "maxClustersInParallel": draw(st.sampled_from([1, 2])),
            },
        ],
    )
    counts = {
        (c.name, p.name): max(0, p.replicas + draw(st.integers(-2, 2)))
        for c in fleet.clusters
        for p in c.spec.node_pools
    }
    states = {key: [draw(st.sampled_from(STATES)) for _ in range(n)] for key, n in counts.items()}
    ages = {key: [draw(st.integers(0, 3)) for _ in range(n)] for key, n in counts.items()}

    def hook(cluster: str, pool: str, i: int, node: Node) -> Node:
        state = states[(cluster, pool)][i]
        node = replace(node, created=f.T0 - 1000 * (1 + ages[(cluster, pool)][i]))
        if state == "old":
            return replace(node, **OLD)
        if state == "patched":
            return replace(node, kernel_version="patched")
        if state == "unlabelled":
            labels = {k: v for k, v in node.labels.items() if k != "role"}
            return replace(node, labels=labels)
        if state == "old-notready":
            return replace(node, ready=False, **OLD)
        if state == "old-cordoned":
            return replace(node, unschedulable=True, **OLD)
        return node

    inventory = f.declared(fleet, count=lambda c, p: counts[(c, p)], hook=hook)
    return fleet, inventory


def shuffled(fleet: Fleet, inventory: Inventory, seed: int) -> tuple[Fleet, Inventory]:
    rng = random.Random(seed)

    def mix(items: tuple[object, ...]) -> tuple[object, ...]:
        out = list(items)
        rng.shuffle(out)
        return tuple(out)

    clusters = [
        ClusterInventory(name=c.name, nodes=mix(c.nodes), machines=mix(c.machines))  # type: ignore[arg-type]
        for c in inventory.clusters
    ]
    rng.shuffle(clusters)
    return replace(fleet, clusters=mix(fleet.clusters)), Inventory(tuple(clusters))  # type: ignore[arg-type]


@SETTINGS
@given(fleets(), st.integers(0, 2**16))
def test_same_plan_whatever_the_input_order(case: tuple[Fleet, Inventory], seed: int) -> None:
    fleet, inventory = case
    plan = jsonout.render(make(fleet, inventory, RolloutState(), f.T0))
    other_fleet, other_inventory = shuffled(fleet, inventory, seed)
    again = jsonout.render(make(other_fleet, other_inventory, RolloutState(), f.T0))
    assert again == plan


def simulate_batches(fleet: Fleet, inventory: Inventory, plan: Plan) -> None:
    """Carry each pool's batches out on counts, in the order listed, checking the bounds."""
    for wave in plan.waves:
        for cluster_plan in wave.clusters:
            observed = inventory.cluster(cluster_plan.name)
            doc = fleet.cluster(cluster_plan.name)
            assert observed is not None and doc is not None
            for pool_plan in cluster_plan.pools:
                pool = doc.pool(pool_plan.name)
                assert pool is not None
                members = {m.name: m for m in observed.members(pool.name)}
                machines = {m.machine.name: m for m in members.values() if m.machine}
                m_count, a_count = pool_plan.machines, pool_plan.available
                ceiling = max(pool.replicas + pool.surge, m_count)
                floor = min(pool.replicas - pool.unavailable, a_count)
                up: set[str] = set()  # nodes counted available by this simulation
                down: set[str] = set()  # nodes that stopped counting
                for batch in pool_plan.batches:
                    for action in batch.actions:
                        if isinstance(action, CreateReplacement | ScaleUp):
                            m_count += 1
                            a_count += 1  # a new node, Ready before anything relies on it
                        elif isinstance(action, RetireNode | ScaleDown):
                            name = action.node or action.machine
                            if isinstance(action, RetireNode) and action.replacement:
                                repl = machines.get(action.replacement)
                                if repl is not None and not repl.available and repl.name not in up:
                                    up.add(repl.name)
                                    a_count += 1  # its replacement became Ready first
                            member = members.get(name) or machines.get(action.machine)
                            if member is not None and name not in down:
                                down.add(name)
                                was_up = member.available or member.name in up
                                a_count -= 1 if was_up else 0
                            m_count -= 1
                        elif isinstance(action, AbandonMachine):
                            m_count -= 1
                        elif isinstance(action, Uncordon):
                            member = members[action.node]
                            a_count += 1 if member.ready else 0
                        assert m_count <= ceiling, (action.key, m_count, ceiling)
                        assert a_count >= floor, (action.key, a_count, floor)


@SETTINGS
@given(fleets())
def test_bounds_hold_in_every_batch(case: tuple[Fleet, Inventory]) -> None:
    fleet, inventory = case
    simulate_batches(fleet, inventory, make(fleet, inventory, RolloutState(), f.T0))


@SETTINGS
@given(fleets())
def test_rollout_converges_retiring_each_due_node_once(case: tuple[Fleet, Inventory]) -> None:
    fleet, inventory = case
    findings = drift.find(fleet, inventory)
    due = {
        (x.cluster, x.node)
        for x in findings
        if x.kind in ("Outdated", "ImageMismatch", "ConfigMismatch")
    }
    fake = FakeFleet.observe(fleet, inventory, f.T0)
    replacements: Counter[tuple[str, str]] = Counter()
    original_apply = fake.apply

    def apply(action: object) -> None:
        if isinstance(action, CreateReplacement):
            replacements[(action.cluster, action.replaces)] += 1
        original_apply(action)  # type: ignore[arg-type]

    fake.apply = apply  # type: ignore[method-assign]
    plan, _ = fake.roll(max_steps=300)
    assert plan.status == "converged"
    assert drift.find(fleet, fake.inventory()) == ()
    for key in due:
        assert fake.retired[key] == 1, key
    assert all(n <= 1 for n in replacements.values()), replacements
    assert all(n == 1 for n in fake.retired.values())


@SETTINGS
@given(fleets(), st.integers(2, 4))
def test_rollout_converges_through_boot_failures(
    case: tuple[Fleet, Inventory], fail_every: int
) -> None:
    fleet, inventory = case
    fake = FakeFleet.observe(fleet, inventory, f.T0)
    fake.fail_every = fail_every
    plan, _ = fake.roll(max_steps=400)
    assert plan.status == "converged"
    assert drift.find(fleet, fake.inventory()) == ()
    # Every machine that never booted was abandoned once its startup timeout passed.
    assert fake.abandoned == len(fake.boot_fails)
    assert all(n == 1 for n in fake.retired.values())
