"""Push notifications from forges: verify, parse, deduplicate, coalesce.

Shell layer, trigger side of the reconcile cycle (it only wakes the fetch phase; it never
fetches or acts itself). GitHub signs the body with HMAC-SHA256 in ``X-Hub-Signature-256``
(``sha256=<hex>``), Gitea in ``X-Gitea-Signature`` (``<hex>``), GitLab sends the shared secret
itself in ``X-Gitlab-Token``; every comparison is constant-time. A delivery seen before (by its
delivery id) is acknowledged and ignored; any number of verified pushes before the loop wakes
count as one.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass

MAX_BODY = 5 * 1024 * 1024
REMEMBERED_DELIVERIES = 4096


@dataclass(frozen=True)
class Push:
    """A verified push: which forge, which ref, the new tip, and the delivery id."""

    forge: str
    ref: str
    after: str
    delivery: str


class WebhookError(Exception):
    """A request that must be refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower(), "")


def _hmac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Push | None:
    """The push a verified request announces; None for other verified events (e.g. ping).

    Raises WebhookError(401) when the request is not signed with ``secret``, (400) when it is
    not a forge's webhook or its body is not JSON.
    """
    if len(body) > MAX_BODY:
        raise WebhookError(413, "webhook body too large")
    if _header(headers, "X-Hub-Signature-256"):
        forge, event = "github", _header(headers, "X-GitHub-Event")
        given = _header(headers, "X-Hub-Signature-256").removeprefix("sha256=")
        ok = hmac.compare_digest(given, _hmac(secret, body))
        delivery = _header(headers, "X-GitHub-Delivery")
    elif _header(headers, "X-Gitea-Signature"):
        forge, event = "gitea", _header(headers, "X-Gitea-Event")
        ok = hmac.compare_digest(_header(headers, "X-Gitea-Signature"), _hmac(secret, body))
        delivery = _header(headers, "X-Gitea-Delivery")
    elif _header(headers, "X-Gitlab-Token"):
        forge, event = "gitlab", _header(headers, "X-Gitlab-Event")
        ok = hmac.compare_digest(_header(headers, "X-Gitlab-Token").encode(), secret)
        delivery = _header(headers, "X-Gitlab-Event-UUID") or _header(
            headers, "X-Gitlab-Webhook-UUID"
        )
    else:
        raise WebhookError(401, "no webhook signature or token (expected GitHub, GitLab or Gitea)")
    if not ok:
        raise WebhookError(401, f"{forge} webhook signature does not match the shared secret")
    if event.lower() not in ("push", "push hook"):
        return None
    try:
        payload = json.loads(body)
    except ValueError as err:
        raise WebhookError(400, f"{forge} push body is not JSON: {err}") from err
    if not isinstance(payload, dict):
        raise WebhookError(400, f"{forge} push body is not a JSON object")
    return Push(forge, str(payload.get("ref", "")), str(payload.get("after", "")), delivery)


class Trigger:
    """Wakes the reconcile loop once for any number of pushes; ignores repeated deliveries."""

    def __init__(self, branch: str) -> None:
        self.branch = branch
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._pending = threading.Event()
        self._lock = threading.Lock()
        self.received = 0
        self.duplicates = 0

    def offer(self, push: Push) -> bool:
        """Take a verified push; True when it will wake the loop (new delivery, our branch)."""
        with self._lock:
            self.received += 1
            if push.delivery:
                if push.delivery in self._seen:
                    self.duplicates += 1
                    return False
                self._seen[push.delivery] = None
                while len(self._seen) > REMEMBERED_DELIVERIES:
                    self._seen.popitem(last=False)
        if push.ref not in (f"refs/heads/{self.branch}", self.branch):
            return False
        self._pending.set()
        return True

    def poke(self) -> None:
        """Wake the loop without a push (a local repository moved, or the loop must stop)."""
        self._pending.set()

    def wait(self, timeout: float) -> bool:
        """Block until a push arrived or ``timeout`` passed; clears the trigger (coalescing)."""
        fired = self._pending.wait(timeout)
        self._pending.clear()
        return fired
