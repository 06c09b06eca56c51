"""Carry a plan out: level-triggered reconciles of the whole fleet, crash-safe.

Shell layer. Each ``reconcile`` observes the fleet (watch caches), loads the durable record,
asks the pure planner for the plan, asks its ``Scheduler`` which of the plan's *ready* steps
are due, runs them (``gitops.rollout.steps``, each ending in a typed ``StepOutcome``) and books
how they ended with the scheduler, then records wave progress (``gitops.plan.state``) and
hands its caller a ``PassResult``. Nothing needed to resume lives only in memory: a
replacement Machine is annotated with the node it replaces and its phase, an old node with its
retirement phase, failures and halts are in the ConfigMap record. One injected ``Clock``
drives it all. The decisions are the planner's; this module decides nothing beyond *when* to
perform a step, and it never reads an event's level.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gitops import plan as planner
from gitops.errors import GitopsError
from gitops.fleet import Fleet
from gitops.inventory import Inventory, PodDisruptionBudget
from gitops.kube.observe import Observer
from gitops.plan import AbandonMachine, AnyAction, PauseMachineDeployment, Plan, RolloutState
from gitops.plan.make import STARTUP_PHASES
from gitops.plan.state import record_progress
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.rollout import steps
from gitops.rollout.clock import SYSTEM_CLOCK, Clock
from gitops.rollout.result import PassResult, StepOutcome, StepResult, WaveBudget
from gitops.rollout.scheduler import BudgetLookup, Mark, Pool, Scheduler
from gitops.rollout.sharded import ShardedStore
from gitops.rollout.store import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Something the executor did, for logs and progress displays (never for decisions)."""

    time: float
    cluster: str
    pool: str
    subject: str
    message: str
    level: str = "info"  # info, warning, error


