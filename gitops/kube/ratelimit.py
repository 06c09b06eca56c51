"""A client-side rate limit per API server: a token bucket every request passes through.

Adapter layer (``gitops.kube``). ``gitops.kube.client`` gives each client it makes (the
management cluster's, and each workload cluster's from ``connect_workload``) a bucket of its
own, and hooks it in front of the ``kubernetes`` client's REST layer, so every request (a watch
once, when it opens) takes one token before it is sent. As client-go's default limiter does, a
full bucket lets ``burst`` requests through at once, then ``qps`` a second: a relist storm or a
wide wave of replacements then queues here instead of pressing the API server into 429s.

The bucket never reads the clock or sleeps by itself: both are injected, so its tests run in
virtual time. It is shared by every watch thread and executor worker using the client: a lock
guards the count, and a caller waits outside it. A request reserves its token first (the count
may go below zero), so concurrent callers are served in the order they asked and none waits
longer than the tokens ahead of it need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: ``gitops run``'s defaults (``--qps``/``--burst``), as client-go's 5/10 scaled for a controller
#: of many clusters: about 10 times what one client-go informer set asks of a server.
DEFAULT_QPS = 50.0
DEFAULT_BURST = 100


class TokenBucket:
    """``burst`` tokens at most, refilled at ``qps`` a second; ``take`` waits for one."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        if qps <= 0:
            raise ValueError(f"a token bucket needs a positive rate, not {qps:g} per second")
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._tokens = float(self.burst)  # a fresh client may send its first burst at once
        self._last = clock()

    @property
    def tokens(self) -> float:
        """Tokens left now (below zero while callers wait for tokens they reserved)."""
        with self._lock:
            self._refill()
            return self._tokens

    def reserve(self) -> float:
        """Take one token now, answering how many seconds the caller must wait before it is
        its own (0 when one was there)."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def take(self) -> float:
        """Wait for one token (through the injected sleep); answer the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
            self._on_wait(wait)
        return wait

    def _refill(self) -> None:
        now = self._clock()
        # A clock that steps back (a test's, or a wrong one) adds nothing rather than taking.
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.qps)
        self._last = now


@dataclass(frozen=True)
class RateLimit:
    """The settings every client of one process is limited by (each client its own bucket).

    ``qps`` 0 means no limit. ``on_wait(cluster, seconds)`` hears every wait (the metrics);
    ``clock`` and ``sleep`` are injected for tests.
    """

    qps: float = DEFAULT_QPS
    burst: int = DEFAULT_BURST
    on_wait: Callable[[str, float], None] = field(default=lambda cluster, seconds: None)
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def bucket(self, cluster: str) -> TokenBucket | None:
        """A new bucket for the client of ``cluster`` ("" the management cluster), or None
        without a limit."""
        if self.qps <= 0:
            return None
        return TokenBucket(
            self.qps,
            self.burst,
            clock=self.clock,
            sleep=self.sleep,
            on_wait=lambda seconds: self.on_wait(cluster, seconds),
        )
