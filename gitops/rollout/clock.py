"""The one clock the executor runs on, injected.

Shell layer, at the bottom of ``gitops.rollout``. ``Clock`` is the protocol the simulator's
clocks (``gitops.sim.world.clock``) implement as well, declared here so that the rollout never
imports the simulator: a test hands the executor a virtual clock and the rollout's waits,
backoffs and expectations all move with it. This is the only module of ``gitops.rollout``
that reads the time; everything else asks the clock it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time, the default outside tests."""

    def now(self) -> float:
        return time.time()


@dataclass(frozen=True, slots=True)
class FunctionClock:
    """A clock read by calling ``read`` (for callers injecting a plain ``() -> float``)."""

    read: Callable[[], float]

    def now(self) -> float:
        return self.read()


SYSTEM_CLOCK = SystemClock()