class Executor:
    """Reconciles the fleet towards ``fleet`` until it converges or halts."""

    def __init__(
        self,
        fleet: Fleet,
        observer: Observer,
        provider: ClusterAPIProvider,
        store: StateStore | ShardedStore,
        *,
        time_scale: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        on_event: Callable[[Event], None] | None = None,
        override_drift_limit: bool = False,
        ignore_windows: bool = False,
        parallelism: int = 16,
        fence: Callable[[str], None] | None = None,
    ) -> None:
        self.fleet = fleet.scaled(time_scale)
        self.observer = observer
        self.provider = provider
        self.store = store
        self.clock = clock
        self.on_event = on_event
        self.override_drift_limit = override_drift_limit
        # ``apply --ignore-windows``, confirmed by a human: windows lifted, freezes kept.
        self.ignore_windows = ignore_windows
        self.stopping = threading.Event()
        # Ready steps run on up to this many threads (see ``_act``); the pool is made on
        # first use and ``close`` waits for the steps in flight.
        self.parallelism = parallelism
        # Sharded (``gitops run --sharding``): the store is a ``ShardedStore``, only owned
        # clusters are observed and planned in full, and ``fence`` guards every write.
        self.sharded = store if isinstance(store, ShardedStore) else None
        self.fence = fence
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # around on_event
        # Around the scheduler and what the steps leave for the next result, which the
        # worker threads book as they end.
        self._book = threading.Lock()
        self.scheduler = Scheduler(clock, retry_interval=min(1.0, max(0.05, time_scale)))
        self._halts: list[str] = []  # why a step in flight said the rollout must halt
        self._finished: list[StepResult] = []  # steps ended since the last pass's result
        self.coalesce_max = 0.05  # seconds; see ``run``
        self._wave_of = {
            c: members.wave.name for members in self.fleet.waves for c in members.clusters
        }

    @property
    def retry_interval(self) -> float:
        """The longest a failed or blocked step waits before it is tried again."""
        return self.scheduler.retry_interval

    # -- the loop ------------------------------------------------------------------------

    def reconcile(self, *, resume: bool = False) -> PassResult:
        """One level-triggered pass; its result holds the plan whose ready steps it started."""
        now = self.clock.now()
        inventory = self._inventory()
        state = self._effective_state(resume=resume, announce=True)
        shard = self.sharded.shard(self.fleet.revision) if self.sharded is not None else None
        with self._book:
            halts, self._halts = self._halts, []
        if halts and not state.halted:
            state = state.halt(halts[0], now)
            self._emit("", "", "", f"rollout halted: {halts[0]}", "error")
        plan = planner.make(
            self.fleet,
            inventory,
            state,
            now,
            override_drift_limit=self.override_drift_limit,
            ignore_windows=self.ignore_windows,
            shard=shard,
        )
        marks = _started(inventory)
        ctx = self._context(plan, inventory, now)
        if plan.status == "in-progress" and not self.stopping.is_set():
            state = self._act(ctx, state, marks)
            if self._spent(state):
                # This pass's abandons spent a wave's failure budget: plan again, so that the
                # pass records and returns the halt it caused, not the plan it started from
                # (which status, dashboard and bot would otherwise show as in progress).
                plan = planner.make(
                    self.fleet,
                    inventory,
                    state,
                    now,
                    override_drift_limit=self.override_drift_limit,
                    ignore_windows=self.ignore_windows,
                    shard=shard,
                )
        else:
            # Nothing else runs: each mark is written now, in this thread.
            for mark in marks:
                self._finish_mark(mark, steps.mark_ready(ctx, *mark), scheduled=False)
        if plan.status == "halted":
            if not state.halted:
                state = state.halt(plan.reason.removeprefix("rollout halted: "), now)
                self._emit("", "", "", plan.reason, "error")
            self._pause_deployments(self._context(plan, inventory, now), state)
        state, milestones = record_progress(state, plan, now)
        for wave, what in milestones:
            self._emit("", "", wave, f"wave {wave} {what}")
        if self.sharded is not None:
            self.sharded.save(state, plan)
        else:
            assert isinstance(self.store, StateStore)
            self.store.save(state)
        return self._result(plan, state)

    def _pause_deployments(self, ctx: steps.Context, state: RolloutState) -> None:
        """A halt stops Cluster API too: pause every MachineDeployment still rolling, in this
        thread (nothing else runs in a halted pass). A pause that failed shows in the next
        plan again, which tries it again."""
        for action in planner.next_actions(ctx.plan):
            if isinstance(action, PauseMachineDeployment):
                outcome = steps.perform(ctx, action, 0, state)
                if outcome.failure is not None:
                    self._emit(
                        action.cluster,
                        action.pool,
                        action.subject,
                        outcome.failure.message,
                        "warning",
                    )

    def _result(self, plan: Plan, state: RolloutState) -> PassResult:
        """What the pass leaves: the halt, the failure budgets, the steps ended since the last."""
        with self._book:
            finished, self._finished = tuple(self._finished), []
        allowed = self.fleet.document.spec.rollout.max_failed_nodes
        budgets = tuple(
            WaveBudget(members.wave.name, state.wave(members.wave.name).failures, allowed)
            for members in self.fleet.waves
            if state.wave(members.wave.name).failures
        )
        halt = plan.reason if plan.status == "halted" else ""
        return PassResult(plan, halt, budgets, finished)

    def _spent(self, state: RolloutState) -> bool:
        """Whether a wave's failures exceed ``maxFailedNodes`` (the planner halts on it)."""
        allowed = self.fleet.document.spec.rollout.max_failed_nodes
        return any(state.wave(m.wave.name).failures > allowed for m in self.fleet.waves)

    def preview(self, *, resume: bool = False) -> Plan:
        """The plan the next reconcile would act on, without acting or writing anything."""
        state = self._effective_state(resume=resume, announce=False)
        return planner.make(
            self.fleet,
            self._inventory(),
            state,
            self.clock.now(),
            override_drift_limit=self.override_drift_limit,
            ignore_windows=self.ignore_windows,
            shard=self.sharded.shard(self.fleet.revision) if self.sharded is not None else None,
        )

    def _inventory(self) -> Inventory:
        """The observed fleet; sharded, only the clusters this replica owns now."""
        if self.sharded is None:
            return self.observer.inventory()
        return self.observer.inventory(self.sharded.owned())

    def idle(self, cluster: str) -> bool:
        """Whether no step of ``cluster`` is under way: a safe point to hand it over."""
        with self._book:
            return not self.scheduler.cluster_busy(cluster)

    def _effective_state(self, *, resume: bool, announce: bool) -> RolloutState:
        if self.sharded is not None:
            state = self.sharded.load(revision=self.fleet.revision, fleet=self.fleet)
        else:
            assert isinstance(self.store, StateStore)
            state = self.store.load()
        if state.revision != self.fleet.revision:
            # A new fleet revision is a new rollout: its waves start afresh and an old halt
            # no longer applies (the revision is what a human changed to fix it).
            if state.halted and announce:
                self._emit("", "", "", f"a new fleet revision clears the halt: {state.halt_reason}")
            return RolloutState(revision=self.fleet.revision)
        if resume and state.halted:
            if announce:
                self._emit(
                    "", "", "", f"resuming the halted rollout (--resume): {state.halt_reason}"
                )
            return state.resume()
        return state

    def run(
        self,
        *,
        resume: bool = False,
        poll: float = 1.0,
        on_plan: Callable[[Plan], None] | None = None,
    ) -> Plan:
        """Reconcile until converged, halted, refused or stopped; wake on changes or ``poll``."""
        first = True
        while True:
            generation, nudges = self.observer.generation(), self.observer.nudges()
            started = self.clock.now()
            try:
                plan = self.reconcile(resume=resume and first).plan
            except GitopsError as err:
                self._emit("", "", "", f"reconcile failed, retrying: {err}", "warning")
                self.stopping.wait(poll)
                continue
            took = self.clock.now() - started
            first = False
            if on_plan is not None:
                on_plan(plan)
            if plan.status in ("converged", "halted", "refused") or self.stopping.is_set():
                self.close()
                if self._halts:  # a step that finished meanwhile said to halt: record it
                    plan = self.reconcile().plan
                return plan
            wake = min(
                (t for t in (planner.next_wakeup(plan), self.next_retry()) if t is not None),
                default=None,
            )
            timeout = poll if wake is None else max(0.02, min(poll, wake - self.clock.now()))
            self.observer.wait_changed(generation, timeout, nudged_since=nudges)
            if (pause := self.gather(took)) > 0:
                self.stopping.wait(pause)

    def gather(self, took: float) -> float:
        """Seconds to let changes gather before the next pass, the last one having taken
        ``took``: while steps are in flight, as long as that pass took (at most
        ``coalesce_max``). In a burst (a big batch turning Ready at once, each step's own
        writes coming back as events) passes would otherwise run back to back and starve the
        steps' threads of the interpreter. With nothing in flight the loop answers at once;
        the time spent waiting for the change itself never counts."""
        with self._book:
            busy = self.scheduler.busy
        return min(took, self.coalesce_max) if busy else 0.0

    def close(self) -> None:
        """Wait for the steps in flight to finish (each leaves the fleet consistent)."""
        with self._book:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def next_retry(self) -> float | None:
        """When the earliest step waiting on its backoff may be tried again (None: none)."""
        with self._book:
            return self.scheduler.next_retry()

    # -- steps ---------------------------------------------------------------------------

    def _context(self, plan: Plan, inventory: Inventory, now: float) -> steps.Context:
        return steps.Context(
            fleet=self.fleet,
            provider=self.provider,
            workload=self.observer.workload,
            emit=self._emit,
            plan=plan,
            inventory=inventory,
            now=now,
            wave_of=self._wave_of,
            fence=self.fence or _unfenced,
        )

    def _busy_pools(self) -> set[Pool]:
        """Pools where a Machine this process creates is in flight or not observed yet.

        The plan of such a pool was made without that Machine and counts the pool short, so
        no Machine is created there until the cache shows it (``_act``); every other step,
        there and elsewhere, goes ahead: none depends on a Machine that is not Ready yet.
        """
        with self._book:
            busy, lost = self.scheduler.busy_pools(self.observer.has_machine)
        for gone in lost:
            cluster, pool = gone.pool
            self._emit(
                cluster,
                pool,
                gone.machine.name,
                f"created machine {gone.machine} not observed after "
                f"{self.scheduler.expectation_timeout:g}s; planning without it",
                "warning",
            )
        return busy

    def _act(self, ctx: steps.Context, state: RolloutState, marks: list[Mark]) -> RolloutState:
        """Start the plan's due steps: abandons here, in order; the others on worker threads.

        An abandon counts a failure in the durable record before it deletes, so abandons run
        one after another in this thread. Every other ready step is independent of the rest
        (the planner has already charged each against its pool's surge and unavailability
        budgets), so each goes to a bounded pool of threads and the loop goes back to
        watching: a batch of 25 retirements costs about one drain, and a slow drain in one
        cluster holds back no other. A step that ends without a write the caches will show
        (a blocked drain, a halt) wakes the loop itself (``Observer.nudge``). Recording
        ``ready`` on replacements (``marks``) goes to the same threads, after the steps. A
        step that says the rollout must halt keeps steps not yet begun from starting (those
        in flight finish); the next pass records the halt.
        """
        ready = planner.next_actions(ctx.plan)
        busy = self._busy_pools()
        with self._book:
            due = self.scheduler.due(ready, marks, busy, _budgets(ctx.inventory))
        for _, action in due:
            if not isinstance(action, AbandonMachine):
                continue
            if self.stopping.is_set():
                return state
            doc = self.fleet.cluster(action.cluster)
            if doc is None:
                continue
            outcome, state = steps.abandon(ctx, action, doc, state, self.store.save)
            self._finish(action, outcome)
        if self._spent(state):
            return state  # the abandons spent the failure budget: nothing new starts
        others = [(slot, a) for slot, a in due if not isinstance(a, AbandonMachine)]
        with self._book:
            marks = self.scheduler.marks_due(marks, bool(others))
            if not others and not marks:
                return state
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="gitops-step")
            pool = self._pool
            self.scheduler.start([action for _, action in others])
            self.scheduler.start_marks(marks)
        # Steps first: the pool's queue is first in, first out, and a retirement or a creation
        # is on the rollout's critical path where recording ``ready`` is not.
        for slot, action in others:
            pool.submit(self._step, ctx, action, slot, state)
        for mark in marks:
            pool.submit(self._step_mark, ctx, mark)
        return state

    def _step(self, ctx: steps.Context, action: AnyAction, slot: int, state: RolloutState) -> None:
        """A worker thread's share: one step, then its bookkeeping, then wake the loop."""
        outcome = StepOutcome(False)
        try:
            if not self.stopping.is_set() and not self._halts:
                outcome = steps.perform(ctx, action, slot, state)
        except Exception as err:  # never lose a worker's failure silently
            log.exception("step %s failed unexpectedly", action.key)
            outcome = steps.failed(action, GitopsError(str(err)))
        finally:
            self._finish(action, outcome)

    def _step_mark(self, ctx: steps.Context, mark: Mark) -> None:
        outcome = StepOutcome(False)
        try:
            outcome = steps.mark_ready(ctx, *mark)
        finally:
            self._finish_mark(mark, outcome)

    def _finish(self, action: AnyAction, outcome: StepOutcome) -> None:
        """Book a step's end with the scheduler and for the next result; wake the loop when
        the caches will not (a step that wrote nothing, or said to halt)."""
        if outcome.failure is not None:
            self._emit(
                action.cluster, action.pool, action.subject, outcome.failure.message, "warning"
            )
        with self._book:
            self._finished.append(
                StepResult(action.kind, action.cluster, action.pool, action.subject, outcome)
            )
            if outcome.halt:
                self._halts.append(outcome.halt)
            self.scheduler.settle(action, outcome, self.observer.pdb)
        if not outcome.settled or outcome.halt:
            self.observer.nudge()

    def _finish_mark(self, mark: Mark, outcome: StepOutcome, *, scheduled: bool = True) -> None:
        cluster, machine = mark
        if outcome.failure is not None:
            self._emit(cluster, "", machine, outcome.failure.message, "warning")
        with self._book:
            self._finished.append(StepResult(steps.MARK_READY, cluster, "", machine, outcome))
            if scheduled:
                self.scheduler.settle_mark(mark)

    def _emit(
        self, cluster: str, pool: str, subject: str, message: str, level: str = "info"
    ) -> None:
        event = Event(self.clock.now(), cluster, pool, subject, message, level)
        getattr(log, "error" if level == "error" else level)(
            "%s", message, extra={"cluster": cluster, "pool": pool, "node": subject}
        )
        if self.on_event is not None:
            with self._lock:
                self.on_event(event)


def _unfenced(cluster: str) -> None:
    """Not sharded: one replica acts (the Lease ``gitops-controller``), nothing to fence."""


def _budgets(inventory: Inventory) -> BudgetLookup:
    """The PodDisruptionBudgets of an inventory, looked up by (cluster, "namespace/name")."""

    def budget(cluster: str, key: str) -> PodDisruptionBudget | None:
        seen = inventory.cluster(cluster)
        return seen.pdb(key) if seen is not None else None

    return budget


def _started(inventory: Inventory) -> list[Mark]:
    """(cluster, machine) of controller-made machines still starting whose node is Ready."""
    out: list[Mark] = []
    for seen in inventory.clusters:
        if not seen.reachable:
            continue
        for machine in seen.machines:
            if not machine.created_by_controller or machine.fleet_phase not in STARTUP_PHASES:
                continue
            node = seen.node(machine.node) if machine.node else None
            if node is not None and node.ready and not machine.failed:
                out.append((seen.name, machine.name))
    return out
