"""The typed outcome of one executor pass, for the controller loop to read.

Shell layer, beside ``gitops.rollout.executor`` which builds it at the end of every
``reconcile``. It says what the pass means to whoever reports on it: whether the rollout is
halted (and why), which machines failed in this pass and whether the failure budget
(``maxFailedNodes``) still covers them, and which steps failed and will be tried again. The
loop maps it to the ``act`` phase's outcome without reading event levels or messages. A failed
node within the budget is expected wear of a rollout (its pool gets a new replacement); only
a halt needs a human. ``StepOutcome`` is how each step of ``gitops.rollout.steps`` ended, the
only thing the executor and its scheduler decide from (never an event's level). This module
decides nothing and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.kube.refs import MachineRef
from gitops.plan import Plan


@dataclass(frozen=True)
class Failure:
    """One thing that failed: a step (retried after a backoff) or a machine (replaced)."""

    cluster: str
    pool: str
    subject: str  # the machine, node or step that failed
    message: str


@dataclass(frozen=True)
class StepOutcome:
    """How one step ended.

    ``settled``: its effect is written and will be observed (else it is tried again after a
    backoff). ``halt``: why the rollout must stop ("" when it need not). ``blocked_by``: the
    PodDisruptionBudgets ("namespace/name") that refused an eviction; a newer version of any
    of them allowing a disruption makes the step due before its backoff ends. ``failure``: the
    step failed (it is retried). ``failed_node``: a machine counted against the wave's
    failure budget. ``created``: the Machine the step created, expected in the caches soon.
    ``terminating``: a drain waiting for evicted pods to be gone (their grace period).
    ``retry_after``: the least wait before trying again that the API server asked for (a
    429's ``Retry-After``; 0 when it asked none).
    """

    settled: bool
    halt: str = ""
    blocked_by: tuple[str, ...] = ()
    failure: Failure | None = None
    failed_node: Failure | None = None
    created: MachineRef | None = None
    terminating: bool = False
    retry_after: float = 0.0


@dataclass(frozen=True)
class StepResult:
    """A step that ended: ``kind`` is the action's (or ``MarkReady``), ``subject`` its node,
    machine or zone."""

    kind: str
    cluster: str
    pool: str
    subject: str
    outcome: StepOutcome


@dataclass(frozen=True)
class WaveBudget:
    """A wave's failure budget as the durable record stands after the pass."""

    wave: str
    failures: int
    allowed: int  # maxFailedNodes

    @property
    def exceeded(self) -> bool:
        return self.failures > self.allowed

    def describe(self) -> str:
        return (
            f"{self.failures} nodes failed in wave {self.wave}, "
            + ("more than" if self.exceeded else "within")
            + f" maxFailedNodes {self.allowed}"
        )


@dataclass(frozen=True)
class PassResult:
    """What one ``Executor.reconcile`` did and left.

    ``halt`` is why the rollout is halted ("" while it is not): recorded before this pass or
    by it, or a wave's failures past its budget that the next plan will halt on. ``budgets``
    are the waves with any failure, after this pass. ``outcomes`` are the steps that ended
    since the previous pass ended (on worker threads, or in this pass); of them,
    ``failed_nodes`` are the machines counted as failed and ``failed_steps`` the steps that
    failed, each tried again after its backoff.
    """

    plan: Plan
    halt: str = ""
    budgets: tuple[WaveBudget, ...] = ()
    outcomes: tuple[StepResult, ...] = ()

    @property
    def halted(self) -> bool:
        return bool(self.halt)

    @property
    def failed_nodes(self) -> tuple[Failure, ...]:
        return tuple(r.outcome.failed_node for r in self.outcomes if r.outcome.failed_node)

    @property
    def failed_steps(self) -> tuple[Failure, ...]:
        return tuple(r.outcome.failure for r in self.outcomes if r.outcome.failure)
