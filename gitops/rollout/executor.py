"""Carry a plan out: level-triggered reconciles of the whole fleet, crash-safe.

Shell layer. Each ``reconcile`` observes the fleet (watch caches), loads the durable record,
asks the pure planner for the plan, and carries out the plan's *ready* actions through the
adapters, then records wave progress. Nothing needed to resume lives only in memory: a
replacement Machine is annotated with the node it replaces and its phase, an old node with its
retirement phase, failures and halts are in the ConfigMap record. Every write is idempotent
(machine names derive from what they are for and the plan id; annotations are merges), so a
crash between two writes is harmless. The decisions are the planner's; this module decides
nothing beyond *how* to perform a step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

from gitops import plan as planner
from gitops.errors import GitopsError
from gitops.fleet import Fleet
from gitops.fleet.spec import ClusterDocument, NodePool
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    DRAIN_BLOCKED_ANNOTATION,
    DRAIN_STARTED_ANNOTATION,
    FAILED_ANNOTATION,
    PHASE_ANNOTATION,
)
from gitops.inventory import Inventory, Node
from gitops.kube import actions
from gitops.kube.client import Kube
from gitops.kube.errors import NotFound
from gitops.kube.observe import Observer
from gitops.plan import (
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    Plan,
    RetireNode,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
)
from gitops.plan.make import STARTUP_PHASES
from gitops.providers.clusterapi import ClusterAPIProvider, MachineRequest
from gitops.rollout import drain
from gitops.rollout.result import Failure, PassResult, WaveBudget
from gitops.rollout.store import StateStore

log = logging.getLogger(__name__)

Pool = tuple[str, str]  # (cluster, pool)
K = TypeVar("K")
QUICK_RETRIES = 8  # of a drain whose refusing budget the cache shows with room again


class _Outcome(NamedTuple):
    """How a step ended: ``settled`` when its effect will be observed (else it is tried again
    after a backoff); ``halt`` says why the rollout must stop ("" when it need not);
    ``blocked_by`` names the PodDisruptionBudgets ("namespace/name") that refused an eviction:
    a newer version of any of them that allows a disruption makes the step due again before
    its backoff ends."""

    settled: bool
    halt: str = ""
    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """Something the executor did, for logs and progress displays."""

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
        store: StateStore,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
        override_drift_limit: bool = False,
        parallelism: int = 16,
    ) -> None:
        self.fleet = fleet.scaled(time_scale)
        self.observer = observer
        self.provider = provider
        self.store = store
        self.clock = clock
        self.on_event = on_event
        self.override_drift_limit = override_drift_limit
        self.stopping = threading.Event()
        # Ready steps run on up to this many threads (see ``_act``); the pool is made on
        # first use and ``close`` waits for the steps in flight.
        self.parallelism = parallelism
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # around on_event
        self._steps = threading.Condition()  # around the bookkeeping below
        # Keys of the steps on the worker threads, and the pools of those that create a
        # Machine, counted: scale-ups of one pool and zone share a key, and the first to end
        # must not make the others look finished.
        self._inflight: Counter[str] = Counter()
        self._creating: Counter[Pool] = Counter()
        self._halts: list[str] = []  # why a step in flight said the rollout must halt
        # What failed since the last pass ended, for its result (``PassResult``): machines
        # counted against the failure budget, and steps to be tried again.
        self._failed_nodes: list[Failure] = []
        self._failed_steps: list[Failure] = []
        # Steps done whose effect the caches may not show yet (monotonic time they finished):
        # repeating them would be harmless (every write is idempotent) but noisy, so each
        # waits until the plan drops it, or ``done_ttl`` passes. Memory only.
        self._done: dict[str, float] = {}
        self.done_ttl = 5.0
        # Steps that failed or could not finish yet (a drain blocked by a PDB) are tried again
        # with a backoff that doubles from a sixteenth of ``retry_interval`` up to it: a PDB
        # that blocks only until an evicted pod is rescheduled costs a blink, not a whole
        # interval, and one that stays blocked is re-listed at most once an interval.
        self._not_before: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        # Drains refused by PodDisruptionBudgets: (cluster, {budget: its resourceVersion when
        # the step ended}). A budget's status moves when an evicted pod is running again
        # elsewhere; the step is then due at once rather than at the end of its backoff.
        self._blocked: dict[str, tuple[str, dict[str, str]]] = {}
        self.retry_interval = min(1.0, max(0.05, time_scale))
        # Expectations, as Kubernetes' ReplicaSet controller keeps them: Machines this process
        # created that its cache has not shown yet, with their pool and when they were made.
        # A plan made before they show counts the pool short: no Machine is created in that
        # pool until they do (see ``_busy_pools``). A restarted process lists afresh and sees
        # them all, so this too lives in memory only.
        self._expected: dict[tuple[str, str], tuple[Pool, float]] = {}
        self.expectation_timeout = 30.0
        # Replacements whose node is Ready, waiting for ``ready`` to be recorded (``_marks_due``):
        # since when (monotonic). Memory only: a restart finds them again.
        self._marks_seen: dict[str, float] = {}
        self.mark_delay = 5.0
        self.coalesce_max = 0.05  # seconds; see ``run``
        self._wave_of = {
            c: members.wave.name for members in self.fleet.waves for c in members.clusters
        }

    # -- the loop ------------------------------------------------------------------------

    def reconcile(self, *, resume: bool = False) -> PassResult:
        """One level-triggered pass; its result holds the plan whose ready steps it started."""
        now = self.clock()
        inventory = self.observer.inventory()
        state = self._effective_state(resume=resume, announce=True)
        with self._steps:
            halts, self._halts = self._halts, []
        if halts and not state.halted:
            state = state.halt(halts[0], now)
            self._emit("", "", "", f"rollout halted: {halts[0]}", "error")
        plan = planner.make(
            self.fleet, inventory, state, now, override_drift_limit=self.override_drift_limit
        )
        marks = _started(inventory)
        if plan.status == "in-progress" and not self.stopping.is_set():
            state = self._act(plan, inventory, state, now, marks)
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
                )
        else:
            for cluster, machine in marks:
                self._mark_ready(cluster, machine)
        if plan.status == "halted" and not state.halted:
            state = state.halt(plan.reason.removeprefix("rollout halted: "), now)
            self._emit("", "", "", plan.reason, "error")
        state = self._record_progress(plan, state, now)
        self.store.save(state)
        return self._result(plan, state)

    def _result(self, plan: Plan, state: RolloutState) -> PassResult:
        """What the pass leaves: the halt, the failure budgets, what failed since the last one."""
        with self._steps:
            failed_nodes, self._failed_nodes = tuple(self._failed_nodes), []
            failed_steps, self._failed_steps = tuple(self._failed_steps), []
        allowed = self.fleet.document.spec.rollout.max_failed_nodes
        budgets = tuple(
            WaveBudget(members.wave.name, state.wave(members.wave.name).failures, allowed)
            for members in self.fleet.waves
            if state.wave(members.wave.name).failures
        )
        halt = plan.reason if plan.status == "halted" else ""
        return PassResult(plan, halt, failed_nodes, budgets, failed_steps)

    def _spent(self, state: RolloutState) -> bool:
        """Whether a wave's failures exceed ``maxFailedNodes`` (the planner halts on it)."""
        allowed = self.fleet.document.spec.rollout.max_failed_nodes
        return any(state.wave(m.wave.name).failures > allowed for m in self.fleet.waves)

    def preview(self, *, resume: bool = False) -> Plan:
        """The plan the next reconcile would act on, without acting or writing anything."""
        state = self._effective_state(resume=resume, announce=False)
        return planner.make(
            self.fleet,
            self.observer.inventory(),
            state,
            self.clock(),
            override_drift_limit=self.override_drift_limit,
        )

    def _effective_state(self, *, resume: bool, announce: bool) -> RolloutState:
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
            started = time.monotonic()
            try:
                plan = self.reconcile(resume=resume and first).plan
            except GitopsError as err:
                self._emit("", "", "", f"reconcile failed, retrying: {err}", "warning")
                self.stopping.wait(poll)
                continue
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
            timeout = poll if wake is None else max(0.02, min(poll, wake - self.clock()))
            self.observer.wait_changed(generation, timeout, nudged_since=nudges)
            # While steps are in flight, let changes gather for as long as the last pass took:
            # in a burst (a big batch turning Ready at once, each step's own writes coming back
            # as events) passes would otherwise run back to back and starve the steps' threads
            # of the interpreter. With nothing in flight the loop answers at once.
            if self._inflight:
                self.stopping.wait(min(time.monotonic() - started, self.coalesce_max))

    def close(self) -> None:
        """Wait for the steps in flight to finish (each leaves the fleet consistent)."""
        with self._steps:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _busy_pools(self) -> set[Pool]:
        """Pools where a Machine this process creates is in flight or not observed yet.

        The plan of such a pool was made without that Machine and counts the pool short, so
        no Machine is created there until the cache shows it (``_act``); every other step,
        there and elsewhere, goes ahead: none depends on a Machine that is not Ready yet.
        """
        cache = self.observer.machines
        deadline = time.monotonic() - self.expectation_timeout
        lost: list[tuple[tuple[str, str], Pool]] = []
        with self._steps:
            for key, (pool, made) in list(self._expected.items()):
                if cache.get(*key) is not None:
                    del self._expected[key]
                elif made < deadline:
                    del self._expected[key]
                    lost.append((key, pool))
            busy = set(self._creating) | {pool for pool, _ in self._expected.values()}
        for (namespace, name), (cluster, pool_name) in lost:
            self._emit(
                cluster,
                pool_name,
                name,
                f"created machine {namespace}/{name} not observed after "
                f"{self.expectation_timeout:g}s; planning without it",
                "warning",
            )
        return busy

    # -- steps ---------------------------------------------------------------------------

    def next_retry(self) -> float | None:
        """When the earliest step waiting on its backoff may be tried again (None: none)."""
        now = self.clock()
        with self._steps:
            return min((t for t in self._not_before.values() if t > now), default=None)

    def _act(
        self,
        plan: Plan,
        inventory: Inventory,
        state: RolloutState,
        now: float,
        marks: list[tuple[str, str]],
    ) -> RolloutState:
        """Start the plan's ready steps: abandons here, in order; the others on worker threads.

        An abandon counts a failure in the durable record before it deletes, so abandons run
        one after another in this thread. Every other ready step is independent of the rest
        (the planner has already charged each against its pool's surge and unavailability
        budgets), so each goes to a bounded pool of threads and the loop goes back to
        watching: a batch of 25 retirements costs about one drain, and a slow drain in one
        cluster holds back no other. A step still in flight is never started twice; one that
        ends without a write the caches will show (a blocked drain, a halt) wakes the loop
        itself (``Observer.nudge``). Recording ``ready`` on replacements (``marks``) goes to
        the same threads, after the steps (``_marks_due``). A step that says the rollout must
        halt keeps steps not yet begun from starting (those in flight finish); the next pass
        records the halt. Machines are not created in a pool whose last creation is not
        observed yet (``_busy_pools``).
        """
        ready = planner.next_actions(plan)
        keys = {action.key for action in ready}
        busy = self._busy_pools()
        with self._steps:
            # a done step the plan no longer holds has shown its effect; one it still holds
            # after ``done_ttl`` lost it (someone undid it) and is due again
            fresh = time.monotonic() - self.done_ttl
            wanted = keys | {f"mark {m}" for m in marks}
            self._done = {k: t for k, t in self._done.items() if k in wanted and t > fresh}
            # forget the backoffs of steps no longer planned
            self._not_before = {k: t for k, t in self._not_before.items() if k in keys}
            self._attempts = {k: n for k, n in self._attempts.items() if k in keys}
            self._blocked = {k: b for k, b in self._blocked.items() if k in keys}
            due = [
                (slot, action)
                for slot, action in enumerate(ready)
                if action.key not in self._done
                and action.key not in self._inflight
                and (
                    self._not_before.get(action.key, 0.0) <= now
                    or _unblocked(self._blocked.get(action.key), inventory)
                )
                and not (
                    isinstance(action, ScaleUp | CreateReplacement)
                    and (action.cluster, action.pool) in busy
                )
            ]
        for _, action in due:
            if not isinstance(action, AbandonMachine):
                continue
            if self.stopping.is_set():
                return state
            doc = self.fleet.cluster(action.cluster)
            if doc is None:
                continue
            try:
                state = self._abandon(action, doc, state)
                self._settle(action, _Outcome(True))
            except GitopsError as err:
                self._failed(action, err)
                self._settle(action, _Outcome(False))
        if self._spent(state):
            return state  # the abandons spent the failure budget: nothing new starts
        others = [(slot, a) for slot, a in due if not isinstance(a, AbandonMachine)]
        marks = self._marks_due(marks, bool(others))
        if not others and not marks:
            return state
        with self._steps:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="gitops-step")
            pool = self._pool
            self._inflight.update(action.key for _, action in others)
            self._creating.update(
                (a.cluster, a.pool) for _, a in others if isinstance(a, ScaleUp | CreateReplacement)
            )
            self._inflight.update(f"mark {m}" for m in marks)
        # Steps first: the pool's queue is first in, first out, and a retirement or a creation
        # is on the rollout's critical path where recording ``ready`` is not.
        for slot, action in others:
            pool.submit(self._step, action, slot, plan, inventory, state, now)
        for cluster, machine in marks:
            pool.submit(self._step_mark, cluster, machine)
        return state

    def _marks_due(self, marks: list[tuple[str, str]], stepping: bool) -> list[tuple[str, str]]:
        """The ``ready`` marks to write now: each once until the caches show it, and, while
        other steps are due or in flight, only those kept waiting ``mark_delay`` already.

        A mark decides nothing at once (the planner pairs by the node's readiness), while in
        a burst of a big batch every request a retirement waits behind delays the next
        batch; marks go when the burst is over, or after ``mark_delay`` at the latest.
        """
        keys = {f"mark {m}": m for m in marks}
        now = time.monotonic()
        with self._steps:
            self._marks_seen = {k: self._marks_seen.get(k, now) for k in keys}
            busy = stepping or any(not k.startswith("mark ") for k in self._inflight)
            return [
                m
                for k, m in keys.items()
                if k not in self._inflight
                and k not in self._done
                and (not busy or now - self._marks_seen[k] >= self.mark_delay)
            ]

    def _step(
        self,
        action: AnyAction,
        slot: int,
        plan: Plan,
        inventory: Inventory,
        state: RolloutState,
        now: float,
    ) -> None:
        """A worker thread's share: one step, then its bookkeeping, then wake the loop."""
        outcome = _Outcome(False)
        try:
            if not self.stopping.is_set() and not self._halts:
                outcome = self._perform(action, slot, plan, inventory, state, now)
        except Exception as err:  # never lose a worker's failure silently
            log.exception("step %s failed unexpectedly", action.key)
            self._failed(action, GitopsError(str(err)))
        finally:
            with self._steps:
                if outcome.halt:
                    self._halts.append(outcome.halt)
            self._settle(action, outcome)
            if outcome.halt:
                self.observer.nudge()

    def _step_mark(self, cluster: str, machine: str) -> None:
        try:
            self._mark_ready(cluster, machine)
        finally:
            with self._steps:
                _release(self._inflight, f"mark {(cluster, machine)}")
                self._done[f"mark {(cluster, machine)}"] = time.monotonic()
                self._steps.notify_all()

    def _settle(self, action: AnyAction, outcome: _Outcome) -> None:
        """Book a step's end: done until the caches move, or due again after its backoff (or
        as soon as a PodDisruptionBudget that blocked it changes)."""
        with self._steps:
            _release(self._inflight, action.key)
            if isinstance(action, ScaleUp | CreateReplacement):
                _release(self._creating, (action.cluster, action.pool))
            self._blocked.pop(action.key, None)
            if outcome.settled:
                self._done[action.key] = time.monotonic()
                self._not_before.pop(action.key, None)
                self._attempts.pop(action.key, None)
            else:  # failed, or a drain still blocked: try again, but not at once
                attempt = self._attempts.get(action.key, 0)
                self._attempts[action.key] = attempt + 1
                budgets = {k: self.observer.pdb(action.cluster, k) for k in outcome.blocked_by}
                delay = self.retry_interval * min(1.0, 2.0 ** (attempt - 4))
                if attempt < QUICK_RETRIES and any(_allows(b) for b in budgets.values()):
                    # The cache already shows room again (an evicted pod is back, or the
                    # refusal is not in the cache yet), so no newer version may come to wake
                    # the step: try again on the next pass; a few times only, as a budget
                    # whose status lags refuses all the same.
                    delay = 0.0
                self._not_before[action.key] = self.clock() + delay
                if budgets:
                    self._blocked[action.key] = (
                        action.cluster,
                        {k: _version(b) for k, b in budgets.items()},
                    )
            self._steps.notify_all()
        if not outcome.settled:
            # A settled step wrote something: the caches will show it and wake the loop. One
            # that did not (a blocked drain) would not: the loop must learn its backoff.
            self.observer.nudge()

    def _perform(
        self,
        action: AnyAction,
        slot: int,
        plan: Plan,
        inventory: Inventory,
        state: RolloutState,
        now: float,
    ) -> _Outcome:
        """Carry one step out."""
        doc = self.fleet.cluster(action.cluster)
        pool = doc.pool(action.pool) if doc is not None else None
        if doc is None or pool is None:
            return _Outcome(True)
        try:
            if isinstance(action, ScaleUp | CreateReplacement):
                self._create(action, slot, plan, doc, pool, state)
            elif isinstance(action, RetireNode | ScaleDown):
                return self._retire(action, plan, inventory, doc, pool, now)
            elif isinstance(action, Uncordon):
                self._uncordon(action)
        except GitopsError as err:
            self._failed(action, err)
            return _Outcome(False)
        return _Outcome(True)

    def _failed(self, action: AnyAction, err: GitopsError) -> None:
        message = f"{action.kind} failed: {err}"
        with self._steps:
            self._failed_steps.append(Failure(action.cluster, action.pool, action.subject, message))
        self._emit(action.cluster, action.pool, action.subject, message, "warning")

    def _create(
        self,
        action: ScaleUp | CreateReplacement,
        slot: int,
        plan: Plan,
        doc: ClusterDocument,
        pool: NodePool,
        state: RolloutState,
    ) -> None:
        replacing = isinstance(action, CreateReplacement)
        # A failed attempt is deleted and the inventory goes back to what it was, so the plan
        # id (and with it the name) would repeat: the new Machine would collide with the old
        # one, or with its infrastructure clone, while they are still being deleted. The wave's
        # failure count is durable and moves with every abandon, so it tells attempts apart.
        failures = state.wave(self._wave_of[doc.name]).failures
        attempt = f"#attempt-{failures}" if failures else ""
        request = MachineRequest(
            cluster=doc,
            pool=pool,
            image_name=action.image,
            image=self.fleet.images[action.image],
            zone=action.zone,
            replaces=action.replaces if isinstance(action, CreateReplacement) else "",
            plan_id=plan.id,
            # A scale-up has no node to key on: its step number in this plan tells it apart.
            slot=("" if replacing else str(slot)) + attempt,
        )
        machine = self.provider.create_replacement(request)
        meta = machine["metadata"]
        with self._steps:
            self._expected[(meta["namespace"], meta["name"])] = (
                (doc.name, pool.name),
                time.monotonic(),
            )
        what = f"for {action.replaces}" if isinstance(action, CreateReplacement) else "to scale up"
        self._emit(
            doc.name,
            pool.name,
            machine["metadata"]["name"],
            f"created machine {machine['metadata']['name']} in {action.zone} {what}",
        )

    def _retire(
        self,
        action: RetireNode | ScaleDown,
        plan: Plan,
        inventory: Inventory,
        doc: ClusterDocument,
        pool: NodePool,
        now: float,
    ) -> _Outcome:
        """One pass of a retirement; settled once the machine is deleted (or the rollout halts)."""
        seen = inventory.cluster(doc.name)
        node = seen.node(action.node) if seen is not None and action.node else None
        kube = self.observer.workload(doc.name)
        if node is not None and kube is not None and not node.deleting:
            try:
                result = self._drain(kube, node, plan, doc, pool, now)
            except NotFound:
                # the node went away under us: only its machine is left
                result = drain.DrainResult("drained")
            if result.outcome == "failed":
                # The reason names the node, the blocking PDB and the timeout: it is what the
                # record, the plan and `gitops apply` show the SRE who has to act.
                why = result.message or f"drain of {node.name} failed"
                return _Outcome(True, f"{why} (onDrainTimeout: fail)")
            if result.outcome != "drained":
                return _Outcome(False, blocked_by=result.blocked_by)
        if action.machine:
            try:
                self.provider.annotate_machine(
                    doc.namespace, action.machine, {PHASE_ANNOTATION: "retired"}
                )
            except NotFound:
                # Deleted by an earlier pass whose effect the cache has not shown yet: done.
                return _Outcome(True)
            self.provider.delete_machine(doc.namespace, action.machine)
            self._emit(
                doc.name,
                pool.name,
                action.node or action.machine,
                f"deleted machine {action.machine} of {action.node or 'no node'}",
            )
        return _Outcome(True)

    def _drain(
        self, kube: Kube, node: Node, plan: Plan, doc: ClusterDocument, pool: NodePool, now: float
    ) -> drain.DrainResult:
        """Cordon (once) and run one eviction pass; the outcome says whether to delete now."""
        if node.unschedulable and node.phase == "retired":
            # Drained by an earlier pass (it wrote "retired" once no pod was left, and a
            # cordoned node gets none): what is left is its machine, or waiting for it to go.
            return drain.DrainResult("drained")
        if not node.unschedulable or node.phase != "draining":
            drain.cordon(kube, node, plan.id, now)
            self._emit(doc.name, pool.name, node.name, f"cordoned {node.name}")
            started = node.annotations.get(DRAIN_STARTED_ANNOTATION, f"{now:.3f}")
            node = replace(
                node,
                unschedulable=True,
                annotations={**node.annotations, DRAIN_STARTED_ANNOTATION: started},
            )
        result = drain.drain_pass(kube, node, pool, now)
        if result.outcome == "draining" and result.blocked_by:
            blockers = ", ".join(result.blocked_by)
            self._emit(
                doc.name,
                pool.name,
                node.name,
                f"drain of {node.name} blocked by PodDisruptionBudget {blockers}; retrying",
            )
        elif result.outcome in ("quarantined", "failed"):
            level = "warning" if result.outcome == "quarantined" else "error"
            self._emit(doc.name, pool.name, node.name, result.message, level)
        elif result.outcome == "drained":
            actions.patch_node(kube, node.name, annotations={PHASE_ANNOTATION: "retired"})
        return result

    def _abandon(
        self, action: AbandonMachine, doc: ClusterDocument, state: RolloutState
    ) -> RolloutState:
        if not action.counted:
            # Count first, then mark: a crash in between counts the failure twice, which halts
            # early; the other order could lose it and let a bad image go further.
            state = state.record_failure(self._wave_of[doc.name])
            self.store.save(state)
            self.provider.annotate_machine(
                doc.namespace,
                action.machine,
                {
                    FAILED_ANNOTATION: action.reason.removeprefix(f"abandon {action.machine}: ")[
                        :200
                    ]
                },
            )
            message = f"machine {action.machine} failed: {action.reason}"
            with self._steps:
                self._failed_nodes.append(Failure(doc.name, action.pool, action.machine, message))
            self._emit(doc.name, action.pool, action.machine, message, "error")
        self.provider.delete_machine(doc.namespace, action.machine)
        return state

    def _uncordon(self, action: Uncordon) -> None:
        kube = self.observer.workload(action.cluster)
        if kube is None:
            return
        actions.patch_node(
            kube,
            action.node,
            unschedulable=False,
            annotations={
                CORDONED_BY_ANNOTATION: None,
                PHASE_ANNOTATION: None,
                DRAIN_STARTED_ANNOTATION: None,
                DRAIN_BLOCKED_ANNOTATION: None,
            },
        )
        self._emit(action.cluster, action.pool, action.node, f"uncordoned {action.node}")

    def _mark_ready(self, cluster: str, machine: str) -> None:
        """Record ``ready`` on a machine the controller created once its node is first Ready.

        From then on nodeStartupTimeout no longer applies to it (the planner reads the phase).
        """
        doc = self.fleet.cluster(cluster)
        if doc is None:
            return
        try:
            self.provider.annotate_machine(doc.namespace, machine, {PHASE_ANNOTATION: "ready"})
        except GitopsError as err:
            message = f"cannot mark {machine} ready: {err}"
            with self._steps:
                self._failed_steps.append(Failure(cluster, "", machine, message))
            self._emit(cluster, "", machine, message, "warning")

    # -- progress ------------------------------------------------------------------------

    def _record_progress(self, plan: Plan, state: RolloutState, now: float) -> RolloutState:
        for wave in plan.waves:
            progress = state.wave(wave.name)
            if wave.status == "active" and progress.started_at is None:
                progress = replace(progress, started_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} started")
            if (
                wave.status in ("soaking", "complete")
                and progress.converged_at is None
                and progress.started_at is not None
            ):
                progress = replace(progress, converged_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} converged")
            if (
                wave.status == "complete"
                and progress.soaked_at is None
                and progress.started_at is not None
            ):
                progress = replace(progress, soaked_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} soaked")
            if progress != state.wave(wave.name):
                state = state.with_wave(progress)
            for cluster in wave.clusters:
                cp = state.cluster(cluster.name)
                if cluster.status == "active" and cp.started_at is None:
                    cp = replace(cp, started_at=now)
                if (
                    cluster.status in ("soaking", "converged")
                    and cp.started_at is not None
                    and cp.converged_at is None
                ):
                    cp = replace(cp, converged_at=now)
                if (
                    cluster.status == "converged"
                    and cp.converged_at is not None
                    and cp.soaked_at is None
                ):
                    cp = replace(cp, soaked_at=now)
                if cp != state.cluster(cluster.name):
                    state = state.with_cluster(cp)
        return state

    def _emit(
        self, cluster: str, pool: str, subject: str, message: str, level: str = "info"
    ) -> None:
        event = Event(self.clock(), cluster, pool, subject, message, level)
        getattr(log, "error" if level == "error" else level)(
            "%s", message, extra={"cluster": cluster, "pool": pool, "node": subject}
        )
        if self.on_event is not None:
            with self._lock:
                self.on_event(event)


def _release(counts: Counter[K], key: K) -> None:
    """One fewer of ``key`` in flight; gone from ``counts`` at none (``in`` means > 0)."""
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]


def _unblocked(blocked: tuple[str, dict[str, str]] | None, inventory: Inventory) -> bool:
    """Whether a budget that refused a step's eviction has a newer version allowing one."""
    if blocked is None:
        return False
    cluster, versions = blocked
    seen = inventory.cluster(cluster)
    if seen is None:
        return False
    for key, version in versions.items():
        budget = seen.pdb(key)
        if (
            budget is not None
            and budget.resource_version != version
            and budget.disruptions_allowed > 0
        ):
            return True
    return False


def _allows(budget: dict[str, Any] | None) -> bool:
    return (
        budget is not None and int((budget.get("status") or {}).get("disruptionsAllowed") or 0) > 0
    )


def _version(budget: dict[str, Any] | None) -> str:
    return str(((budget or {}).get("metadata") or {}).get("resourceVersion") or "")


def _started(inventory: Inventory) -> list[tuple[str, str]]:
    """(cluster, machine) of controller-made machines still starting whose node is Ready."""
    out = []
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
