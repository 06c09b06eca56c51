"""The dashboard's HTTP routes on the controller's server: what they serve, what they refuse."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gitops.cli.run import run
from gitops.controller.command import RunOptions
from gitops.controller.http import ControllerHTTP
from gitops.controller.metrics import Metrics
from gitops.dashboard.board import Board
from gitops.dashboard.view import Inputs


def _server(board: Board | None) -> ControllerHTTP:
    return ControllerHTTP(
        "127.0.0.1",
        0,
        metrics=Metrics(),
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, ""),
        board=board,
    ).start()


@pytest.fixture
def http() -> Iterator[ControllerHTTP]:
    board = Board()
    board.publish(Inputs(now=1_750_000_000.0, fetched="f" * 40))
    server = _server(board)
    yield server
    server.stop()


def fetch(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


@pytest.mark.parametrize(
    ("path", "ctype", "needle"),
    [
        ("/", "text/html", b"<main>"),
        ("/static/app.js", "text/javascript", b"/api/v1/fleet"),
        ("/static/style.css", "text/css", b"@media (max-width"),
        ("/api/v1/fleet", "application/json", b'"schemaVersion":"gitops.dashboard/v1"'),
        ("/api/v1/fleet/timeline.svg", "image/svg+xml", b"<svg"),
    ],
)
def test_the_page_its_files_and_its_data_are_served_with_a_strict_policy(
    http: ControllerHTTP, path: str, ctype: str, needle: bytes
) -> None:
    status, headers, body = fetch(http.address + path)
    assert status == 200 and headers["Content-Type"].startswith(ctype)
    assert needle in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_needs_nothing_from_another_origin(http: ControllerHTTP) -> None:
    for path in ("/", "/static/app.js", "/static/style.css"):
        body = fetch(http.address + path)[2].decode()
        assert "http://" not in body.replace("http://www.w3.org", "")
        assert "https://" not in body and "//cdn" not in body, path


def test_the_json_before_and_after_the_first_pass(http: ControllerHTTP) -> None:
    doc = json.loads(fetch(http.address + "/api/v1/fleet")[2])
    assert doc["status"] == "loading" and doc["fetchedRevision"] == "f" * 40
    assert doc["generation"] == 1
    fresh = _server(Board())
    try:
        empty = json.loads(fetch(fresh.address + "/api/v1/fleet")[2])
        assert (empty["status"], empty["generation"], empty["clusters"]) == ("loading", 0, [])
    finally:
        fresh.stop()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/api/v1/fleet", "/static/app.js"])
def test_nothing_on_the_page_can_change_anything(
    http: ControllerHTTP, method: str, path: str
) -> None:
    status, headers, _ = fetch(http.address + path, method, b"{}")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    ["/static/../../pyproject.toml", "/static/%2e%2e/view.py", "/static/view.py", "/api/v1/other"],
)
def test_only_the_shipped_files_are_served(http: ControllerHTTP, path: str) -> None:
    assert fetch(http.address + path)[0] == 404


def test_without_a_board_the_routes_do_not_exist() -> None:
    server = _server(None)
    try:
        assert fetch(server.address + "/")[0] == 404
        assert fetch(server.address + "/api/v1/fleet")[0] == 404
        assert fetch(server.address + "/healthz")[0] == 200
    finally:
        server.stop()


def test_the_listener_stays_on_the_loopback_by_default() -> None:
    option = next(p for p in run.params if p.name == "http_addr")
    assert option.default == "127.0.0.1:8080"
    assert RunOptions(repo="r").http_addr == "127.0.0.1:8080"  # the options' own default


def test_head_answers_like_get_without_a_body(http: ControllerHTTP) -> None:
    status, headers, body = fetch(http.address + "/api/v1/fleet", "HEAD")
    full = fetch(http.address + "/api/v1/fleet")[2]
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(full)
    assert fetch(http.address + "/nothing", "HEAD")[0] == 404
