"""The client-side token bucket (``gitops.kube.ratelimit``), in virtual time.

Unit tier: the clock and the sleep are injected, so nothing here waits for real; a recorded
sleep advances the fake clock by what it was asked, as a real sleep would.
"""

from __future__ import annotations

import threading

import pytest

from gitops.kube.ratelimit import RateLimit, TokenBucket
from tests.conftest import FakeTime


def test_a_full_bucket_lets_the_burst_through_then_paces_at_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(10.0, 3, clock=t.clock, sleep=t.sleep)
    waits = [bucket.take() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst, at once
    assert waits[3:] == pytest.approx([0.1, 0.1, 0.1])  # then one every 1/qps
    assert t.slept == pytest.approx([0.1, 0.1, 0.1])
    assert t.now == pytest.approx(100.3)


def test_idle_time_refills_the_bucket_but_never_beyond_the_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(2.0, 4, clock=t.clock, sleep=t.sleep)
    for _ in range(4):
        bucket.take()
    assert bucket.tokens == pytest.approx(0.0)
    t.now += 1.0  # two tokens come back
    assert bucket.tokens == pytest.approx(2.0)
    t.now += 3600.0
    assert bucket.tokens == pytest.approx(4.0)
    assert [bucket.take() for _ in range(5)] == pytest.approx([0, 0, 0, 0, 0.5])


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    t = FakeTime()
    bucket = TokenBucket(1.0, 1, clock=t.clock, sleep=t.sleep)
    bucket.take()
    t.now -= 50.0
    assert bucket.tokens == pytest.approx(0.0)
    t.now += 0.5
    assert bucket.tokens == pytest.approx(0.5)


def test_callers_waiting_together_are_spaced_one_token_apart() -> None:
    """Reservations queue: the third caller of an empty bucket waits three intervals, not one."""
    t = FakeTime()
    bucket = TokenBucket(4.0, 1, clock=t.clock, sleep=t.sleep)
    assert bucket.reserve() == 0.0
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.25, 0.5, 0.75])


def test_many_threads_take_exactly_one_token_each() -> None:
    t = FakeTime()  # frozen: no token comes back while they run
    bucket = TokenBucket(1.0, 10_000, clock=t.clock, sleep=t.sleep)
    threads, per_thread = 16, 250
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            bucket.take()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert bucket.tokens == pytest.approx(10_000 - threads * per_thread)
    assert t.slept == []  # all of them fitted in the burst


def test_every_wait_is_reported_with_its_cluster() -> None:
    t = FakeTime()
    heard: list[tuple[str, float]] = []
    rate = RateLimit(
        5.0, 1, on_wait=lambda c, s: heard.append((c, s)), clock=t.clock, sleep=t.sleep
    )
    bucket = rate.bucket("canary-eu-1")
    assert bucket is not None
    bucket.take()
    bucket.take()
    assert heard == [("canary-eu-1", pytest.approx(0.2))]


def test_each_client_gets_a_bucket_of_its_own_and_qps_zero_means_none() -> None:
    t = FakeTime()
    rate = RateLimit(1.0, 1, clock=t.clock, sleep=t.sleep)
    first, second = rate.bucket(""), rate.bucket("c1")
    assert first is not None and second is not None and first is not second
    first.take()
    assert second.take() == 0.0  # the other cluster's bucket is untouched
    assert RateLimit(0.0, 100).bucket("") is None
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0.0, 1)


def test_a_burst_below_one_still_lets_a_request_through() -> None:
    t = FakeTime()
    assert TokenBucket(1.0, 0, clock=t.clock, sleep=t.sleep).take() == 0.0
