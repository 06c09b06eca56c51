"""A 429's ``Retry-After`` read into ``TooManyRequests`` and honoured by reads' retries.

Unit tier: the failures are the client's own ``ApiException``s raised by a local function, and
the retries' sleep is a recorder, so nothing waits.
"""

from __future__ import annotations

import logging
import threading

import pytest
from kubernetes.client.exceptions import ApiException

from gitops.kube import errors
from gitops.kube.cache import WatchCache
from gitops.kube.errors import MAX_RETRY_AFTER, TooManyRequests, Unavailable
from gitops.plan import RetireNode
from gitops.rollout import steps


def throttled(retry_after: str | None) -> ApiException:
    err = ApiException(status=429, reason="Too Many Requests")
    err.headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return err


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0", 0.0), ("3600", MAX_RETRY_AFTER), (None, 1.0), ("soon", 1.0), ("nan", 1.0)],
    ids=["seconds", "zero", "capped", "missing", "not-a-number", "nan"],
)
def test_retry_after_is_read_capped_and_never_fails_the_translation(
    header: str | None, seconds: float
) -> None:
    error = errors.from_api_exception(throttled(header), "listing Nodes")
    assert isinstance(error, TooManyRequests)
    assert error.retry_after == seconds


def test_a_read_waits_at_least_retry_after_before_trying_again() -> None:
    answers: list[Exception | str] = [throttled("2"), throttled("5"), "ok"]
    slept: list[float] = []

    def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert errors.read("listing Nodes", flaky, sleep=slept.append) == "ok"
    assert len(slept) == 2
    assert slept[0] >= 2.0 and slept[1] >= 5.0


def test_other_passing_failures_keep_their_short_jittered_backoff() -> None:
    slept: list[float] = []

    def down(**kwargs: object) -> str:
        raise ApiException(status=503)

    with pytest.raises(Unavailable):
        errors.read_json("listing Nodes", down, sleep=slept.append)
    assert len(slept) == 3
    assert all(0 <= s <= 1.0 for s in slept)  # the backoff's own cap, not a timing bound


def test_a_watch_cache_throttled_on_its_list_waits_the_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The cache's relist backoff is never shorter than what the server asked for."""
    asked = threading.Event()

    def list_nodes(**kwargs: object) -> object:
        asked.set()
        raise throttled("7")

    cache: WatchCache[dict[str, object]] = WatchCache("Nodes", list_nodes)
    with caplog.at_level(logging.INFO, logger="gitops.kube.cache"):
        cache.start()
        assert asked.wait(10)
        deadline = threading.Event()
        for _ in range(200):
            if any("retrying in" in r.getMessage() for r in caplog.records):
                break
            deadline.wait(0.01)
        cache.stop()
        cache.join(5)
    (message,) = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert message.endswith("retrying in 7.0s.")


def test_a_step_failed_by_a_429_carries_its_retry_after() -> None:
    action = RetireNode(cluster="c1", pool="p", reason="outdated", node="n1", machine="m-n1")
    throttled_step = steps.failed(action, errors.from_api_exception(throttled("4"), "cordon"))
    assert throttled_step.retry_after == 4.0 and throttled_step.failure is not None
    assert steps.failed(action, Unavailable("down")).retry_after == 0.0
