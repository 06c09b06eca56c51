"""Waiting for SIGTERM or SIGINT in a command's main thread, safely.

A signal handler runs in the main thread between two bytecodes, possibly while that thread is
inside ``threading.Event.wait`` holding the event's lock; a handler that calls ``Event.set``
then deadlocks the process (seen: ``gitops run`` and ``gitops sim serve`` ignoring SIGTERM).
Here the handler only appends to a list, which takes no lock, and the main thread polls it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StopRequest:
    """Set by SIGTERM or SIGINT; ``wait()`` returns once one arrived."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.signals)

    def wait(self, poll: float = 0.2) -> int:
        while not self.signals:
            time.sleep(poll)  # interrupted by the signal itself; the poll only bounds the wait
        return self.signals[0]


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install lock-free handlers for SIGTERM and SIGINT for the block; restore them after."""
    request = StopRequest()

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        request.signals.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
