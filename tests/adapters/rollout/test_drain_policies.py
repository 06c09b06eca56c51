"""onDrainTimeout and nodeStartupTimeout, end to end on the simulator.

A bare pod pinned to one old node, under a PodDisruptionBudget (``minAvailable: 1``) that never
allows its eviction, blocks that node's drain for good. With a short ``drainTimeout`` each
``onDrainTimeout`` policy is then held to its word: ``fail`` halts the rollout and names the
blocking PDB where an SRE will look (the ConfigMap record, the plan, the command's output);
``quarantine`` leaves the node cordoned and labelled and carries on with every other node;
``force`` deletes the pods once the timeout passed and completes.

For start-up, the simulator fails the boots of replacements (``boot_failure_rate``) until two
have failed; each is abandoned after ``nodeStartupTimeout`` (marked failed, deleted, counted),
and with ``maxFailedNodes: 2`` the rollout still converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    DRAIN_BLOCKED_ANNOTATION,
    FAILED_ANNOTATION,
    QUARANTINE_LABEL,
)
from gitops.plan import Plan, Wait
from gitops.rollout.result import PassResult
from gitops.sim.api.resources import RESOURCES
from gitops.sim.api.store import Event as StoreEvent
from tests.adapters.rollout.conftest import POLICY_SCALE, Rollout
from tests.adapters.rollout.fleets import (
    ClusterSpec,
    PoolSpec,
    Sims,
    pin_unevictable_pod,
    pool_nodes,
    rollout_record,
    run_until,
    write_fleet,
)
from tests.adapters.rollout.invariants import check, load_events

DRAIN_TIMEOUT = 100.0  # fleet seconds; 1 s at POLICY_SCALE
# The drain clock starts at the reconcile that cordons (its ``now``), a few milliseconds before
# the cordon reaches the API server and the audit log.
SLACK = 0.1
# Kubernetes stamps creationTimestamp to the second, and the start-up clock runs from it.
TIMESTAMP_RESOLUTION = 1.0


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Sims]:
    started = Sims(tmp_path)
    yield started
    started.stop()


def drain_fleet(root: Path, policy: str) -> Path:
    """c1 (wave ``first``): a pool that will hold the pinned pod and a plain one; c2 later.

    The blocked pool has ``maxSurge: 2`` so that both its nodes are replaced at once: a
    quarantined node keeps its slot, and with less surge the other node could not go.
    """
    blocked = PoolSpec(
        "blocked",
        2,
        surge=2,
        drain_timeout=f"{DRAIN_TIMEOUT:g}s",
        on_drain_timeout=policy,
    )
    return write_fleet(
        root,
        (
            ClusterSpec("c1", "first", (blocked, PoolSpec("other", 2))),
            ClusterSpec("c2", "second", (PoolSpec("workers", 2),)),
        ),
        waves=(("first", "10s", None), ("second", "10s", None)),
    )


def _pinned(r: Rollout) -> str:
    """Pin the unevictable pod on the first old node of c1/blocked; that node's name."""
    target = str(pool_nodes(r, "c1", "blocked")[0]["metadata"]["name"])
    pin_unevictable_pod(r, "c1", target)
    return target


def _node(r: Rollout, cluster: str, name: str) -> dict[str, Any] | None:
    found = [
        n for n in r.sim.store.list(cluster, RESOURCES["nodes"])[0] if n["metadata"]["name"] == name
    ]
    return found[0] if found else None


def _first_time(events: list[dict[str, Any]], event: str, **match: str) -> float:
    times = [
        e["time"]
        for e in events
        if e.get("event") == event and all(e.get(k) == v for k, v in match.items())
    ]
    assert times, f"no {event} {match} in the audit log"
    return float(min(times))


def test_fail_halts_and_names_the_blocking_pdb(sims: Sims, tmp_path: Path) -> None:
    r = sims.start(drain_fleet(tmp_path / "fleet", "fail"))
    target = _pinned(r)
    plan = r.run(timeout=30)
    assert plan.status == "halted", plan.reason
    # The reason names the node, the PDB (namespace/name) and the policy, in the plan ...
    for words in (target, "PodDisruptionBudget shop/pinned", "onDrainTimeout: fail"):
        assert words in plan.reason
    # ... and in the durable record an SRE reads with kubectl.
    record = rollout_record(r)
    assert record["halted"] is True
    assert "PodDisruptionBudget shop/pinned" in record["haltReason"]
    assert target in record["haltReason"]
    events = load_events(r.audit)
    cordoned = _first_time(events, "node-cordoned", cluster="c1", node=target)
    # It gave up only after drainTimeout, and started nothing afterwards, nor in wave two.
    assert record["haltedAt"] - cordoned >= DRAIN_TIMEOUT * POLICY_SCALE - SLACK
    assert not [
        e for e in events if e.get("event") == "machine-created" and e["time"] > record["haltedAt"]
    ]
    assert not [e for e in events if e.get("event") == "machine-created" and e["cluster"] == "c2"]
    node = _node(r, "c1", target)
    assert node is not None and node["spec"].get("unschedulable") is True  # left for a human
    # The node itself says what blocks it (written once, not on every try: see the next test).
    assert node["metadata"]["annotations"][DRAIN_BLOCKED_ANNOTATION] == "shop/pinned"
    assert _refusals(r), "no eviction was refused"
    assert check(r.audit, r.snap, r.fleet) == []


