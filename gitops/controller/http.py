"""The controller's HTTP endpoints: /healthz, /readyz, /metrics, the webhook and the dashboard.

Shell layer. Answers at once and never does reconcile work on a request thread: a webhook
only wakes the loop through ``Trigger``, and the dashboard (``/``, ``/static/*``,
``/api/v1/fleet``, ``/api/v1/fleet/timeline.svg``) serves what the loop published after its
last pass (``gitops.dashboard.board``). Health says the process loop is alive; readiness says
it has a valid fleet revision and synced caches (and why not, when not).

The dashboard is read-only: its routes answer GET and HEAD only (405 otherwise), with a
Content-Security-Policy that allows nothing but this origin's own files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gitops.controller.metrics import Metrics
from gitops.controller.webhooks import MAX_BODY, Trigger, WebhookError, verify
from gitops.dashboard import assets
from gitops.dashboard.board import Board

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]

PAGE_HEADERS = {
    # Only this origin's own files, no inline script or style, no framing: a value that
    # slipped through as markup still could not run.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ControllerHTTP:
    """Serves the endpoints on ``host:port`` (port 0 picks a free one) in a thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: Metrics,
        healthy: Check,
        ready: Check,
        trigger: Trigger | None = None,
        webhook_secret: bytes | None = None,
        board: Board | None = None,
    ) -> None:
        self.metrics = metrics
        self.board = board
        self.healthy = healthy
        self.ready = ready
        self.trigger = trigger
        self.webhook_secret = webhook_secret
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                page = owner.page(path)
                if page is not None:
                    self._send(200, page[0], page[1], PAGE_HEADERS)
                elif path == "/metrics":
                    self._send(200, generate_latest(owner.metrics.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    ok, why = (owner.healthy if path == "/healthz" else owner.ready)()
                    self._send(200 if ok else 503, (why or "ok").encode() + b"\n")
                else:
                    self._send(404, b"not found\n")

            def do_HEAD(self) -> None:
                page = owner.page(self.path.split("?", 1)[0])
                if page is None:
                    self._send(404, b"", head=True)
                else:
                    self._send(200, page[0], page[1], PAGE_HEADERS, head=True)

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                if path != "/webhook":
                    self._refuse(path)
                    return
                status, text = owner.webhook(dict(self.headers.items()), self._body())
                self._send(status, text.encode() + b"\n")

            def do_PUT(self) -> None:
                self._refuse(self.path.split("?", 1)[0])

            def do_PATCH(self) -> None:
                self._refuse(self.path.split("?", 1)[0])

            def do_DELETE(self) -> None:
                self._refuse(self.path.split("?", 1)[0])

            def _refuse(self, path: str) -> None:
                self._body()  # read what was sent, so the connection stays usable
                if owner.page(path) is None:
                    self._send(404, b"not found\n")
                else:
                    self._send(405, b"the dashboard is read-only\n", headers={"Allow": "GET, HEAD"})

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(min(length, MAX_BODY + 1)) if length > 0 else b""

            def _send(
                self,
                status: int,
                body: bytes,
                ctype: str = "text/plain; charset=utf-8",
                headers: dict[str, str] | None = None,
                head: bool = False,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def page(self, path: str) -> tuple[bytes, str] | None:
        """The dashboard's answer to GET ``path`` (None: not a dashboard route, or no board)."""
        board = self.board
        if board is None:
            return None
        if path in ("/", "/index.html"):
            return assets.read("index.html")
        if path == "/api/v1/fleet":
            return board.fleet_json(), "application/json; charset=utf-8"
        if path == "/api/v1/fleet/timeline.svg":
            return board.timeline_svg(), "image/svg+xml; charset=utf-8"
        if path.startswith("/static/"):
            return assets.read(path.removeprefix("/static/"))
        return None

    def webhook(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """Verify and hand a push to the trigger; (status, message) to answer with."""
        if self.trigger is None or self.webhook_secret is None:
            self.metrics.webhooks.labels("disabled").inc()
            return 404, "webhooks are not enabled (no --webhook-secret-file)"
        try:
            push = verify(headers, body, self.webhook_secret)
        except WebhookError as err:
            self.metrics.webhooks.labels("refused").inc()
            log.warning("Refused a webhook request: %s", err)
            return err.status, str(err)
        if push is None:
            self.metrics.webhooks.labels("ignored").inc()
            return 200, "ignored: not a push event"
        woke = self.trigger.offer(push)
        self.metrics.webhooks.labels("accepted" if woke else "ignored").inc()
        return (
            (202, f"accepted {push.after[:12]}")
            if woke
            else (200, "ignored: duplicate or other branch")
        )

    def start(self) -> ControllerHTTP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
