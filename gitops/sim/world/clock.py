"""Simulated time: the clocks the world runs on and the scheduler of its delayed actions.

Tool layer (``gitops.sim.world``). Physics (``physics.py``) never sleeps and never reads
``time`` directly: it asks a ``Scheduler`` to run an action at a time of its ``Clock``. With a
``RealClock`` the world's physics thread waits for the next due action; with a ``ManualClock``
nothing runs until a test calls ``advance(seconds)``, which steps virtual time from one due
action to the next, so tests are deterministic and never sleep.

This module must never touch the store or the fleet: it only orders callables in time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

Action = Callable[[], None]


class Clock(Protocol):
    """Seconds since the epoch, as the simulated world sees them."""

    def now(self) -> float: ...


class RealClock:
    """Wall-clock time (the default when the simulator serves HTTP)."""

    manual = False

    def now(self) -> float:
        return time.time()


class Runner(Protocol):
    """Something a ``ManualClock`` drives: it runs what is due and says when it next wants to."""

    def run_pending(self) -> None: ...

    def next_due(self) -> float | None: ...


class ManualClock:
    """Virtual time that moves only when ``advance`` is called (tests)."""

    manual = True

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._runners: list[Runner] = []
        self._lock = threading.RLock()

    def now(self) -> float:
        return self._now

    def attach(self, runner: Runner) -> None:
        """Have ``advance`` drive ``runner`` (a world's physics)."""
        self._runners.append(runner)

    def advance(self, seconds: float = 0.0) -> None:
        """Move time forward by ``seconds``, running every action due on the way, in order.

        ``advance(0)`` runs only what is due now (reactions to writes just made).
        """
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            target = self._now + seconds
            while True:
                for runner in self._runners:
                    runner.run_pending()
                due = [d for d in (r.next_due() for r in self._runners) if d is not None]
                if not due or min(due) > target:
                    break
                self._now = max(self._now, min(due))
            self._now = target
            for runner in self._runners:
                runner.run_pending()


class Scheduler:
    """Actions to run at given clock times, run in (time, order of scheduling) order.

    Thread-safe: any thread may schedule; ``run_due`` runs actions on the caller's thread,
    outside the scheduler's lock, so an action may schedule more.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.wakeup = threading.Event()  # set whenever something is scheduled

    def call_at(self, when: float, action: Action) -> None:
        with self._lock:
            heapq.heappush(self._heap, (when, next(self._order), action))
        self.wakeup.set()

    def call_later(self, delay: float, action: Action) -> None:
        self.call_at(self.clock.now() + max(0.0, delay), action)

    def next_due(self) -> float | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def pop_due(self) -> Action | None:
        """The earliest action due now, removed from the queue; None when nothing is due."""
        now = self.clock.now()
        with self._lock:
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)[2]
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)
