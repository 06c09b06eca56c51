"""The typed outcome of one executor pass, for the controller loop to read.

Shell layer, beside ``gitops.rollout.executor`` which builds it at the end of every
``reconcile``. It says what the pass means to whoever reports on it: whether the rollout is
halted (and why), which machines failed in this pass and whether the failure budget
(``maxFailedNodes``) still covers them, and which steps failed and will be tried again. The
loop maps it to the ``act`` phase's outcome without reading event levels or messages. A failed
node within the budget is expected wear of a rollout (its pool gets a new replacement); only
a halt needs a human. This module decides nothing and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.plan import Plan


@dataclass(frozen=True)
class Failure:
    """One thing that failed: a step (retried after a backoff) or a machine (replaced)."""

    cluster: str
    pool: str
    subject: str  # the machine, node or step that failed
    message: str


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
    by it, or a wave's failures past its budget that the next plan will halt on. ``failed_nodes``
    are the machines this pass counted as failed; ``budgets`` the waves with any failure, after
    this pass. ``failed_steps`` are the steps that failed since the previous pass ended; each is
    tried again after its backoff.
    """

    plan: Plan
    halt: str = ""
    failed_nodes: tuple[Failure, ...] = ()
    budgets: tuple[WaveBudget, ...] = ()
    failed_steps: tuple[Failure, ...] = ()

    @property
    def halted(self) -> bool:
        return bool(self.halt)
