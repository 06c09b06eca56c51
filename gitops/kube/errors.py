"""Translation of Kubernetes client failures into the project's typed errors.

Adapter layer. Every call into ``kubernetes`` goes through ``translate`` so that callers see
``KubeError`` subclasses (themselves ``Stalled`` or ``Transient``) carrying the API server's
own message, and never an ``ApiException`` or a urllib3 error.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import tenacity
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from gitops.errors import GitopsError, Stalled, Transient

T = TypeVar("T")


class KubeError(GitopsError):
    """A Kubernetes API request failed; ``code`` is the HTTP status (0 when none came back)."""

    code = 0

    def __init__(
        self, message: str, *, reason: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details or {}


class NotFound(KubeError, Stalled):
    code = 404


class Forbidden(KubeError, Stalled):
    code = 403


class Invalid(KubeError, Stalled):
    code = 422


class Conflict(KubeError, Transient):
    """409: stale resourceVersion or the object already exists; re-read and retry."""

    code = 409


class Gone(KubeError, Transient):
    """410: a watch resumed from a resourceVersion the server no longer keeps; relist."""

    code = 410


class TooManyRequests(KubeError, Transient):
    """429: throttled, or an eviction refused by a PodDisruptionBudget (``details`` names it).

    ``retry_after``: the seconds the server asked us to wait (its ``Retry-After``, capped at
    ``MAX_RETRY_AFTER``; 1 when it named none). Reads wait at least that long before retrying.
    """

    code = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(KubeError, Transient):
    """5xx, a timeout or a dropped connection."""


class Unreachable(Unavailable):
    """No answer at all from an API server: refused, timed out, no route (the URL is named)."""


class BadRequest(KubeError, Stalled):
    """Another 4xx (400 a bad selector, 405, 415 ...): the request itself is wrong; not retried."""


class BadConfig(KubeError, Stalled):
    """The kubeconfig or in-cluster configuration cannot be used."""


#: A server's Retry-After is honoured up to this many seconds: a longer (or absurd) one would
#: hold a read, and the worker or watch thread making it, for longer than a pass of the loop.
MAX_RETRY_AFTER = 30.0


def retry_after_seconds(value: object) -> float:
    """The seconds a ``Retry-After`` header asks for, within [0, ``MAX_RETRY_AFTER``]; 1 when
    it is missing or not a number of seconds (the API server sends whole seconds; an HTTP date
    is read as "soon" rather than failing the request)."""
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return 1.0
    if math.isnan(seconds):
        return 1.0
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def retry_after_of(error: BaseException | None) -> float:
    """The least wait before asking again that ``error`` carries: a 429's ``Retry-After``,
    else 0. Every backoff that may follow a 429 (reads, the caches' relists, the executor's
    steps) waits at least this long."""
    return error.retry_after if isinstance(error, TooManyRequests) else 0.0


_BY_CODE: dict[int, type[KubeError]] = {
    404: NotFound,
    403: Forbidden,
    401: Forbidden,
    422: Invalid,
    409: Conflict,
    410: Gone,
    429: TooManyRequests,
}


def from_api_exception(err: ApiException, what: str) -> KubeError:
    """The typed error for an ApiException, with the server's Status message."""
    status = int(err.status or 0)
    reason, message, details = str(err.reason or ""), "", None
    try:
        body = json.loads(err.body) if err.body else {}
        message = body.get("message", "")
        reason = body.get("reason", reason)
        details = body.get("details")
    except (ValueError, TypeError, AttributeError):
        message = str(err.body or "")[:200]
    text = f"{what}: {status} {reason}: {message}".rstrip(": ")
    # Only 5xx and no answer at all are passing faults; any other 4xx is a wrong request.
    cls = _BY_CODE.get(status) or (BadRequest if 400 <= status < 500 else Unavailable)
    if cls is TooManyRequests:
        headers = err.headers or {}
        retry_after = retry_after_seconds(headers.get("Retry-After", 1))
        return TooManyRequests(text, retry_after=retry_after, reason=reason, details=details)
    error = cls(text, reason=reason, details=details)
    if cls is Unavailable or cls is BadRequest:
        error.code = status
    return error


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Run a block of client calls, re-raising their failures as typed errors about ``what``."""
    try:
        yield
    except ApiException as err:
        raise from_api_exception(err, what) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise Unavailable(f"{what}: {err.__class__.__name__}: {err}") from err
    except ConfigException as err:
        raise BadConfig(f"{what}: {err}") from err


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with failures translated."""
    with translate(what):
        return fn(*args, **kwargs)


def write(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Like ``call``, for a request whose answer is not needed: the body is read raw and
    dropped rather than turned into the client's models (for a Node that costs about a
    millisecond of CPU, on every cordon and annotation of a rollout)."""
    with translate(what):
        response = fn(*args, _preload_content=False, **kwargs)
        response.drain_conn()  # read and drop the body: the connection goes back to the pool


def call_json(what: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Like ``call``, answering the response's JSON body as plain dicts rather than the
    client's models (they cost far more to build, and the adapters translate from dicts)."""
    with translate(what):
        response: Any = fn(*args, _preload_content=False, **kwargs)
        body: dict[str, Any] = json.loads(response.data)
        return body


def read(
    what: str,
    fn: Callable[..., T],
    *args: Any,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> T:
    """Like ``call``, for a read: a passing failure (5xx, 429, a dropped connection) is retried
    a few times with jittered backoff before it is raised; after a 429, no sooner than its
    ``Retry-After``. Writes are not retried here: their callers decide, because a write that
    timed out may have happened. ``sleep`` is injected for tests."""
    result: T = _retrying(sleep)(call, what, fn, *args, **kwargs)
    return result


def read_json(
    what: str,
    fn: Callable[..., object],
    *args: Any,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> dict[str, Any]:
    """``call_json`` retried as ``read`` retries."""
    body: dict[str, Any] = _retrying(sleep)(call_json, what, fn, *args, **kwargs)
    return body


_BACKOFF = tenacity.wait_exponential_jitter(multiplier=0.05, max=1.0)


def _wait(state: tenacity.RetryCallState) -> float:
    """The jittered backoff, or the server's Retry-After when a 429 asked for longer."""
    error = state.outcome.exception() if state.outcome is not None else None
    return max(float(_BACKOFF(state)), retry_after_of(error))


def _retrying(sleep: Callable[[float], None]) -> tenacity.Retrying:
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((Unavailable, TooManyRequests)),
        wait=_wait,
        stop=tenacity.stop_after_attempt(4),
        sleep=sleep,
        reraise=True,
    )
