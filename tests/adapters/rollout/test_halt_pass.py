"""The pass whose abandons spend a wave's failure budget returns, records and keeps the halt.

The executor alone against the simulator (``tests.adapters.rollout.conftest``), its reconcile passes
driven one by one as ``Executor.run`` drives them (woken by the watch caches). Every node of
the canary fails to boot and ``maxFailedNodes`` is 1: the second abandon spends the budget. The
plan that pass returns is what the controller reports (status branch, dashboard, bot), so it
must say ``halted`` there and then, with the halt already in the durable record; a plan still
``in-progress`` beside a halted pass result is what made the status branch say so after the
halt.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gitops import plan as planner
from gitops.fleet import load
from gitops.inventory import Member
from gitops.kube.observe import Observer
from gitops.plan import RolloutState
from gitops.plan.state import WaveProgress
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.rollout.clock import FunctionClock
from gitops.rollout.executor import Executor
from gitops.rollout.result import PassResult
from gitops.rollout.store import StateStore
from tests.adapters.controller.conftest import until
from tests.adapters.rollout.conftest import POLICY_SCALE, Rollout
from tests.adapters.rollout.invariants import load_events

HALT = "rollout halted: 2 nodes failed in wave canary, more than maxFailedNodes 1"


def test_the_pass_that_spends_the_budget_returns_and_records_the_halt(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous", world={"boot_failure_rate": 1.0}, max_failed=1)
    executor, observer = r.executor()
    passes: list[PassResult] = []
    deadline = time.monotonic() + 90
    try:
        while not (passes and passes[-1].halted):
            assert time.monotonic() < deadline, f"no halt; last plan: {passes[-1].plan.reason}"
            generation, nudges = observer.generation(), observer.nudges()
            passes.append(executor.reconcile())
            wake = executor.next_retry()
            timeout = 1.0 if wake is None else max(0.02, min(1.0, wake - time.time()))
            observer.wait_changed(generation, timeout, nudged_since=nudges)
        first = passes[-1]
        assert (first.plan.status, first.plan.reason, first.halt) == ("halted", HALT, HALT)
        assert [f.subject for f in first.failed_nodes]  # this very pass abandoned a machine
        assert StateStore(r.management, "gitops-system").load().halt_reason == HALT.removeprefix(
            "rollout halted: "
        )
        # Every earlier pass was in progress and within the budget.
        assert len(passes) >= 2
        assert {(p.plan.status, p.halt) for p in passes[:-1]} == {("in-progress", "")}
        # Pass after pass, it stays halted and starts nothing.
        created = _created(r)
        for _ in range(3):
            again = executor.reconcile()
            assert (again.plan.status, again.halt) == ("halted", HALT)
        assert _created(r) == created
    finally:
        executor.stopping.set()
        executor.close()
        observer.stop()


def _created(r: Rollout) -> int:
    return sum(1 for e in load_events(r.audit) if e.get("event") == "machine-created")


def test_nothing_new_starts_in_the_pass_whose_abandons_spend_the_budget(
    rollout: Callable[..., Rollout],
) -> None:
    # prod-a/workers moves to an image that never boots; prod-a/system, in the same wave, gets
    # a hand-patched node (a replacement to create) just before the failures are abandoned.
    r = rollout(initial="declared", world={"boot_failure_rate": 1.0}, max_failed=1)
    prod_a = r.fleet_path / "prod-a.yaml"
    text = prod_a.read_text()
    prod_a.write_text(text.replace("image: os-2", "image: os-1", 1))  # the workers pool only
    fleet = load(r.fleet_path).with_revision("rev-2")
    now = [time.time()]
    observer = Observer(r.management)
    observer.track((c.name, c.namespace) for c in fleet.clusters)
    assert observer.wait_synced(20)
    store = StateStore(r.management, "gitops-system")
    # One failure in wave prod already: the next abandon spends maxFailedNodes 1.
    store.save(
        RolloutState(revision=fleet.revision, waves=(WaveProgress(wave="prod", failures=1),))
    )
    executor = Executor(
        fleet,
        observer,
        ClusterAPIProvider(r.management),
        store,
        time_scale=POLICY_SCALE,
        clock=FunctionClock(lambda: now[0]),
    )
    try:
        first = executor.reconcile()
        assert first.plan.status == "in-progress"
        executor.close()
        until(lambda: _made(observer, "prod-a", "workers"), 30, "the workers' replacements")
        system = until(lambda: _nodes(observer, "prod-a", "system"), 30, "the system pool's nodes")
        kube = observer.workload("prod-a")
        assert kube is not None
        kube.core.patch_node_status(
            system[0], {"status": {"nodeInfo": {"kernelVersion": "6.99.0-hand-patched"}}}
        )
        until(lambda: _drifted(observer, "prod-a", system[0]), 30, "the hand-patched kernel")
        before = {e["machine"] for e in load_events(r.audit) if e.get("event") == "machine-created"}
        now[0] += 60  # past nodeStartupTimeout (6 s at this scale): the replacements failed
        # What the next pass starts from: the failures to abandon and the new replacement.
        pending = planner.make(
            fleet.scaled(POLICY_SCALE), observer.inventory(), store.load(), now[0]
        )
        ready = {(a.pool, a.kind) for a in planner.next_actions(pending)}
        assert {("workers", "AbandonMachine"), ("system", "CreateReplacement")} <= ready, ready
        halting = executor.reconcile()
        executor.close()  # every step this pass started has ended
        assert halting.plan.status == "halted" and halting.halt == halting.plan.reason
        assert "nodes failed in wave prod, more than maxFailedNodes 1" in halting.halt
        created = [
            e
            for e in load_events(r.audit)
            if e.get("event") == "machine-created" and e["machine"] not in before
        ]
        assert created == []  # not the system pool's replacement, nor a workers' retry
    finally:
        executor.stopping.set()
        executor.close()
        observer.stop()


def _members(observer: Observer, cluster: str, pool: str) -> tuple[Member, ...]:
    seen = observer.inventory().cluster(cluster)
    return seen.members(pool) if seen is not None else ()


def _made(observer: Observer, cluster: str, pool: str) -> list[str]:
    """The pool's Machines the controller created, as the caches show them."""
    return sorted(
        m.machine.name
        for m in _members(observer, cluster, pool)
        if m.machine is not None and m.machine.created_by_controller
    )


def _nodes(observer: Observer, cluster: str, pool: str) -> list[str]:
    return sorted(m.node.name for m in _members(observer, cluster, pool) if m.node is not None)


def _drifted(observer: Observer, cluster: str, node: str) -> bool:
    seen = observer.inventory().cluster(cluster)
    found = seen.node(node) if seen is not None else None
    return found is not None and found.kernel_version == "6.99.0-hand-patched"
