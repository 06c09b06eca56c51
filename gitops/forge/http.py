"""The HTTP layer the three forge adapters share: auth, JSON, pages, ETags, retries, rate limits.

Adapter layer; the only module of ``gitops.forge`` that imports ``httpx``. One ``ApiClient`` per
forge; one ``RateLimiter`` per host, shared by every client of that host through a
``Limiters`` registry, because a platform counts its limits per token and host, not per object
of ours. The limiter reads time only through the clock and sleep function it is given, so tests
run in virtual time and assert on the recorded sleeps.

What it must never do: retry a non-idempotent request that may have reached the server (a
POST answered 5xx may have created the comment), send the token to another host than the one
configured (pagination links are checked), or sleep longer than ``max_wait`` in place (a longer
wait becomes ``RateLimited`` and the caller requeues).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from gitops import __version__
from gitops.forge.errors import (
    BadConfig,
    RateLimited,
    Unavailable,
    from_response,
    platform_message,
)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
#: Methods that may be sent again after a 5xx or a timeout: repeating them changes nothing more.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
USER_AGENT = f"gitops/{__version__}"

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# GitHub's guidance for a rate-limit answer that names no wait: "wait for at least one minute".
DEFAULT_PENALTY = 60.0
# A reset header below this is a number of seconds from now (the IETF draft), not an epoch.
_EPOCH_THRESHOLD = 1_000_000_000


class RateLimiter:
    """The request budget of one host: waits imposed by the host, and spacing between writes.

    ``clock`` returns wall-clock epoch seconds (the rate-limit reset headers are epochs);
    ``sleep`` waits. Thread-safe: a slot is reserved under the lock and slept for outside it, so
    two threads writing to one host still end up ``min_write_interval`` apart.
    """

    def __init__(
        self,
        host: str = "",
        *,
        min_write_interval: float = 0.0,
        max_wait: float = 120.0,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.host = host
        self.min_write_interval = min_write_interval
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self._next_write = 0.0

    def acquire(self, *, write: bool) -> None:
        """Wait until a request may be sent; ``RateLimited`` when that is more than ``max_wait``."""
        with self._lock:
            now = self.clock()
            start = max(now, self._blocked_until)
            if write:
                start = max(start, self._next_write)
            wait = start - now
            if wait > self.max_wait:
                raise RateLimited(
                    f"The rate limit of {self.host} allows the next request in {wait:.0f} s.",
                    after=wait,
                )
            if write:
                self._next_write = start + self.min_write_interval
        if wait > 0:
            self.sleep(wait)

    def observe(self, status: int, headers: Mapping[str, str], message: str = "") -> float | None:
        """Learn from an answer's headers; the wait it imposes when it is a rate-limit refusal.

        An exhausted budget (``X-RateLimit-Remaining: 0`` on GitHub, ``RateLimit-Remaining: 0``
        on GitLab) blocks the host until the reset. A 429, or a 403 that names a rate limit
        (GitHub's secondary limits), is a refusal: wait ``Retry-After`` (seconds or an HTTP
        date), else until the reset, else a minute.
        """
        with self._lock:
            now = self.clock()
            reset_at = self._reset_at(headers, now)
            remaining = _first(headers, "x-ratelimit-remaining", "ratelimit-remaining")
            if remaining is not None and remaining.strip() == "0" and reset_at is not None:
                self._blocked_until = max(self._blocked_until, reset_at)
            if not _is_rate_limit_refusal(status, headers, message):
                return None
            retry_after = _retry_after(headers.get("retry-after"), now)
            if retry_after is not None:
                wait = retry_after
            elif reset_at is not None and remaining is not None and remaining.strip() == "0":
                wait = reset_at - now
            else:
                wait = DEFAULT_PENALTY
            wait = max(wait, 0.0)
            self._blocked_until = max(self._blocked_until, now + wait)
            return wait

    @staticmethod
    def _reset_at(headers: Mapping[str, str], now: float) -> float | None:
        raw = _first(headers, "x-ratelimit-reset", "ratelimit-reset")
        try:
            value = float(raw) if raw is not None else None
        except ValueError:
            return None
        if value is None:
            return None
        return value if value >= _EPOCH_THRESHOLD else now + value


def _first(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def _is_rate_limit_refusal(status: int, headers: Mapping[str, str], message: str) -> bool:
    if status == 429:
        return True
    if status != 403:
        return False
    remaining = _first(headers, "x-ratelimit-remaining", "ratelimit-remaining")
    return (
        "retry-after" in headers
        or (remaining is not None and remaining.strip() == "0")
        or "rate limit" in message.lower()
    )


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from ``now``: either delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError, IndexError):
        return None


class Limiters:
    """One ``RateLimiter`` per scheme, host and port; the process uses ``LIMITERS``.

    Tests make their own registry with a fake clock and sleep and pass it to ``connect``.
    """

    def __init__(
        self, *, clock: Clock = time.time, sleep: Sleep = time.sleep, max_wait: float = 120.0
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._by_host: dict[str, RateLimiter] = {}

    def get(self, base_url: str, *, min_write_interval: float = 0.0) -> RateLimiter:
        """The host's limiter; two clients asking for different spacings get the larger one."""
        parts = httpx.URL(base_url)
        key = f"{parts.scheme}://{parts.host}:{parts.port or ''}"
        with self._lock:
            limiter = self._by_host.get(key)
            if limiter is None:
                limiter = RateLimiter(
                    key,
                    min_write_interval=min_write_interval,
                    max_wait=self.max_wait,
                    clock=self.clock,
                    sleep=self.sleep,
                )
                self._by_host[key] = limiter
            limiter.min_write_interval = max(limiter.min_write_interval, min_write_interval)
            return limiter


