"""Which of a plan's ready steps the executor starts now, and what it remembers about the rest.

Shell layer, but pure: no I/O, no threads, and no time but the injected ``Clock``. The executor
(``gitops.rollout.executor``) asks it every pass which steps are due, tells it when a step
starts and how it ended (a ``StepOutcome`` of ``gitops.rollout.steps``), and holds a lock
around it while its worker threads do so. It keeps, in memory only (a restarted controller
observes afresh and needs none of it):

* steps in flight, counted by key: two scale-ups of one pool and zone share a key, and the
  first to end must not make the other look finished;
* steps done whose effect the caches may not show yet: repeating them would be harmless
  (every write is idempotent) but noisy, so each waits until the plan drops it or
  ``done_ttl`` passes (then someone undid it, and it is due again);
* backoffs: a step that failed or could not finish (a drain a PodDisruptionBudget refused) is
  tried again after a delay doubling from a sixteenth of ``retry_interval`` up to it, so a
  budget that blocks only until an evicted pod is rescheduled costs a blink and one that stays
  blocked is re-listed at most once an interval;
* refused drains and the budgets' resourceVersions when they refused: a newer version of one
  that allows a disruption makes the step due before its backoff ends; when the budget already
  allows one as the step ends, no newer version may come, so the step is due at once, for
  ``QUICK_RETRIES`` attempts (a budget whose status lags refuses all the same);
* expectations, as Kubernetes' ReplicaSet controller keeps them: Machines created but not
  observed yet, per pool; a plan made before they show counts the pool short, so no Machine is
  created in that pool until they do, or until ``expectation_timeout`` gives up on them;
* ``ready`` marks: replacements whose node is Ready wait for the mark, which is written once a
  burst of steps is over, or after ``mark_delay`` at the latest.

It decides nothing about the fleet (the planner did); only when to try a step again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gitops.inventory import PodDisruptionBudget
from gitops.kube.refs import MachineRef
from gitops.plan import AnyAction, CreateReplacement, ScaleUp
from gitops.rollout.clock import Clock
from gitops.rollout.result import StepOutcome

Pool = tuple[str, str]  # (cluster, pool)
Mark = tuple[str, str]  # (cluster, machine): a replacement waiting for its ``ready`` mark
# The budget "namespace/name" of a cluster as observed now, or None.
BudgetLookup = Callable[[str, str], PodDisruptionBudget | None]
K = TypeVar("K")

QUICK_RETRIES = 8  # of a drain whose refusing budget shows room again as the step ends
BACKOFF_HALVINGS = 4  # the first retry waits retry_interval / 2**4
TERMINATION_POLLS = 4  # by default a terminating drain is polled every retry_interval / 4


@dataclass(frozen=True, slots=True)
class Lost:
    """A created Machine never observed within ``expectation_timeout``."""

    machine: MachineRef
    pool: Pool


@dataclass(frozen=True, slots=True)
class Blocked:
    """A drain the budgets refused: each budget's resourceVersion when the step ended."""

    cluster: str
    versions: Mapping[str, str]


def creates(action: AnyAction) -> bool:
    """Whether the step creates a Machine (and so waits for its pool's expectations)."""
    return isinstance(action, ScaleUp | CreateReplacement)


def backoff(retry_interval: float, attempt: int) -> float:
    """The delay before retry ``attempt`` (0-based): doubling from 1/16 of the interval to it."""
    return retry_interval * min(1.0, 2.0 ** (attempt - BACKOFF_HALVINGS))