def _refusals(r: Rollout, pod: str = "") -> list[dict[str, Any]]:
    """Evictions (of ``pod``, or of any) that a PodDisruptionBudget refused, from the audit."""
    return [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request"
        and e["subresource"] == "eviction"
        and e["code"] == 429
        and e["name"] == (pod or e["name"])
    ]


def test_a_blocked_drain_names_its_budget_on_the_node_once_not_on_every_try(
    sims: Sims, tmp_path: Path
) -> None:
    """Pass by pass, each seeing what the last one wrote: the node is patched to name its
    blocking budgets only when they change, not on every refused try.

    Counted in passes driven here, not in a time window, so that the number of tries does not
    depend on the machine's speed; the drain never times out (``drainTimeout: 60m``). Which
    budgets block may change while evicted pods find new nodes: the store's events say how
    often the annotation changed, and each change is one patch.
    """
    blocked = PoolSpec("blocked", 2, surge=2, drain_timeout="60m")
    root = write_fleet(
        tmp_path / "fleet", (ClusterSpec("c1", "first", (blocked, PoolSpec("other", 2))),)
    )
    r = sims.start(root)
    target = _pinned(r)
    named: list[str] = []  # the annotation's values on the target, as the store changed them

    def seen_by_store(ev: StoreEvent) -> None:
        if ev.resource is RESOURCES["nodes"] and ev.object["metadata"]["name"] == target:
            value = (ev.object["metadata"].get("annotations") or {}).get(DRAIN_BLOCKED_ANNOTATION)
            if value and (not named or named[-1] != value):
                named.append(value)

    r.sim.store.subscribe(seen_by_store)
    executor, observer = r.executor()

    def cache_shows_the_node_as_stored() -> bool:
        stored = _node(r, "c1", target)
        cluster = observer.inventory().cluster("c1")
        cached = cluster.node(target) if cluster is not None else None
        return (
            stored is not None
            and cached is not None
            and cached.annotations == (stored["metadata"].get("annotations") or {})
            and cached.unschedulable == bool(stored["spec"].get("unschedulable"))
        )

    results: list[PassResult] = []
    try:
        deadline = time.monotonic() + 120
        while len(_refusals(r, "pinned")) < 6:  # one per try: it never goes
            assert time.monotonic() < deadline, "fewer than six refused tries in 120 s"
            results.append(executor.reconcile())
            executor.close()  # the pass's steps have finished
            while not cache_shows_the_node_as_stored():
                assert time.monotonic() < deadline, "the cache never showed the node"
                time.sleep(0.01)
            wake = executor.next_retry()  # the blocked drain's backoff
            if wake is not None:
                time.sleep(max(0.0, wake - time.time()))
    finally:
        executor.stopping.set()
        executor.close()
        observer.stop()
    patches = [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request" and e["verb"] == "patch" and e["name"] == target
    ]
    assert named and "shop/pinned" in named[-1]
    # The cordon, then one patch per change of the blocking budgets (before this, every try
    # patched the node again).
    assert len(patches) == 1 + len(named), (patches, named)
    assert len(named) < len(_refusals(r, "pinned"))
    # Each pass's result says how the steps ended since the last one: the retirement, not
    # settled, blocked by the budget (its level-free, typed outcome).
    retirements = [
        o
        for result in results
        for o in result.outcomes
        if (o.kind, o.subject) == ("RetireNode", target)
    ]
    assert retirements
    assert not any(o.outcome.settled for o in retirements)
    assert any("shop/pinned" in o.outcome.blocked_by for o in retirements)


def _quarantine_settled(plan: Plan, target: str) -> bool:
    """c1's plain pool converged and its blocked pool waits on a human for ``target`` alone."""
    c1 = next(c for w in plan.waves for c in w.clusters if c.name == "c1")
    pools = {p.name: p for p in c1.pools}
    blocked = [a for b in pools["blocked"].batches for a in b.actions]
    return (
        pools["other"].status == "converged"
        and bool(blocked)
        and all(isinstance(a, Wait) and a.on == "human" and a.what == target for a in blocked)
    )


