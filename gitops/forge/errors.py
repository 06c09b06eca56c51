"""The forge adapters' typed errors, each carrying the platform's own message.

Adapter layer. ``gitops.forge.http`` maps every failed request to exactly one of these, once
(``from_response``); nothing above the adapters sees an ``httpx`` exception.

    GitopsError
     └── ForgeError           status (0: no answer), platform message, method and URL
          ├── BadConfig          (Stalled)    an unknown kind, an empty token file, a bad slug
          ├── Unauthorized       (Stalled)    401: the token is missing, wrong or expired
          ├── Forbidden          (Stalled)    403 that is not a rate limit: the token lacks a scope
          ├── NotFound           (Stalled)    404: no such repository, pull request or comment
          ├── Invalid            (Stalled)    another 4xx: 400, 405, 409, 422 validation failures
          │    └── AlreadyExists               409/422 "already exists" (an open PR for the branch)
          ├── RateLimited        (Waiting)    429/403 rate limits longer than the client will wait
          └── Unavailable        (Transient)  5xx, a timeout, a dropped connection, or a 409
                                              "another update ... is in progress" (GitLab
                                              holds a lock on the commit while it writes)
"""

from __future__ import annotations

from typing import Any

from gitops.errors import GitopsError, Stalled, Transient, Waiting


class ForgeError(GitopsError):
    """A forge request failed; ``status`` is the HTTP status, 0 when no answer came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        platform_message: str = "",
        method: str = "",
        url: str = "",
    ) -> None:
        # Not super(): the next class in a subclass's MRO may be Waiting, which wants ``after``.
        GitopsError.__init__(self, message)
        self.status = status
        self.platform_message = platform_message
        self.method = method
        self.url = url


class BadConfig(ForgeError, Stalled):
    """The forge cannot be used as configured; nothing was sent."""


class Unauthorized(ForgeError, Stalled):
    """401: the token was refused."""


class Forbidden(ForgeError, Stalled):
    """403 that is not a rate limit: the token lacks a permission."""


class NotFound(ForgeError, Stalled):
    """404: the repository, pull request or comment does not exist (or the token cannot see it)."""


class Invalid(ForgeError, Stalled):
    """Another 4xx: the request itself is wrong; resending it will not help."""


class AlreadyExists(Invalid):
    """An open pull request (merge request) already exists for the head branch.

    GitHub answers 422 "A pull request already exists for owner:branch.", GitLab 409 "Another
    open merge request already exists for this source branch: !N", Gitea and Forgejo 409 "pull
    request already exists for these targets [...]".
    """


class RateLimited(ForgeError, Waiting):
    """The host asked us to wait ``after`` seconds, longer than the client waits in place."""

    def __init__(self, message: str, *, after: float, **kwargs: Any) -> None:
        ForgeError.__init__(self, message, **kwargs)
        self.after = after


class Unavailable(ForgeError, Transient):
    """5xx, a timeout, a dropped connection or a write refused while another is in progress."""


def platform_message(body: Any) -> str:
    """The human-readable message of an error body, in any of the three platforms' shapes.

    GitHub: ``{"message": "Validation Failed", "errors": [{"message": "..."}]}``; GitLab:
    ``{"message": "404 Not found"}``, ``{"message": ["..."]}``, ``{"message": {"field": ["..."]}}``
    or ``{"error": "invalid_token", "error_description": "..."}``; Gitea: ``{"message": "..."}``.
    """
    if isinstance(body, str):
        return body.strip()[:500]
    if not isinstance(body, dict):
        return ""
    parts = [_flatten(body.get("message"))]
    errors = body.get("errors")
    if isinstance(errors, list):
        parts += [_flatten(e.get("message") if isinstance(e, dict) else e) for e in errors]
    if body.get("error"):
        parts.append(_flatten(body.get("error_description") or body.get("error")))
    return ": ".join(p for p in parts if p)


def _flatten(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value if v is not None)
    if isinstance(value, dict):
        return "; ".join(f"{k} {_flatten(v)}" for k, v in sorted(value.items()))
    return str(value)


def from_response(status: int, body: Any, *, method: str, url: str) -> ForgeError:
    """The typed error for a 4xx/5xx answer (rate limits are decided before, by the limiter)."""
    message = platform_message(body)
    text = f"{method} {url}: {status}" + (f" {message}" if message else "")
    cls: type[ForgeError]
    if status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = Forbidden
    elif status == 404:
        cls = NotFound
    elif status in (409, 422) and "already exist" in message.lower():
        cls = AlreadyExists
    elif status == 409 and "in progress" in message.lower():
        # Nothing was written and the same request succeeds once the other write is done.
        cls = Unavailable
    elif 400 <= status < 500:
        cls = Invalid
    else:
        cls = Unavailable
    return cls(text, status=status, platform_message=message, method=method, url=url)