LIMITERS = Limiters()


@dataclass(frozen=True)
class Page:
    """One answer's JSON, the URL of the next page named by the answer, and its total count.

    ``total`` is Gitea's ``X-Total-Count`` (None when absent): the only way to know that its
    combined commit status has more pages, since Gitea sends no ``Link`` there.
    """

    data: Any
    next_url: str | None
    total: int | None = None


class _ServerError(Exception):
    """A 5xx answer to an idempotent request, raised inside the retry loop only."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class ApiClient:
    """JSON over HTTP to one forge's REST root, e.g. ``https://api.github.com``.

    ``auth`` is the header that carries the token (GitHub ``Authorization: Bearer``, GitLab
    ``PRIVATE-TOKEN``, Gitea ``Authorization: token``). ``page_param`` and ``page_size`` name the
    platform's page-size parameter (``per_page`` 100, Gitea ``limit`` 50).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: tuple[str, str],
        limiter: RateLimiter,
        headers: Mapping[str, str] | None = None,
        page_param: str = "per_page",
        page_size: int = 100,
        retries: int = 3,
        max_rate_limit_retries: int = 3,
        timeout: float = 30.0,
        etag_cache_size: int = 512,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.page_param = page_param
        self.page_size = page_size
        self.retries = retries
        self.max_rate_limit_retries = max_rate_limit_retries
        self._origin = _origin(self.base_url)
        self._etags: OrderedDict[str, tuple[str, Page]] = OrderedDict()
        self._etag_cache_size = etag_cache_size
        self._etag_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                auth[0]: auth[1],
                **(headers or {}),
            },
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # the verbs -------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._get_page(self.url(path, params)).data

    def get_all(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        items: Callable[[Any], list[Any]] | None = None,
    ) -> list[Any]:
        """Every item of a paginated list, following ``Link: rel="next"`` or ``X-Next-Page``.

        An answer that names no next page but counts more items than were read so far in
        ``X-Total-Count`` (Gitea's combined commit status, which sends no ``Link``) is followed
        by asking for the next ``page`` number, as long as pages are not empty. ``items`` picks
        the list out of an object answer (GitHub's combined status).
        """
        url: str | None = self.url(path, {self.page_param: self.page_size, **(params or {})})
        out: list[Any] = []
        seen: set[str] = set()
        previous: list[Any] = []
        while url is not None and url not in seen:
            seen.add(url)
            page = self._get_page(url)
            found = (items(page.data) if items else page.data) or []
            counted = page.next_url is None and page.total is not None
            if counted and found == previous:
                break  # an endpoint that ignores ``page`` answers the same items again
            out.extend(found)
            previous = found
            if counted and found and len(out) < (page.total or 0):
                url = _page_after(url)
            else:
                url = page.next_url
        return out

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._json(self._request("POST", self.url(path), body))

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._json(self._request("PATCH", self.url(path), body))

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._json(self._request("PUT", self.url(path), body))

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The absolute URL of ``path`` under the REST root (its prefix, e.g. ``/api/v3``, kept)."""
        url = httpx.URL(self.base_url + "/" + path.lstrip("/"))
        if params:
            url = url.copy_merge_params({k: str(v) for k, v in params.items()})
        return str(url)

    # the machinery ---------------------------------------------------------------------

    def _get_page(self, url: str) -> Page:
        with self._etag_lock:
            cached = self._etags.get(url)
        headers = {"If-None-Match": cached[0]} if cached else {}
        response = self._request("GET", url, None, headers)
        if response.status_code == 304 and cached:
            # GitHub does not count a 304 against the rate limit: polling with ETags is free.
            return cached[1]
        page = Page(self._json(response), self._next_url(url, response), _total(response))
        etag = response.headers.get("etag")
        if etag:
            with self._etag_lock:
                self._etags[url] = (etag, page)
                self._etags.move_to_end(url)
                while len(self._etags) > self._etag_cache_size:
                    self._etags.popitem(last=False)
        return page

    def _next_url(self, url: str, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if link:
            absolute = str(httpx.URL(url).join(link))
            if _origin(absolute) != self._origin:
                raise Unavailable(
                    f"GET {url}: the next page is on another host ({absolute}); not followed.",
                    method="GET",
                    url=url,
                )
            return absolute
        next_page = response.headers.get("x-next-page", "").strip()
        if next_page:
            return str(httpx.URL(url).copy_set_param("page", next_page))
        return None

    def _request(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send once the limiter allows; wait out short rate limits; raise a typed error on 4xx/5xx."""
        for _ in range(self.max_rate_limit_retries + 1):
            response = self._send_with_retries(method, url, body, headers)
            if response.status_code < 400:
                return response
            payload = _body(response)
            wait = self.limiter.observe(
                response.status_code, response.headers, platform_message(payload)
            )
            if wait is None:
                raise from_response(response.status_code, payload, method=method, url=url)
            if wait > self.limiter.max_wait:
                raise RateLimited(
                    f"{method} {url}: {response.status_code} rate limited for {wait:.0f} s: "
                    f"{platform_message(payload)}",
                    after=wait,
                    status=response.status_code,
                    platform_message=platform_message(payload),
                    method=method,
                    url=url,
                )
        raise RateLimited(
            f"{method} {url}: still rate limited after {self.max_rate_limit_retries} waits.",
            after=DEFAULT_PENALTY,
            status=response.status_code,
            method=method,
            url=url,
        )

    def _send_with_retries(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        idempotent = method in IDEMPOTENT_METHODS

        def retryable(error: BaseException) -> bool:
            # A refused connection never reached the server: safe to resend anything.
            return isinstance(error, httpx.ConnectError) or (
                idempotent and isinstance(error, (_ServerError, httpx.TransportError))
            )

        def attempt() -> httpx.Response:
            self.limiter.acquire(write=method in WRITE_METHODS)
            response = self._http.request(method, url, json=body, headers=headers)
            self.limiter.observe(response.status_code, response.headers)
            if response.status_code >= 500 and idempotent:
                raise _ServerError(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(max(self.retries, 1)),
            wait=wait_exponential(multiplier=0.5, max=8),
            retry=retry_if_exception(retryable),
            sleep=self.limiter.sleep,
            reraise=True,
            before_sleep=_forget,
        )
        try:
            return retrying(attempt)
        except _ServerError as e:
            response = e.response
            raise from_response(
                response.status_code, _body(response), method=method, url=url
            ) from None
        except httpx.TransportError as e:
            raise Unavailable(
                f"{method} {url}: {type(e).__name__}: {e}", method=method, url=url
            ) from e

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as e:
            raise Unavailable(
                f"{response.request.method} {response.request.url}: "
                f"{response.status_code} answered with a body that is not JSON.",
                status=response.status_code,
                method=response.request.method,
                url=str(response.request.url),
            ) from e


def _forget(state: RetryCallState) -> None:
    """Close the failed attempt's response so its connection returns to the pool."""
    outcome = state.outcome
    if outcome is not None and outcome.failed:
        error = outcome.exception()
        if isinstance(error, _ServerError):
            error.response.close()


def _page_after(url: str) -> str:
    """``url`` asking for the page after the one it asks for (``page`` counts from 1)."""
    parsed = httpx.URL(url)
    try:
        current = int(parsed.params.get("page") or 1)
    except ValueError:
        current = 1
    return str(parsed.copy_set_param("page", str(current + 1)))


def _total(response: httpx.Response) -> int | None:
    """``X-Total-Count`` of an answer; None when absent or not a number."""
    raw = response.headers.get("x-total-count", "").strip()
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def read_token(path: str) -> str:
    """The token in ``path``, surrounding whitespace (the trailing newline) stripped."""
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise BadConfig(f"The forge token file {path} cannot be read: {e.strerror}.") from e
    if not token:
        raise BadConfig(f"The forge token file {path} is empty.")
    return token