def test_quarantine_leaves_the_node_cordoned_and_labelled_and_goes_on(
    sims: Sims, tmp_path: Path
) -> None:
    r = sims.start(drain_fleet(tmp_path / "fleet", "quarantine"))
    target = _pinned(r)
    others = {
        n["metadata"]["name"]
        for pool in ("blocked", "other")
        for n in pool_nodes(r, "c1", pool)
        if n["metadata"]["name"] != target
    }
    plan = run_until(r, lambda p: _quarantine_settled(p, target), timeout=30)
    assert plan.status == "in-progress", plan.reason  # waiting for a human, not halted
    assert rollout_record(r)["halted"] is False
    node = _node(r, "c1", target)
    assert node is not None, "the quarantined node was deleted"
    assert node["spec"].get("unschedulable") is True
    assert node["metadata"]["labels"].get(QUARANTINE_LABEL) == "drain-timeout"
    assert node["metadata"]["annotations"].get(CORDONED_BY_ANNOTATION)
    # Every other old node of the cluster was replaced and removed around it.
    events = load_events(r.audit)
    removed = {e["node"] for e in events if e.get("event") == "node-removed"}
    assert others <= removed and target not in removed
    pinned = [
        e
        for e in events
        if e["kind"] == "request" and e["resource"] == "pods" and e["name"] == "pinned"
    ]
    assert not [e for e in pinned if e["verb"] == "delete"]  # quarantine never forces
    assert check(r.audit, r.snap, r.fleet) == []


def test_force_deletes_the_pods_after_the_timeout_and_completes(sims: Sims, tmp_path: Path) -> None:
    r = sims.start(drain_fleet(tmp_path / "fleet", "force"))
    target = _pinned(r)
    plan = r.run(timeout=40)
    assert plan.status == "converged", plan.reason
    events = load_events(r.audit)
    deletes = [
        e
        for e in events
        if e["kind"] == "request"
        and e["verb"] == "delete"
        and e["resource"] == "pods"
        and e["name"] == "pinned"
        and e["userAgent"].startswith("gitops/")
    ]
    assert deletes, "the pinned pod was never deleted"
    cordoned = _first_time(events, "node-cordoned", cluster="c1", node=target)
    # only after the timeout
    assert deletes[0]["time"] - cordoned >= DRAIN_TIMEOUT * POLICY_SCALE - SLACK
    assert _first_time(events, "node-removed", cluster="c1", node=target) > deletes[0]["time"]
    # The one PDB bypass is the forced delete the policy asked for; nothing else broke.
    violations = check(r.audit, r.snap, r.fleet)
    assert violations and all("shop/pinned deleted outright" in v for v in violations)


def test_a_replacement_not_ready_in_time_is_failed_removed_and_counted(
    sims: Sims, tmp_path: Path
) -> None:
    """Boots fail until two replacements failed; maxFailedNodes 2 lets the rollout converge."""
    pool = PoolSpec("workers", 2, surge=1, node_startup_timeout="200s")  # 2 s scaled
    root = write_fleet(tmp_path / "fleet", (ClusterSpec("c1", "first", (pool,)),), max_failed=2)
    r = sims.start(root, world={"boot_failure_rate": 1.0})
    physics = r.sim.world.physics  # type: ignore[union-attr]
    failed_annotations: dict[str, str] = {}
    deleted_marked: set[str] = set()
    machines = RESOURCES["machines.cluster.x-k8s.io"]

    def seen(ev: StoreEvent) -> None:
        """Note every failed annotation on a Machine, and which Machines went with one."""
        if ev.resource is not machines:
            return
        reason = (ev.object["metadata"].get("annotations") or {}).get(FAILED_ANNOTATION)
        if reason:
            failed_annotations[ev.object["metadata"]["name"]] = reason
            if ev.type == "DELETED":
                deleted_marked.add(ev.object["metadata"]["name"])

    r.sim.store.subscribe(seen)
    stop = threading.Event()

    def heal() -> None:
        """Let boots succeed again once two have failed."""
        while not stop.is_set() and physics.boot_failure_rate:
            failed = [e for e in load_events(r.audit) if e.get("event") == "node-boot-failed"]
            if len(failed) >= 2:
                physics.boot_failure_rate = 0.0
            time.sleep(0.02)

    watcher = threading.Thread(target=heal, daemon=True)
    watcher.start()
    try:
        plan = r.run(timeout=40)
    finally:
        stop.set()
        watcher.join(5)
    assert plan.status == "converged", plan.reason
    events = load_events(r.audit)
    boot_failed = {e["machine"] for e in events if e.get("event") == "node-boot-failed"}
    assert len(boot_failed) == 2
    # Every attempt is a new Machine: a retry never reuses a failed one's name (or its clone).
    created = [e["machine"] for e in events if e.get("event") == "machine-created"]
    assert len(created) == 4 and len(set(created)) == 4
    # Each was marked failed (naming the start-up timeout), then deleted.
    assert set(failed_annotations) == boot_failed
    assert deleted_marked == boot_failed
    assert all("nodeStartupTimeout" in why for why in failed_annotations.values())
    for machine in boot_failed:
        born = _first_time(events, "machine-created", machine=machine)
        gone = _first_time(events, "machine-deleted", machine=machine)
        # not before nodeStartupTimeout (counted from a creationTimestamp rounded down)
        assert gone - born >= 200 * POLICY_SCALE - TIMESTAMP_RESOLUTION
    waves = {w["wave"]: w for w in rollout_record(r)["waves"]}
    assert waves["first"]["failures"] == 2  # counted once each
    assert check(r.audit, r.snap, r.fleet) == []
