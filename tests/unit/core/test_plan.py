"""plan.make, table by table: stops, waves, clusters, pools, batches, in-flight work, reasons.

The renderings of a few whole plans are golden files (tests/golden/, see its README): a change
to what the planner decides or says shows up there as a diff to review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gitops.fleet import Fleet
from gitops.fleet.wellknown import CORDONED_BY_ANNOTATION, PHASE_ANNOTATION, QUARANTINE_LABEL
from gitops.inventory import ClusterInventory, Inventory, Machine, Node
from gitops.plan import (
    AbandonMachine,
    CreateReplacement,
    Plan,
    PoolProgress,
    RetireNode,
    RollMachineDeployment,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    WaveProgress,
    first_actionable,
    jsonout,
    make,
    next_actions,
    next_wakeup,
    only_clusters,
    text,
)
from tests.unit.core import factories as f
from tests.unit.core import golden

T0 = f.T0
OLD = {
    "os_image": "OS (v1)",
    "kernel_version": "6.6.1",
    "kubelet_version": "v1.31.0",
    "container_runtime_version": "containerd://2.0.0",
}


def steps(plan: Plan, *, only_ready: bool = False) -> list[tuple[str, str, str]]:
    """(kind, cluster, subject) of each action, in plan order."""
    return [(a.kind, a.cluster, a.subject) for a in plan.actions() if a.ready or not only_ready]


def one_pool(**pool: object) -> Fleet:
    return f.fleet([f.cluster("prod", pools=[f.pool(**pool)])])  # type: ignore[arg-type]


def with_cluster(
    inv: Inventory, name: str, fn: Callable[[ClusterInventory], ClusterInventory]
) -> Inventory:
    return Inventory(tuple(fn(c) if c.name == name else c for c in inv.clusters))


def add(
    inv: Inventory,
    cluster: str,
    *,
    nodes: tuple[Node, ...] = (),
    machines: tuple[Machine, ...] = (),
) -> Inventory:
    def change(c: ClusterInventory) -> ClusterInventory:
        keep_nodes = {n.name for n in nodes}
        keep_machines = {m.name for m in machines}
        return ClusterInventory.build(
            c.name,
            (*[n for n in c.nodes if n.name not in keep_nodes], *nodes),
            (*[m for m in c.machines if m.name not in keep_machines], *machines),
        )

    return with_cluster(inv, cluster, change)


def node_of(inv: Inventory, cluster: str, name: str) -> Node:
    c = inv.cluster(cluster)
    assert c is not None
    n = c.node(name)
    assert n is not None
    return n


# ── whole plans (golden) ────────────────────────────────────────────────────────────────────


def test_example_fleet_rolls_a_new_image_canary_first() -> None:
    fleet = f.example()
    inv = f.declared(fleet, image=lambda c, p: fleet.previous_image(fleet.cluster(c).pool(p).image))  # type: ignore[union-attr]
    plan = make(fleet, inv, RolloutState(), T0)
    assert plan.status == "in-progress"
    assert [(w.name, w.status) for w in plan.waves] == [
        ("canary", "active"),
        ("staging", "pending"),
        ("prod", "pending"),
    ]
    # Only the canary acts; everything else is shown, projected.
    assert {c for _, c, _ in steps(plan, only_ready=True)} == {"canary-eu-1"}
    # prod-us-1's system (3 nodes) and gpu-a100 (8) pools are MachineDeployments: one roll each
    assert len([a for a in plan.actions() if isinstance(a, CreateReplacement)]) == 122 - 3 - 8
    rolls = [a for a in plan.actions() if isinstance(a, RollMachineDeployment)]
    assert [(a.cluster, a.pool, a.topology) for a in rolls] == [
        ("prod-us-1", "system", False),
        ("prod-us-1", "gpu-a100", True),
    ]
    golden.check("example-rollout.txt", text.render(plan, findings=False))


def test_converged_fleet_plans_nothing() -> None:
    fleet = f.example()
    plan = make(fleet, f.declared(fleet), RolloutState(), T0)
    assert plan.status == "converged" and plan.converged
    assert [w.status for w in plan.waves] == ["complete"] * 3
    assert first_actionable(plan) is None and next_wakeup(plan) is None
    golden.check("example-converged.txt", text.render(plan))


def test_small_plan_json_is_stable() -> None:
    fleet = one_pool(replicas=2, zones=("a", "b"))
    inv = f.declared(fleet, hook=lambda c, p, i, n: replace(n, **OLD) if i == 0 else n)
    plan = make(fleet, inv, RolloutState(), T0)
    golden.check("small-plan.json", jsonout.render(plan))


# ── stops ───────────────────────────────────────────────────────────────────────────────────


def test_halted_state_stops_everything_new_with_its_reason() -> None:
    fleet = one_pool()
    inv = f.declared(fleet, image="img-1")
    state = RolloutState().halt("3 boot failures in wave prod", T0 - 60)
    plan = make(fleet, inv, state, T0)
    assert plan.status == "halted"
    assert plan.reason == "rollout halted: 3 boot failures in wave prod"
    assert steps(plan) == []
    cluster = plan.waves[0].clusters[0]
    assert cluster.status == "stopped"
    assert cluster.pools[0].reason == "not started: 3 to replace"


def test_failures_past_the_budget_halt() -> None:
    fleet = f.fleet([f.cluster("prod")], max_failed_nodes=1)
    inv = f.declared(fleet, image="img-1")
    within = make(fleet, inv, RolloutState().record_failure("prod"), T0)
    past = make(fleet, inv, RolloutState().record_failure("prod").record_failure("prod"), T0)
    assert within.status == "in-progress"
    assert past.status == "halted"
    assert "2 nodes failed in wave prod, more than maxFailedNodes 1" in past.reason
    assert next_actions(past) == ()


def test_too_much_drift_is_refused_unless_overridden() -> None:
    fleet = f.fleet([f.cluster("prod", pools=[f.pool(replicas=4)])], max_drifted_fraction=0.3)
    inv = f.declared(fleet, hook=lambda c, p, i, n: replace(n, kernel_version="x") if i < 2 else n)
    refused = make(fleet, inv, RolloutState(), T0)
    assert refused.status == "refused"
    assert refused.reason.startswith("refusing to act: 2 of 4 nodes (50%) have drifted")
    assert steps(refused) == []
    forced = make(fleet, inv, RolloutState(), T0, override_drift_limit=True)
    assert forced.status == "in-progress" and "overridden" in forced.reason
    assert steps(forced, only_ready=True) == [("CreateReplacement", "prod", "prod-workers-000")]


def test_stopped_rollout_still_finishes_work_in_flight() -> None:
    fleet = one_pool(replicas=2)
    inv = f.declared(fleet, image="img-1")
    new = f.node(fleet, "new-1", pool_name="workers", zone="a", created=T0 - 120, machine="new-1")
    repl = f.machine(
        "new-1", "workers", node_name="new-1", replaces="prod-workers-000", created=T0 - 200
    )
    inv = add(inv, "prod", nodes=(new,), machines=(repl,))
    plan = make(fleet, inv, RolloutState().halt("budget", T0), T0)
    assert plan.status == "halted"
    # The old node whose replacement is Ready still goes; nothing new starts.
    assert steps(plan) == [("RetireNode", "prod", "prod-workers-000")]


# ── waves and clusters ──────────────────────────────────────────────────────────────────────


def two_waves(soak: str = "10m", parallel: int | None = None) -> Fleet:
    prod_wave: dict[str, object] = {"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}
    if parallel:
        prod_wave["maxClustersInParallel"] = parallel
    return f.fleet(
        [f.cluster("canary", ring="canary"), f.cluster("prod-a"), f.cluster("prod-b")],
        waves=[
            {"name": "canary", "clusters": {"matchLabels": {"ring": "canary"}}, "soak": soak},
            prod_wave,
        ],
    )


def test_next_wave_waits_for_the_canary_to_converge() -> None:
    fleet = two_waves()
    plan = make(fleet, f.declared(fleet, image="img-1"), RolloutState(), T0)
    assert [(w.name, w.status) for w in plan.waves] == [("canary", "active"), ("prod", "pending")]
    assert {c for _, c, _ in steps(plan, only_ready=True)} == {"canary"}
    prod = plan.waves[1].clusters[0]
    assert prod.status == "pending" and prod.reason == "waits for wave canary to converge and soak"
    assert prod.pools[0].batches and all(b.projected for b in prod.pools[0].batches)


def test_converged_canary_soaks_before_the_next_wave() -> None:
    fleet = two_waves(soak="10m")

    def image(cluster: str, pool: str) -> str:
        return "img-2" if cluster == "canary" else "img-1"

    inv = f.declared(fleet, image=image)
    # The canary's last replacement became Ready two minutes ago.
    fresh = f.node(
        fleet,
        "canary-new",
        pool_name="workers",
        created=T0 - 300,
        ready_since=T0 - 120,
        machine="canary-new",
    )
    inv = add(
        inv,
        "canary",
        nodes=(fresh,),
        machines=(f.machine("canary-new", "workers", node_name="canary-new", by_controller=True),),
    )
    inv = with_cluster(
        inv,
        "canary",
        lambda c: ClusterInventory.build(
            c.name,
            [n for n in c.nodes if n.name != "canary-workers-000"],
            [m for m in c.machines if m.node != "canary-workers-000"],
        ),
    )
    plan = make(fleet, inv, RolloutState(), T0)
    canary = plan.waves[0]
    assert canary.status == "soaking" and canary.soak_until == T0 - 120 + 600
    assert plan.waves[1].status == "pending" and next_actions(plan) == ()
    assert next_wakeup(plan) == T0 + 480
    later = make(fleet, inv, RolloutState(), T0 + 481)
    assert [w.status for w in later.waves] == ["complete", "active"]
    # A recorded convergence later than the node's Ready time extends the soak.
    recorded = RolloutState().with_wave(WaveProgress(wave="canary", converged_at=T0 + 400))
    assert make(fleet, inv, recorded, T0 + 481).waves[0].status == "soaking"


def test_max_clusters_in_parallel_queues_the_rest_by_name() -> None:
    fleet = two_waves(parallel=1)
    inv = f.declared(fleet, image=lambda c, p: "img-2" if c == "canary" else "img-1")
    plan = make(fleet, inv, RolloutState(), T0)
    prod = {c.name: c for c in plan.waves[1].clusters}
    assert (prod["prod-a"].status, prod["prod-b"].status) == ("active", "queued")
    assert prod["prod-b"].reason == "maxClustersInParallel 1: waiting for a free slot"
    # A cluster with work in flight keeps its slot, even if it sorts later.
    busy = add(
        inv,
        "prod-b",
        machines=(f.machine("r-1", "workers", replaces="prod-b-workers-000", created=T0 - 60),),
    )
    plan = make(fleet, busy, RolloutState(), T0)
    prod = {c.name: c for c in plan.waves[1].clusters}
    assert (prod["prod-a"].status, prod["prod-b"].status) == ("queued", "active")
    assert "busy: prod-b" in prod["prod-a"].reason


def test_paused_cluster_gets_no_new_actions_and_says_so() -> None:
    fleet = f.fleet([f.cluster("prod-a", paused=True), f.cluster("prod-b")])
    plan = make(fleet, f.declared(fleet, image="img-1"), RolloutState(), T0)
    clusters = {c.name: c for c in plan.waves[0].clusters}
    assert clusters["prod-a"].status == "paused"
    assert clusters["prod-a"].reason == "paused in git (spec.paused): nothing new starts here"
    assert clusters["prod-a"].pools[0].status == "paused"
    assert clusters["prod-a"].pools[0].batches == ()
    assert {c for _, c, _ in steps(plan)} == {"prod-b"}


def test_unreachable_cluster_is_unknown_and_the_others_are_planned() -> None:
    fleet = two_waves()
    inv = f.declared(fleet, image="img-1", unreachable={"prod-a": "dial tcp: i/o timeout"})
    plan = make(fleet, inv, RolloutState(), T0)
    assert plan.unknown_clusters() == ("prod-a",)
    unknown = plan.waves[1].clusters[0]
    assert unknown.status == "unknown" and "dial tcp: i/o timeout" in unknown.reason
    # A canary that cannot be seen blocks the waves after it.
    inv = f.declared(fleet, unreachable={"canary": "x"})
    blocked = make(fleet, inv, RolloutState(), T0)
    assert (
        blocked.waves[0].status == "blocked" and blocked.waves[0].reason == "canary is unreachable"
    )
    assert blocked.waves[1].status == "pending"


def test_a_fleet_with_an_unobserved_cluster_is_never_converged() -> None:
    # Every observed cluster is up to date, so there is not a single action anywhere; the
    # cluster that could not be observed (its kubeconfig Secret unreadable for a moment) may
    # still run the old image. Calling that "converged" ended `gitops apply` with exit 0.
    fleet = two_waves()
    inv = f.declared(fleet, unreachable={"prod-a": "reading Secret: 500 Internal Server Error"})
    plan = make(fleet, inv, RolloutState(), T0)
    assert next(plan.actions(), None) is None
    assert not plan.converged and plan.status == "in-progress"
    assert plan.waves[1].status == "blocked" and plan.waves[1].reason == "prod-a is unreachable"
    assert make(fleet, f.declared(fleet), RolloutState(), T0).status == "converged"


# ── pools: batches, budgets, order ──────────────────────────────────────────────────────────


def test_batches_honour_surge_and_replace_in_the_same_zone() -> None:
    fleet = one_pool(replicas=5, surge=2, zones=("a", "b", "c"))
    plan = make(fleet, f.declared(fleet, image="img-1"), RolloutState(), T0)
    (pool,) = plan.waves[0].clusters[0].pools
    creates = [
        [(a.replaces, a.zone) for a in b.actions if isinstance(a, CreateReplacement)]
        for b in pool.batches
    ]
    assert creates == [
        [("prod-workers-000", "a"), ("prod-workers-001", "b")],
        [("prod-workers-002", "c"), ("prod-workers-003", "a")],
        [("prod-workers-004", "b")],
    ]
    first = pool.batches[0].actions
    assert [a.ready for a in first] == [True, True, False, False]
    assert first[1].budget == "surge: 7/7 machines after this (replicas 5 + maxSurge 2)"
    assert first[2].budget == "after its replacement is Ready"


def test_retire_order_is_drifted_or_unhealthy_then_oldest_then_name() -> None:
    fleet = one_pool(replicas=5, surge=1)

    def hook(c: str, p: str, i: int, n: Node) -> Node:
        n = replace(n, **OLD, created=T0 - 1000)  # all outdated and equally old ...
        if i == 3:
            return replace(n, kernel_version="patched")  # ... one drifted
        if i == 4:
            return replace(n, ready=False)  # ... one NotReady
        if i == 1:
            return replace(n, created=T0 - 5000)  # ... one older
        return n

    plan = make(fleet, f.declared(fleet, hook=hook), RolloutState(), T0)
    order = [a.replaces for a in plan.actions() if isinstance(a, CreateReplacement)]
    # Unhealthy before drifted within the first group: retiring it costs no availability.
    assert order == [
        "prod-workers-004",
        "prod-workers-003",
        "prod-workers-001",
        "prod-workers-000",
        "prod-workers-002",
    ]


def test_max_surge_zero_breaks_before_making_within_unavailability() -> None:
    fleet = one_pool(replicas=4, surge=0, unavailable=2)
    plan = make(fleet, f.declared(fleet, image="img-1"), RolloutState(), T0)
    first = plan.waves[0].clusters[0].pools[0].batches[0].actions
    assert [(a.kind, a.subject, a.ready) for a in first] == [
        ("RetireNode", "prod-workers-000", True),
        ("RetireNode", "prod-workers-001", True),
        ("ScaleUp", "a", False),
        ("ScaleUp", "b", False),
    ]
    assert isinstance(first[0], RetireNode) and first[0].replacement == ""


def test_scale_up_goes_to_the_least_filled_zones() -> None:
    fleet = one_pool(replicas=4, zones=("a", "b", "c"))
    plan = make(fleet, f.declared(fleet, count=lambda c, p: 2), RolloutState(), T0)
    ups = [a for a in plan.actions() if isinstance(a, ScaleUp)]
    assert [(a.zone, a.ready) for a in ups] == [("c", True), ("a", True)]


def test_scale_down_retires_drifted_then_oldest_within_availability() -> None:
    fleet = one_pool(replicas=2, unavailable=0)

    def hook(c: str, p: str, i: int, n: Node) -> Node:
        return replace(n, kernel_version="x") if i == 3 else n

    plan = make(fleet, f.declared(fleet, count=lambda c, p: 5, hook=hook), RolloutState(), T0)
    downs = [a for a in plan.actions() if isinstance(a, ScaleDown)]
    assert [(a.node, a.ready) for a in downs] == [
        ("prod-workers-003", True),
        ("prod-workers-000", True),
        ("prod-workers-001", True),
    ]
    # The drifted node went as part of scaling down: it is not replaced as well.
    assert not [a for a in plan.actions() if isinstance(a, CreateReplacement)]


def test_availability_floor_holds_when_another_node_is_down() -> None:
    fleet = one_pool(replicas=3, surge=1, unavailable=0)
    inv = f.declared(fleet, hook=lambda c, p, i, n: replace(n, ready=False) if i == 2 else n)
    inv = add(
        inv,
        "prod",
        nodes=(
            replace(node_of(inv, "prod", "prod-workers-000"), **OLD),
            f.node(fleet, "new-1", pool_name="workers", machine="new-1", ready_since=T0 - 30),
        ),
        machines=(f.machine("new-1", "workers", node_name="new-1", replaces="prod-workers-000"),),
    )
    plan = make(fleet, inv, RolloutState(), T0)
    (wait,) = [a for a in plan.actions() if isinstance(a, Wait)]
    assert wait.on == "availability" and wait.what == "prod-workers-000"
    assert "3 nodes are available and 3 must stay so" in wait.reason
    assert next_actions(plan) == ()


def test_soak_between_batches_of_a_pool() -> None:
    fleet = one_pool(replicas=3, soak="5m")
    inv = f.declared(fleet, hook=lambda c, p, i, n: replace(n, **OLD) if i > 0 else n)
    state = RolloutState().with_pool(
        PoolProgress(cluster="prod", pool="workers", last_batch_ready_at=T0 - 60)
    )
    plan = make(fleet, inv, state, T0)
    (wait,) = next(iter(plan.waves[0].clusters[0].pools)).batches[0].actions
    assert isinstance(wait, Wait) and wait.on == "soak" and wait.until == T0 + 240
    assert next_actions(make(fleet, inv, state, T0 + 240))[0].kind == "CreateReplacement"


def test_report_policy_leaves_drifted_nodes_in_place() -> None:
    fleet = f.fleet([f.cluster("prod")], remediate="report")
    inv = f.declared(fleet, hook=lambda c, p, i, n: replace(n, kernel_version="x") if i == 0 else n)
    plan = make(fleet, inv, RolloutState(), T0)
    assert plan.converged and plan.status == "converged"
    assert [x.kind for x in plan.findings] == ["ImageMismatch"]
    assert plan.waves[0].clusters[0].pools[0].drifted == 1


# ── work in flight ──────────────────────────────────────────────────────────────────────────


def in_flight(ready: bool, created: float = T0 - 60, **machine: object) -> tuple[Fleet, Inventory]:
    fleet = one_pool(replicas=2, surge=1, startup="10m")
    inv = f.declared(fleet, image="img-1")
    repl = f.machine(
        "new-1",
        "workers",
        node_name="new-1" if ready else "",
        replaces="prod-workers-000",
        created=created,
        **machine,  # type: ignore[arg-type]
    )
    nodes = (
        (f.node(fleet, "new-1", pool_name="workers", machine="new-1", ready_since=T0 - 5),)
        if ready
        else ()
    )
    return fleet, add(inv, "prod", nodes=nodes, machines=(repl,))


def test_replacement_not_ready_yet_is_waited_for_until_its_timeout() -> None:
    fleet, inv = in_flight(ready=False)
    plan = make(fleet, inv, RolloutState(), T0)
    first = plan.waves[0].clusters[0].pools[0].batches[0].actions
    assert [(a.kind, a.subject, a.ready) for a in first] == [
        ("Wait", "node-ready:new-1", False),
        ("RetireNode", "prod-workers-000", False),
    ]
    assert isinstance(first[0], Wait) and first[0].until == T0 - 60 + 600
    # No second replacement for the same node, and no new one: the surge slot is taken.
    assert not [
        a
        for a in plan.actions()
        if isinstance(a, CreateReplacement) and a.replaces == "prod-workers-000"
    ]


def test_ready_replacement_retires_its_old_node() -> None:
    fleet, inv = in_flight(ready=True)
    plan = make(fleet, inv, RolloutState(), T0)
    action = first_actionable(plan)
    assert isinstance(action, RetireNode)
    assert (action.node, action.machine, action.replacement) == (
        "prod-workers-000",
        "m-prod-workers-000",
        "new-1",
    )
    assert action.reason == "retire prod-workers-000, new-1 is Ready: Outdated (img-1 → img-2)"


def test_replacement_past_its_startup_timeout_is_abandoned() -> None:
    fleet, inv = in_flight(ready=False, created=T0 - 601)
    plan = make(fleet, inv, RolloutState(), T0)
    first = first_actionable(plan)
    assert isinstance(first, AbandonMachine)
    assert (first.machine, first.replaces, first.counted) == ("new-1", "prod-workers-000", False)
    # Its node is due again; the failed machine still holds the surge slot until it is gone.
    assert [a.kind for a in next_actions(plan)] == ["AbandonMachine"]


def test_machine_marked_failed_is_abandoned_without_counting_twice() -> None:
    fleet, inv = in_flight(ready=False, failed="boot failed")
    (action,) = next_actions(make(fleet, inv, RolloutState(), T0))
    assert isinstance(action, AbandonMachine) and action.counted
    assert action.reason == "abandon new-1: marked failed: boot failed"


def test_retirement_under_way_is_carried_on_without_a_second_budget() -> None:
    fleet = one_pool(replicas=2, surge=1, unavailable=0)
    inv = f.declared(fleet)
    old = node_of(inv, "prod", "prod-workers-001")
    inv = add(inv, "prod", nodes=(replace(old, **f.cordoned_by_us(old, "draining")),))
    plan = make(fleet, inv, RolloutState(), T0)
    action, scale_up = next_actions(plan)
    assert isinstance(action, RetireNode) and action.node == "prod-workers-001"
    assert action.reason == "carry on retiring prod-workers-001 (phase draining)"
    assert isinstance(scale_up, ScaleUp) and scale_up.zone == "b"
    # Leaving without a replacement, so the pool is one short: the surge room allows a
    # scale-up at once, in the zone the leaving node empties.
    assert [a.kind for a in plan.actions()] == ["RetireNode", "ScaleUp"]


def test_quarantined_node_waits_for_a_human() -> None:
    fleet, inv = in_flight(ready=True)
    old = node_of(inv, "prod", "prod-workers-000")
    labels = {**old.labels, QUARANTINE_LABEL: "drain-timeout"}
    inv = add(inv, "prod", nodes=(replace(old, labels=labels, unschedulable=True),))
    plan = make(fleet, inv, RolloutState(), T0)
    waits = [a for a in plan.actions() if isinstance(a, Wait)]
    assert [(w.on, w.what) for w in waits] == [("human", "prod-workers-000")]
    assert not plan.converged
    assert not [
        a for a in plan.actions() if isinstance(a, RetireNode) and a.node == "prod-workers-000"
    ]


def test_stale_controller_cordon_is_undone() -> None:
    fleet = one_pool(replicas=2)
    inv = f.declared(fleet)
    n = node_of(inv, "prod", "prod-workers-001")
    annotations = {**n.annotations, CORDONED_BY_ANNOTATION: "p-0"}
    inv = add(inv, "prod", nodes=(replace(n, unschedulable=True, annotations=annotations),))
    (action,) = next_actions(make(fleet, inv, RolloutState(), T0))
    assert isinstance(action, Uncordon) and action.node == "prod-workers-001"
    # Not while it is being retired.
    leaving = {**annotations, PHASE_ANNOTATION: "draining"}
    inv = add(inv, "prod", nodes=(replace(n, unschedulable=True, annotations=leaving),))
    kinds = [a.kind for a in next_actions(make(fleet, inv, RolloutState(), T0))]
    assert kinds == ["RetireNode", "ScaleUp"]


# ── helpers the executor and the CLI use ────────────────────────────────────────────────────


def test_only_clusters_keeps_the_named_ones_and_their_findings() -> None:
    fleet = two_waves()
    plan = make(fleet, f.declared(fleet, image="img-1"), RolloutState(), T0)
    narrowed = only_clusters(plan, ["prod-b"])
    assert [(w.name, [c.name for c in w.clusters]) for w in narrowed.waves] == [
        ("prod", ["prod-b"])
    ]
    assert {x.cluster for x in narrowed.findings} == {"prod-b"}


def test_plan_id_names_fleet_revision_inventory_and_planner() -> None:
    fleet = one_pool()
    inv = f.declared(fleet, image="img-1")
    a = make(fleet, inv, RolloutState(), T0)
    assert a.id == make(fleet, inv, RolloutState(), T0 + 999).id
    assert a.id != make(fleet.with_revision("rev-2"), inv, RolloutState(), T0).id
    assert a.id != make(fleet, f.declared(fleet), RolloutState(), T0).id
    assert len(a.id) == 16 and a.inventory_digest == inv.digest()


@pytest.mark.parametrize("revision", ["", "abc"])
def test_fleet_without_revision_is_identified_by_content(revision: str) -> None:
    fleet = one_pool().with_revision(revision)
    other = one_pool(replicas=4).with_revision(revision)
    inv = Inventory(())
    same = make(fleet, inv, RolloutState(), T0).id == make(other, inv, RolloutState(), T0).id
    assert same is bool(revision)


def test_state_round_trips_through_its_dict_form() -> None:
    state = (
        RolloutState(revision="r")
        .with_wave(WaveProgress(wave="w", started_at=1.0, failures=2))
        .with_pool(PoolProgress(cluster="c", pool="p", last_batch_ready_at=3.5))
        .halt("why", 9.0)
    )
    assert RolloutState.from_dict(state.to_dict()) == state
    assert state.resume().wave("w").failures == 0 and not state.resume().halted
    with pytest.raises(ValueError, match="schemaVersion"):
        RolloutState.from_dict({"schemaVersion": "v0"})
    with pytest.raises(ValueError, match="haltedAt"):
        RolloutState.from_dict({**state.to_dict(), "haltedAt": "yesterday"})


# ── remembering between plans ─────────────────────────────────────────────────────────────


def _fresh(inv: Inventory) -> Inventory:
    """The same content in new objects: nothing remembered from earlier plans."""
    return Inventory(
        tuple(
            ClusterInventory(
                name=c.name,
                reachable=c.reachable,
                error=c.error,
                nodes=c.nodes,
                machines=c.machines,
                pdbs=c.pdbs,
            )
            for c in inv.clusters
        )
    )


def test_planning_again_from_the_same_inventory_gives_what_a_fresh_plan_gives() -> None:
    # The executor plans again from the same inventory objects for clusters that did not
    # change, and the planner remembers what it derived from them. Across the start-up
    # deadline of an in-flight replacement, gates opening and a halt, every plan must still be
    # byte for byte the plan made from scratch.
    waves = two_waves(soak="1m")
    canary_done = RolloutState().with_cluster(
        replace(RolloutState().cluster("canary"), converged_at=T0 - 600)
    )
    soaked = one_pool(replicas=3, soak="5m")
    soaking_pool = RolloutState().with_pool(
        PoolProgress(cluster="prod", pool="workers", last_batch_ready_at=T0 - 60)
    )
    cases = [
        (
            soaked,
            f.declared(soaked, hook=lambda c, p, i, n: replace(n, **OLD) if i > 0 else n),
            soaking_pool,
        ),
        (*in_flight(ready=False), RolloutState()),
        (*in_flight(ready=True), RolloutState()),
        (waves, f.declared(waves, image="img-1"), RolloutState()),
        (waves, f.declared(waves, image="img-1"), RolloutState().halt("stop", T0)),
        (waves, f.declared(waves, image="img-1"), canary_done),
    ]
    for fleet, inv, state in cases:
        for now in (T0, T0 + 241, T0 + 300, T0 + 541, T0 + 3600):
            remembered = make(fleet, inv, state, now)
            assert jsonout.render(remembered) == jsonout.render(
                make(fleet, _fresh(inv), state, now)
            )
    fleet, inv = in_flight(ready=False)
    make(fleet, inv, RolloutState(), T0)  # remembered before the deadline ...
    late = make(fleet, inv, RolloutState(), T0 + 3600)  # ... must not hide it after
    assert [a for a in late.actions() if isinstance(a, AbandonMachine)]


def test_an_abandoned_replacement_says_what_cluster_api_reported() -> None:
    """The failure or the unprovisioned infrastructure, read alike from v1beta1 and v1beta2."""
    fleet, inv = in_flight(ready=False, created=T0 - 601)
    (repl,) = [m for m in inv.cluster("prod").machines if m.name == "new-1"]  # type: ignore[union-attr]

    def reason(machine: Machine) -> str:
        (action,) = next_actions(
            make(fleet, add(inv, "prod", machines=(machine,)), RolloutState(), T0)
        )
        assert isinstance(action, AbandonMachine)
        return action.reason

    timeout = "abandon new-1: no Ready node 10m after creation (nodeStartupTimeout"
    assert reason(repl) == f"{timeout}; its infrastructure was never provisioned)"
    provisioned = replace(repl, phase="Provisioned", infrastructure_ready=True)
    assert reason(provisioned) == f"{timeout})"
    failed = replace(provisioned, failure="CreateError: no capacity in eu-1a")
    assert reason(failed) == f"{timeout}; Cluster API reports CreateError: no capacity in eu-1a)"