class Scheduler:
    """Steps in flight, done, backing off, blocked; expectations and ready-marks."""

    def __init__(
        self,
        clock: Clock,
        *,
        retry_interval: float = 1.0,
        done_ttl: float = 5.0,
        expectation_timeout: float = 30.0,
        mark_delay: float = 5.0,
        termination_poll: float | None = None,
    ) -> None:
        self.clock = clock
        self.retry_interval = retry_interval
        # A drain waiting for evicted pods to finish terminating (their grace period) is looked
        # at again at least this often, whatever its backoff: nothing else wakes it.
        self.termination_poll = (
            retry_interval / TERMINATION_POLLS if termination_poll is None else termination_poll
        )
        self.done_ttl = done_ttl
        self.expectation_timeout = expectation_timeout
        self.mark_delay = mark_delay
        self.inflight: Counter[str] = Counter()
        self.creating: Counter[Pool] = Counter()
        self.done: dict[str, float] = {}
        self.not_before: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.blocked: dict[str, Blocked] = {}
        self.expected: dict[MachineRef, tuple[Pool, float]] = {}
        self.marks_inflight: set[Mark] = set()
        self.marks_done: dict[Mark, float] = {}
        self.marks_seen: dict[Mark, float] = {}

    @property
    def busy(self) -> bool:
        """Whether any step or mark is in flight."""
        return bool(self.inflight) or bool(self.marks_inflight)

    def cluster_busy(self, cluster: str) -> bool:
        """Whether a step or mark of ``cluster`` is in flight, or a Machine it created is not
        observed yet: a sharded replica hands a cluster over only when it is not."""
        return (
            any(key.split("/")[1] == cluster for key in self.inflight)
            or any(mark[0] == cluster for mark in self.marks_inflight)
            or any(pool[0] == cluster for pool in self.creating)
            or any(pool[0] == cluster for pool, _ in self.expected.values())
        )

    # -- expectations --------------------------------------------------------------------

    def busy_pools(self, observed: Callable[[MachineRef], bool]) -> tuple[set[Pool], list[Lost]]:
        """Pools where a Machine is being created or not ``observed`` yet; and the Machines
        given up on (not observed within ``expectation_timeout``), now forgotten."""
        deadline = self.clock.now() - self.expectation_timeout
        lost: list[Lost] = []
        for ref, (pool, made) in list(self.expected.items()):
            if observed(ref):
                del self.expected[ref]
            elif made < deadline:
                del self.expected[ref]
                lost.append(Lost(ref, pool))
        return set(self.creating) | {pool for pool, _ in self.expected.values()}, lost

    # -- a pass --------------------------------------------------------------------------

    def due(
        self,
        ready: Sequence[AnyAction],
        marks: Collection[Mark],
        busy: Collection[Pool],
        budget: BudgetLookup,
    ) -> list[tuple[int, AnyAction]]:
        """The ready steps to start now, with their index in ``ready`` (a scale-up's slot).

        What the plan no longer holds is forgotten first: a done step it dropped has shown its
        effect, a backoff it dropped is moot. A step is due unless it is done (within
        ``done_ttl``), in flight, backing off (and no budget that refused it moved), or it
        creates a Machine in a ``busy`` pool.
        """
        now = self.clock.now()
        keys = {action.key for action in ready}
        fresh = now - self.done_ttl
        self.done = {k: t for k, t in self.done.items() if k in keys and t > fresh}
        self.marks_done = {m: t for m, t in self.marks_done.items() if m in marks and t > fresh}
        self.not_before = {k: t for k, t in self.not_before.items() if k in keys}
        self.attempts = {k: n for k, n in self.attempts.items() if k in keys}
        self.blocked = {k: b for k, b in self.blocked.items() if k in keys}
        return [
            (slot, action)
            for slot, action in enumerate(ready)
            if action.key not in self.done
            and action.key not in self.inflight
            and (self.not_before.get(action.key, 0.0) <= now or self._unblocked(action, budget))
            and not (creates(action) and (action.cluster, action.pool) in busy)
        ]

    def _unblocked(self, action: AnyAction, budget: BudgetLookup) -> bool:
        """Whether a budget that refused the step has a newer version allowing a disruption."""
        blocked = self.blocked.get(action.key)
        if blocked is None:
            return False
        for key, version in blocked.versions.items():
            seen = budget(blocked.cluster, key)
            if (
                seen is not None
                and seen.resource_version != version
                and seen.disruptions_allowed > 0
            ):
                return True
        return False

    def start(self, actions: Collection[AnyAction]) -> None:
        """The steps go to the worker threads."""
        self.inflight.update(action.key for action in actions)
        self.creating.update((a.cluster, a.pool) for a in actions if creates(a))

    def marks_due(self, marks: Sequence[Mark], stepping: bool) -> list[Mark]:
        """The ``ready`` marks to write now: each once until the caches show it, and, while
        steps are due (``stepping``) or in flight, only those kept waiting ``mark_delay``.

        A mark decides nothing at once (the planner pairs by the node's readiness), while in
        a burst of a big batch every request a retirement waits behind delays the next batch.
        """
        now = self.clock.now()
        wanted = dict.fromkeys(marks)
        self.marks_seen = {m: self.marks_seen.get(m, now) for m in wanted}
        busy = stepping or bool(self.inflight)
        return [
            m
            for m in wanted
            if m not in self.marks_inflight
            and m not in self.marks_done
            and (not busy or now - self.marks_seen[m] >= self.mark_delay)
        ]

    def start_marks(self, marks: Collection[Mark]) -> None:
        self.marks_inflight.update(marks)

    # -- a step's end --------------------------------------------------------------------

    def settle(self, action: AnyAction, outcome: StepOutcome, budget: BudgetLookup) -> None:
        """Book a step's end: done until the caches move, or due again after its backoff (or
        as soon as a budget that refused it moves); a created Machine is now expected."""
        now = self.clock.now()
        key = action.key
        _release(self.inflight, key)
        pool = (action.cluster, action.pool)
        if creates(action):
            _release(self.creating, pool)
        if outcome.created is not None:
            self.expected[outcome.created] = (pool, now)
        self.blocked.pop(key, None)
        if outcome.settled:
            self.done[key] = now
            self.not_before.pop(key, None)
            self.attempts.pop(key, None)
            return
        attempt = self.attempts.get(key, 0)
        self.attempts[key] = attempt + 1
        budgets = {k: budget(action.cluster, k) for k in outcome.blocked_by}
        delay = backoff(self.retry_interval, attempt)
        if outcome.terminating:
            delay = min(delay, self.termination_poll)
        if attempt < QUICK_RETRIES and any(
            b is not None and b.disruptions_allowed > 0 for b in budgets.values()
        ):
            # The cache already shows room again (an evicted pod is back, or the refusal is
            # not in the cache yet), so no newer version may come to wake the step.
            delay = 0.0
        self.not_before[key] = now + max(delay, outcome.retry_after)  # never sooner than asked
        if budgets:
            self.blocked[key] = Blocked(
                action.cluster, {k: b.resource_version if b else "" for k, b in budgets.items()}
            )

    def settle_mark(self, mark: Mark) -> None:
        self.marks_inflight.discard(mark)
        self.marks_done[mark] = self.clock.now()

    def next_retry(self) -> float | None:
        """When the earliest step backing off may be tried again (None: none is)."""
        now = self.clock.now()
        return min((t for t in self.not_before.values() if t > now), default=None)


def _release(counts: Counter[K], key: K) -> None:
    """One fewer of ``key`` in flight; gone from ``counts`` at none (``in`` means > 0)."""
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
