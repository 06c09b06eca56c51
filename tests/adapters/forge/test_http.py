"""The shared HTTP layer: rate limits honoured in virtual time, retries, typed errors.

Adapter tier: the stand-in servers answer with real rate-limit headers and injected faults;
the limiters sleep on a ``FakeClock``, so the tests assert on the recorded sleeps.
"""

from __future__ import annotations

import email.utils
import itertools
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.errors import Waiting
from gitops.forge import (
    Forbidden,
    Forge,
    GitHub,
    Limiters,
    RateLimited,
    RateLimiter,
    Unavailable,
    connect,
)
from gitops.sim.forges import FakeForge, FakeGitHub

from .conftest import SLUG, TOKEN, FakeClock, last

Make = Callable[..., tuple[FakeForge, Forge]]


def test_writes_on_github_are_spaced_one_second_apart(make_forge: Make, clock: FakeClock) -> None:
    fake, forge = make_forge("github")
    fake.open_pull("a")
    for i in range(3):
        forge.create_comment(1, f"c{i}")
    forge.pull_requests()  # a read is not spaced
    assert clock.sleeps == [1.0, 1.0]
    posts = [r.at for r in fake.requests if r.method == "POST"]
    assert [b - a for a, b in itertools.pairwise(posts)] == [1.0, 1.0]


@pytest.mark.parametrize("kind", ["gitlab", "gitea"])
def test_writes_elsewhere_are_not_spaced(kind: str, make_forge: Make, clock: FakeClock) -> None:
    fake, forge = make_forge(kind)
    fake.open_pull("a")
    for i in range(3):
        forge.create_comment(1, f"c{i}")
    assert clock.sleeps == []


def test_one_limiter_per_host_is_shared_by_two_clients(
    limiters: Limiters, token_file: Path, clock: FakeClock
) -> None:
    with FakeGitHub([SLUG, "acme/other"], token=TOKEN, clock=clock) as fake:
        one = connect("github", fake.url, str(token_file), SLUG, limiters=limiters)
        two = connect("github", fake.url, str(token_file), "acme/other", limiters=limiters)
        assert isinstance(one, GitHub) and isinstance(two, GitHub)
        assert one.client.limiter is two.client.limiter
        fake.open_pull("a", repo=SLUG)
        fake.open_pull("a", repo="acme/other")
        one.create_comment(1, "x")
        two.create_comment(1, "y")  # another client, same host: still a second later
        one.close()
        two.close()
    assert clock.sleeps == [1.0]
    other = Limiters(clock=clock, sleep=clock.sleep)
    assert other.get("https://a.example") is not other.get("https://b.example")
    assert other.get("https://a.example/x") is other.get("https://a.example/api/v3")


