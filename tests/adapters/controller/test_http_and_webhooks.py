"""The controller's HTTP endpoints and webhook verification, over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gitops.controller.http import ControllerHTTP
from gitops.controller.metrics import Metrics
from gitops.controller.webhooks import Push, Trigger, WebhookError, verify

SECRET = b"s3cret"
BODY = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()


def github(body: bytes = BODY, secret: bytes = SECRET, delivery: str = "d-1") -> dict[str, str]:
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def gitea(body: bytes = BODY, secret: bytes = SECRET) -> dict[str, str]:
    return {
        "X-Gitea-Event": "push",
        "X-Gitea-Signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
        "X-Gitea-Delivery": "g-1",
    }


def gitlab(token: bytes = SECRET) -> dict[str, str]:
    return {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": token.decode(),
        "X-Gitlab-Event-UUID": "l-1",
    }


@pytest.mark.parametrize(
    ("headers", "forge"), [(github(), "github"), (gitea(), "gitea"), (gitlab(), "gitlab")]
)
def test_each_forge_is_verified(headers: dict[str, str], forge: str) -> None:
    push = verify(headers, BODY, SECRET)
    assert push is not None and (push.forge, push.ref, push.after) == (
        forge,
        "refs/heads/main",
        "a" * 40,
    )


@pytest.mark.parametrize(
    "headers",
    [
        github(secret=b"wrong"),
        gitea(secret=b"wrong"),
        gitlab(token=b"wrong"),
        {"X-GitHub-Event": "push"},
    ],
    ids=["github", "gitea", "gitlab", "unsigned"],
)
def test_bad_signatures_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookError) as caught:
        verify(headers, BODY, SECRET)
    assert caught.value.status == 401


def test_a_tampered_body_is_refused() -> None:
    with pytest.raises(WebhookError):
        verify(github(), BODY.replace(b"main", b"evil"), SECRET)


def test_trigger_dedupes_deliveries_filters_branches_and_coalesces() -> None:
    trigger = Trigger("main")
    assert trigger.offer(Push("github", "refs/heads/main", "a", "d-1"))
    assert not trigger.offer(Push("github", "refs/heads/main", "a", "d-1"))  # redelivered
    assert not trigger.offer(Push("github", "refs/heads/feature", "b", "d-2"))
    assert trigger.offer(Push("github", "refs/heads/main", "c", "d-3"))
    assert trigger.wait(0)  # two pushes, one wake-up
    assert not trigger.wait(0)
    assert (trigger.received, trigger.duplicates) == (4, 1)


@pytest.fixture
def server() -> Iterator[tuple[ControllerHTTP, Trigger]]:
    trigger = Trigger("main")
    state = {"ready": (False, "fleet not loaded yet")}
    http = ControllerHTTP(
        "127.0.0.1",
        0,
        metrics=Metrics(),
        healthy=lambda: (True, "ok"),
        ready=lambda: state["ready"],
        trigger=trigger,
        webhook_secret=SECRET,
    ).start()
    http.state = state  # type: ignore[attr-defined]
    yield http, trigger
    http.stop()


def _request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_health_readiness_and_metrics(server: tuple[ControllerHTTP, Trigger]) -> None:
    http, _ = server
    assert _request(http.address + "/healthz") == (200, "ok\n")
    assert _request(http.address + "/readyz") == (503, "fleet not loaded yet\n")
    http.state["ready"] = (True, "")  # type: ignore[attr-defined]
    assert _request(http.address + "/readyz")[0] == 200
    status, text = _request(http.address + "/metrics")
    assert status == 200 and "gitops_reconcile_duration_seconds" in text


def test_webhook_route_wakes_the_loop_once_per_delivery(
    server: tuple[ControllerHTTP, Trigger],
) -> None:
    http, trigger = server
    assert _request(http.address + "/webhook", BODY, github())[0] == 202
    assert _request(http.address + "/webhook", BODY, github())[0] == 200  # same delivery again
    assert _request(http.address + "/webhook", BODY, github(secret=b"x"))[0] == 401
    assert trigger.wait(0) and not trigger.wait(0)
    metrics = _request(http.address + "/metrics")[1]
    assert 'gitops_webhooks_total{outcome="accepted"} 1.0' in metrics
    assert 'gitops_webhooks_total{outcome="refused"} 1.0' in metrics
