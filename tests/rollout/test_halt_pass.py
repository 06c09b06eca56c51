"""The pass whose abandons spend a wave's failure budget returns, records and keeps the halt.

The executor alone against the simulator (``tests.rollout.conftest``), its reconcile passes
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

from gitops.rollout.result import PassResult
from gitops.rollout.store import StateStore
from tests.rollout.conftest import Rollout
from tests.rollout.invariants import load_events

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
