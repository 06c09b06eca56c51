"""Typed outcomes of the reconcile phases: fetch → load → observe → plan → act → report.

Shell layer, the vocabulary of the loop (``gitops.controller.loop``). Every phase of a pass
ends in one :class:`PhaseOutcome`, of one of four kinds, after the project's error tree
(``gitops.errors``):

| kind | meaning | the loop then |
|---|---|---|
| ``ok`` | the phase did what it is for | goes on; polls again after the interval |
| ``waiting`` | expected, not done yet (caches listing, nodes booting, a soak) | requeues after ``requeue`` seconds |
| ``transient`` | a passing fault (remote unreachable, API 5xx) | retries with backoff |
| ``stalled`` | needs a human (invalid or unsigned revision, halted rollout) | reports it; does not retry until git or the cluster changes |

The loop keeps the soonest requeue of a pass. Outcomes are what ``/readyz``, the logs, the
metrics and the status branch's ``controller.yaml`` say about the controller itself; their
messages describe a state, not an event, so that an idle controller renders the same bytes
pass after pass and writes no status commit. This module decides nothing and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gitops.errors import GitopsError, Stalled, Waiting

PHASES = ("fetch", "load", "observe", "plan", "act", "report")

Kind = Literal["ok", "waiting", "transient", "stalled"]

# The kinds as the status files and /readyz spell them (the condition reasons of Flux).
TITLES: dict[str, str] = {
    "ok": "Ok",
    "waiting": "Waiting",
    "transient": "Transient",
    "stalled": "Stalled",
}


@dataclass(frozen=True)
class PhaseOutcome:
    """How one phase of one pass ended.

    ``duration`` is the time the phase took in this pass (seconds); None when it did not run
    on its own: a phase with nothing new to do keeps its last outcome, and ``plan`` is timed
    with ``act`` (the executor plans and acts in one call). ``requeue`` is when this phase
    wants the next pass (seconds from now; None: the poll interval will do).
    """

    name: str
    kind: Kind
    message: str = ""
    duration: float | None = None
    requeue: float | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def same(self, other: PhaseOutcome | None) -> bool:
        """Whether ``other`` says the same thing (kind and message; not timings)."""
        return other is not None and (other.kind, other.message) == (self.kind, self.message)

    def describe(self) -> str:
        """``fetch: Transient: cannot fetch ...``: one line for /readyz and logs."""
        return f"{self.name}: {TITLES[self.kind]}" + (f": {self.message}" if self.message else "")

    def as_status(self) -> dict[str, str]:
        """The phase as the status branch shows it (no timings: they would change every pass)."""
        return {"phase": self.name, "result": TITLES[self.kind], "message": self.message}


def from_error(name: str, err: GitopsError, duration: float | None, backoff: float) -> PhaseOutcome:
    """The outcome of a phase that raised ``err``; ``backoff`` is the retry delay to use."""
    if isinstance(err, Stalled):
        return PhaseOutcome(name, "stalled", str(err), duration)
    if isinstance(err, Waiting):
        return PhaseOutcome(name, "waiting", str(err), duration, max(0.0, err.after))
    # Transient, or an untyped GitopsError from an adapter that did not say: retrying is the
    # cautious reading (a Stalled error would have said so).
    return PhaseOutcome(name, "transient", str(err), duration, backoff)


def soonest(outcomes: Iterable[PhaseOutcome]) -> float | None:
    """The soonest requeue any outcome asks for (None: none asks)."""
    times = [o.requeue for o in outcomes if o.requeue is not None]
    return min(times) if times else None


def problems(outcomes: Iterable[PhaseOutcome]) -> list[str]:
    """The outcomes that say something is wrong (transient or stalled), one line each."""
    return [o.describe() for o in outcomes if o.kind in ("transient", "stalled")]
