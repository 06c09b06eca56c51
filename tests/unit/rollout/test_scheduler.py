"""The executor's scheduler, table-tested in virtual time, without the simulator or threads.

``gitops.rollout.scheduler.Scheduler`` decides when a step of the plan is due: not while it is
in flight (counted: steps sharing a key), not again right after it settled (``done_ttl``), not
before its backoff ends (doubling from 1/16 of ``retry_interval``) unless a budget that refused
its drain moved and allows a disruption, not while its pool has a created Machine the caches do
not show yet; and when ``ready`` marks go. Time is a ``VirtualClock`` the test moves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitops.inventory import PodDisruptionBudget
from gitops.kube.refs import MachineRef
from gitops.plan import AnyAction, CreateReplacement, RetireNode, ScaleUp
from gitops.rollout.result import StepOutcome
from gitops.rollout.scheduler import QUICK_RETRIES, BudgetLookup, Lost, Scheduler

T0 = 1_767_225_600.0
INTERVAL = 1.6


class VirtualClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def scale_up(pool: str = "workers", zone: str = "z-a") -> ScaleUp:
    return ScaleUp(cluster="c1", pool=pool, reason="short", zone=zone, image="os-2", ready=True)


def replacement(node: str = "n1", pool: str = "workers") -> CreateReplacement:
    return CreateReplacement(
        cluster="c1", pool=pool, reason="outdated", zone="z-a", image="os-2", replaces=node
    )


def retire(node: str = "n1", pool: str = "workers") -> RetireNode:
    return RetireNode(cluster="c1", pool=pool, reason="outdated", node=node, machine=f"m-{node}")


def no_budgets(cluster: str, key: str) -> PodDisruptionBudget | None:
    return None


def budgets(*seen: PodDisruptionBudget) -> BudgetLookup:
    by_key = {b.key: b for b in seen}
    return lambda cluster, key: by_key.get(key) if cluster == "c1" else None


def pdb(version: str, allowed: int) -> PodDisruptionBudget:
    return PodDisruptionBudget("shop", "web", allowed, resource_version=version)


def make(**kwargs: float) -> tuple[Scheduler, VirtualClock]:
    clock = VirtualClock()
    return Scheduler(clock, retry_interval=INTERVAL, **kwargs), clock


def due_keys(
    scheduler: Scheduler,
    ready: list[AnyAction],
    *,
    busy: frozenset[tuple[str, str]] = frozenset(),
    budget: BudgetLookup = no_budgets,
) -> list[str]:
    return [a.key for _, a in scheduler.due(ready, (), busy, budget)]


def fail(scheduler: Scheduler, action: AnyAction, budget: BudgetLookup = no_budgets) -> None:
    """Start ``action`` and have it end unsettled (failed, or a drain refused by web)."""
    scheduler.start([action])
    blocked = ("shop/web",) if budget is not no_budgets else ()
    scheduler.settle(action, StepOutcome(False, blocked_by=blocked), budget)


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "delay"),
    [
        (1, INTERVAL / 16),
        (2, INTERVAL / 8),
        (3, INTERVAL / 4),
        (4, INTERVAL / 2),
        (5, INTERVAL),
        (6, INTERVAL),
        (9, INTERVAL),
    ],
)
def test_backoff_doubles_from_a_sixteenth_of_the_interval_up_to_it(
    failures: int, delay: float
) -> None:
    scheduler, clock = make()
    step = retire()
    for _ in range(failures):
        clock.t = scheduler.next_retry() or clock.t
        assert due_keys(scheduler, [step]) == [step.key]
        fail(scheduler, step)
    assert scheduler.next_retry() == pytest.approx(clock.t + delay)
    clock.advance(delay * 0.99)
    assert due_keys(scheduler, [step]) == []
    clock.advance(delay * 0.02)
    assert due_keys(scheduler, [step]) == [step.key]


def test_a_settled_step_forgets_its_backoff() -> None:
    scheduler, clock = make()
    step = retire()
    for _ in range(5):
        fail(scheduler, step)
    scheduler.start([step])
    scheduler.settle(step, StepOutcome(True), no_budgets)
    assert scheduler.next_retry() is None
    clock.advance(scheduler.done_ttl + 0.01)  # done, then lost again (someone undid it)
    assert due_keys(scheduler, [step]) == [step.key]
    fail(scheduler, step)
    assert scheduler.next_retry() == pytest.approx(clock.t + INTERVAL / 16)


def test_a_drain_waiting_for_terminating_pods_is_looked_at_every_quarter_interval() -> None:
    # Nothing writes while evicted pods run out their grace period, so nothing would wake
    # the step before its (by then full) backoff: it is polled every quarter interval.
    scheduler, clock = make()
    step = retire()
    for _ in range(8):  # a backoff grown to the whole interval
        fail(scheduler, step)
    assert scheduler.next_retry() == pytest.approx(clock.t + INTERVAL)
    scheduler.start([step])
    scheduler.settle(step, StepOutcome(False, terminating=True), no_budgets)
    assert scheduler.next_retry() == pytest.approx(clock.t + INTERVAL / 4)


def test_a_step_the_plan_dropped_forgets_its_backoff() -> None:
    scheduler, _ = make()
    step = retire()
    for _ in range(5):
        fail(scheduler, step)
    assert due_keys(scheduler, [retire("n2")]) == [retire("n2").key]
    assert due_keys(scheduler, [step]) == [step.key]


# -- refused drains ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now_seen", "due"),
    [
        (pdb("5", 0), False),  # the refusal stands
        (pdb("5", 1), False),  # no newer version: the refusal's own, already tried
        (pdb("6", 0), False),  # moved, still no room
        (pdb("6", 1), True),  # moved and allows one: due before the backoff ends
        (None, False),  # gone from the caches
    ],
    ids=["same-no-room", "same-room", "newer-no-room", "newer-room", "gone"],
)
def test_a_refused_drain_is_due_when_its_budget_moves_and_allows_a_disruption(
    now_seen: PodDisruptionBudget | None, due: bool
) -> None:
    scheduler, _ = make()
    step = retire()
    for _ in range(QUICK_RETRIES):  # past the quick retries: the backoff is a whole interval
        fail(scheduler, step, budgets(pdb("5", 0)))
    seen = budgets(now_seen) if now_seen is not None else no_budgets
    assert due_keys(scheduler, [step], budget=seen) == ([step.key] if due else [])


def test_a_drain_refused_by_a_budget_showing_room_is_due_at_once_a_few_times_only() -> None:
    """The cache already shows room when the step ends, so no newer version may come to wake
    it: it is due at once, QUICK_RETRIES times, then backs off as any other."""
    scheduler, clock = make()
    step = retire()
    room = budgets(pdb("5", 1))
    for _ in range(QUICK_RETRIES):
        fail(scheduler, step, room)
        assert due_keys(scheduler, [step], budget=room) == [step.key]
    fail(scheduler, step, room)
    assert due_keys(scheduler, [step], budget=room) == []
    assert scheduler.next_retry() == pytest.approx(clock.t + INTERVAL)


# -- in flight and done ------------------------------------------------------------------------


def test_steps_in_flight_are_counted_by_key() -> None:
    """Two scale-ups of one pool and zone share a key: the first to end leaves the other in
    flight, and the step is not due again until both have ended."""
    scheduler, _ = make()
    first, second = scale_up(), scale_up()
    assert first.key == second.key
    scheduler.start([first, second])
    assert due_keys(scheduler, [first]) == []
    scheduler.settle(first, StepOutcome(False), no_budgets)
    scheduler.not_before.clear()  # not its backoff: what holds it back is the other one
    assert due_keys(scheduler, [first]) == []
    assert scheduler.busy and scheduler.creating[("c1", "workers")] == 1
    scheduler.settle(second, StepOutcome(False), no_budgets)
    scheduler.not_before.clear()
    assert due_keys(scheduler, [first]) == [first.key]
    assert not scheduler.busy and not scheduler.creating


def test_a_step_in_flight_is_not_started_twice() -> None:
    scheduler, _ = make()
    step, other = retire("n1"), retire("n2")
    scheduler.start([step])
    assert due_keys(scheduler, [step, other]) == [other.key]


@pytest.mark.parametrize(
    ("after", "planned", "due"),
    [
        (1.0, True, False),  # the caches may not show it yet
        (5.01, True, True),  # still planned after done_ttl: someone undid it
        (1.0, False, True),  # dropped by a plan, then planned again: a new step
    ],
    ids=["within-ttl", "past-ttl", "dropped-and-back"],
)
def test_a_done_step_waits_for_the_plan_to_drop_it_or_done_ttl(
    after: float, planned: bool, due: bool
) -> None:
    scheduler, clock = make(done_ttl=5.0)
    step, other = retire("n1"), retire("n2")
    scheduler.start([step])
    scheduler.settle(step, StepOutcome(True), no_budgets)
    clock.advance(after)
    if not planned:
        due_keys(scheduler, [other])
    assert due_keys(scheduler, [step]) == ([step.key] if due else [])


# -- expectations ------------------------------------------------------------------------------


def test_a_pool_with_a_created_machine_not_observed_creates_nothing_more() -> None:
    scheduler, clock = make(expectation_timeout=30.0)
    create = replacement("n1")
    machine = MachineRef("c1", "c1-workers-abc123")
    scheduler.start([create])
    busy, _ = scheduler.busy_pools(lambda ref: False)
    assert busy == {("c1", "workers")}  # in flight
    scheduler.settle(create, StepOutcome(True, created=machine), no_budgets)
    clock.advance(scheduler.done_ttl + 1)
    busy, lost = scheduler.busy_pools(lambda ref: False)
    assert (busy, lost) == ({("c1", "workers")}, [])
    # No Machine is created in that pool, every other step goes ahead, other pools too.
    ready: list[AnyAction] = [
        replacement("n2"),
        scale_up(),
        retire("n1"),
        replacement("n9", pool="system"),
    ]
    assert due_keys(scheduler, ready, busy=frozenset(busy)) == [
        retire("n1").key,
        replacement("n9", pool="system").key,
    ]
    # Observed: the pool is free again.
    busy, lost = scheduler.busy_pools(lambda ref: ref == machine)
    assert (busy, lost) == (set(), [])
    assert scheduler.expected == {}


def test_an_expectation_never_met_is_given_up_after_its_timeout() -> None:
    scheduler, clock = make(expectation_timeout=30.0)
    create = scale_up()
    machine = MachineRef("c1", "c1-workers-def456")
    scheduler.start([create])
    scheduler.settle(create, StepOutcome(True, created=machine), no_budgets)
    clock.advance(29.9)
    assert scheduler.busy_pools(lambda ref: False) == ({("c1", "workers")}, [])
    clock.advance(0.2)
    assert scheduler.busy_pools(lambda ref: False) == (set(), [Lost(machine, ("c1", "workers"))])
    assert scheduler.busy_pools(lambda ref: False) == (set(), [])  # said once


# -- ready marks -------------------------------------------------------------------------------


MARK = ("c1", "c1-workers-abc123")


@pytest.mark.parametrize(
    ("stepping", "in_flight", "waited", "due"),
    [
        (False, False, 0.0, True),  # nothing else going on: at once
        (True, False, 0.0, False),  # steps due in this pass: after them
        (False, True, 0.0, False),  # steps in flight: after them
        (True, False, 5.0, True),  # kept waiting mark_delay: goes all the same
        (False, True, 4.9, False),
    ],
)
def test_a_ready_mark_waits_out_a_burst_of_steps_up_to_mark_delay(
    stepping: bool, in_flight: bool, waited: float, due: bool
) -> None:
    scheduler, clock = make(mark_delay=5.0)
    if in_flight:
        scheduler.start([retire("n7")])
    first = scheduler.marks_due([MARK], stepping)  # seen from now on
    assert first == ([] if stepping or in_flight else [MARK])
    clock.advance(waited)
    assert scheduler.marks_due([MARK], stepping) == ([MARK] if due else [])


def test_a_ready_mark_is_written_once_until_the_caches_show_it() -> None:
    scheduler, clock = make(mark_delay=5.0, done_ttl=5.0)
    assert scheduler.marks_due([MARK, MARK], False) == [MARK]
    scheduler.start_marks([MARK])
    assert scheduler.busy
    assert scheduler.marks_due([MARK], False) == []  # in flight
    scheduler.settle_mark(MARK)
    assert not scheduler.busy
    assert scheduler.marks_due([MARK], False) == []  # done: the caches will show it
    clock.advance(5.01)
    scheduler.due([], [MARK], (), no_budgets)
    assert scheduler.marks_due([MARK], False) == [MARK]  # still not shown: written again


# -- one clock ---------------------------------------------------------------------------------

ROLLOUT = Path(__file__).resolve().parents[3] / "gitops" / "rollout"
READS_TIME = re.compile(
    r"\btime\.(monotonic|time|perf_counter)(_ns)?\b|\bdatetime\.now\b|^\s*from time import"
)


def test_the_rollout_reads_no_clock_but_the_one_injected() -> None:
    sources = sorted(ROLLOUT.glob("*.py"))
    assert len(sources) > 5, sources
    readers = [
        f"{path.name}:{number}"
        for path in sources
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if READS_TIME.search(line)
    ]
    assert readers == []
    assert READS_TIME.search((ROLLOUT / "clock.py").read_text())  # the pattern finds one


def test_the_scheduler_runs_on_the_clock_it_is_given() -> None:
    scheduler, clock = make()
    fail(scheduler, retire())
    assert scheduler.next_retry() == pytest.approx(T0 + INTERVAL / 16)
    clock.advance(1000.0)
    assert scheduler.next_retry() is None  # virtual time passed the backoff


def test_a_step_throttled_by_the_server_waits_at_least_its_retry_after() -> None:
    scheduler, clock = make()
    step = retire()
    scheduler.start([step])
    scheduler.settle(step, StepOutcome(False, retry_after=5.0), no_budgets)
    assert scheduler.next_retry() == pytest.approx(clock.t + 5.0)  # not INTERVAL / 16
    clock.advance(4.9)
    assert due_keys(scheduler, [step]) == []
    clock.advance(0.2)
    assert due_keys(scheduler, [step]) == [step.key]