def test_retry_after_seconds_is_waited_then_the_request_is_resent(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("gitlab")
    fake.fail_next(429, {"message": "Retry later"}, {"Retry-After": "7"})
    assert forge.pull_requests() == []
    assert clock.sleeps == [7.0]
    assert [r.status for r in fake.requests] == [429, 200]
    assert fake.requests[1].at - fake.requests[0].at == 7.0


def test_retry_after_http_date_is_waited(make_forge: Make, clock: FakeClock) -> None:
    fake, forge = make_forge("gitea")
    when = email.utils.formatdate(clock.now + 12, usegmt=True)
    fake.fail_next(429, {"message": "slow down"}, {"Retry-After": when})
    forge.pull_requests()
    assert clock.sleeps == [12.0]


def test_github_secondary_limit_403_with_retry_after(make_forge: Make, clock: FakeClock) -> None:
    fake, forge = make_forge("github")
    fake.fail_next(
        403,
        {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
        {"retry-after": "30"},
    )
    forge.pull_requests()
    assert clock.sleeps == [30.0]


def test_github_primary_limit_waits_until_x_ratelimit_reset(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("github", rate_limit=2, rate_limit_window=40)
    forge.pull_requests()
    forge.pull_requests()  # answered with x-ratelimit-remaining: 0, reset in 40 s
    assert last(fake).headers.get("if-none-match")  # a 304 costs nothing, so the budget...
    assert fake.requests[-1].status == 304
    fake.open_pull("a")  # ...is spent by changing the answer
    forge.pull_requests()
    assert clock.sleeps == []
    forge.pull_requests()
    assert clock.sleeps == [40.0]  # waited until the reset instead of being refused
    assert all(r.status in (200, 304) for r in fake.requests)


def test_gitlab_ratelimit_remaining_zero_waits_until_reset(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("gitlab", rate_limit=1, rate_limit_window=25)
    forge.pull_requests()
    assert last(fake).status == 200
    forge.pull_requests()
    assert clock.sleeps == [25.0]
    assert [r.status for r in fake.requests] == [200, 304]


def test_github_refusal_without_retry_after_waits_until_reset(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("github")
    reset = int(clock.now) + 15
    fake.fail_next(
        403,
        {"message": "API rate limit exceeded for user ID 1."},
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    forge.pull_requests()
    assert clock.sleeps == [15.0]


def test_a_wait_longer_than_max_wait_is_rate_limited_for_the_caller(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("github")
    fake.fail_next(429, {"message": "too many"}, {"Retry-After": "3600"})
    with pytest.raises(RateLimited) as e:
        forge.pull_requests()
    assert e.value.after == 3600.0 and isinstance(e.value, Waiting)
    assert "too many" in str(e.value)
    assert clock.sleeps == []
    # The host stays blocked: the next call does not even send a request.
    sent = len(fake.requests)
    with pytest.raises(RateLimited):
        forge.pull_requests()
    assert len(fake.requests) == sent


def test_plain_403_is_forbidden_not_a_rate_limit(make_forge: Make, clock: FakeClock) -> None:
    fake, forge = make_forge("github")
    fake.fail_next(403, {"message": "Resource not accessible by integration"})
    with pytest.raises(Forbidden, match="Resource not accessible by integration"):
        forge.pull_requests()
    assert clock.sleeps == []


def test_server_errors_on_reads_are_retried_with_backoff(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("gitea")
    fake.fail_next(503, {"message": "maintenance"}, times=2)
    assert forge.pull_requests() == []
    assert [r.status for r in fake.requests] == [503, 503, 200]
    assert len(clock.sleeps) == 2 and all(s > 0 for s in clock.sleeps)


def test_server_errors_on_reads_end_as_unavailable_after_bounded_retries(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("github")
    fake.fail_next(500, {"message": "boom"}, times=10)
    with pytest.raises(Unavailable, match="boom") as e:
        forge.pull_requests()
    assert e.value.status == 500
    assert len(fake.requests) == 3


def test_a_dead_port_is_unavailable(limiters: Limiters, token_file: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forge = connect("github", f"http://127.0.0.1:{port}", str(token_file), SLUG, limiters=limiters)
    with pytest.raises(Unavailable) as e:
        forge.pull_requests()
    assert e.value.status == 0 and "ConnectError" in str(e.value)
    forge.close()


def test_a_next_link_to_another_host_is_not_followed(make_forge: Make) -> None:
    fake, forge = make_forge("github", max_page_size=1)
    fake.open_pull("a")
    fake.open_pull("b")
    original = fake._page

    def elsewhere(*args: object, **kwargs: object) -> tuple[list[object], dict[str, str]]:
        items, headers = original(*args, **kwargs)  # type: ignore[arg-type]
        headers["Link"] = '<https://evil.example/repos/acme/fleet/pulls?page=2>; rel="next"'
        return items, headers

    fake._page = elsewhere  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="another host"):
        forge.pull_requests()


def test_limiter_alone_spaces_concurrent_reservations() -> None:
    clock = FakeClock()
    limiter = RateLimiter("h", min_write_interval=2.0, clock=clock, sleep=clock.sleep)
    limiter.acquire(write=True)
    limiter.acquire(write=False)
    limiter.acquire(write=True)
    assert clock.sleeps == [2.0]
    assert limiter.observe(200, {"ratelimit-remaining": "0", "ratelimit-reset": "5"}) is None
    limiter.acquire(write=False)  # a small reset value is seconds from now, not an epoch
    assert clock.sleeps == [2.0, 5.0]


def test_client_sends_json_and_user_agent(make_forge: Make) -> None:
    fake, forge = make_forge("gitea")
    fake.open_pull("a")
    forge.create_comment(1, "x")
    headers = last(fake).headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("gitops/")
