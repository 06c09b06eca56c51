"""Real git servers on loopback for the adapter tests: ``git daemon`` and ``git http-backend``.

The HTTP server is a small threaded ``http.server`` that runs ``git http-backend`` as a CGI
program for each request, checks a token (Basic with the token as password, or Bearer) and logs
every request with the protocol-v2 command it carried, so tests can prove from the server's
side what the client did (e.g. that no fetch happened).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10
) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class GitDaemon:
    """``git daemon`` serving every repository under ``base`` on a free loopback port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GitDaemon:
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--export-all",
                    "--enable=receive-pack",
                    "--reuseaddr",
                    f"--base-path={self.base}",
                    "--listen=127.0.0.1",
                    f"--port={self.port}",
                    str(self.base),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                wait_for_port(self.port, self.proc)
            except RuntimeError:
                self.stop()
                continue
            return self
        raise RuntimeError("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The daemon forks a child per connection; they share its new session (process group).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Request:
    """One request the HTTP server saw."""

    method: str
    path: str
    query: str
    authorization: str | None
    command: str | None  # protocol v2 command (ls-refs, fetch) or the service of a v0 POST
    status: int = 0


@dataclass
class GitHttpServer:
    """``git http-backend`` behind a token check, on a free loopback port."""

    root: Path
    token: str | None = None
    requests: list[Request] = field(default_factory=list)
    error_message: str | None = None  # when set, answer every ref listing with this ERR
    _server: ThreadingHTTPServer | None = None

    def start(self) -> GitHttpServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._serve(self, b"")

            def do_POST(self) -> None:
                owner._serve(self, _read_body(self))

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def commands(self) -> list[str]:
        return [r.command for r in self.requests if r.command]

    def _authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if header is None:
            return False
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return value == self.token
        if scheme == "Basic":
            _, _, password = base64.b64decode(value).decode().partition(":")
            return password == self.token
        return False

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path, _, query = handler.path.partition("?")
        auth = handler.headers.get("Authorization")
        request = Request(
            handler.command, path, query, auth, _command_of(handler, path, query, body)
        )
        self.requests.append(request)
        if not self._authorised(auth):
            request.status = 401
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="fleet"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if self.error_message is not None and path.endswith("/info/refs"):
            service = query.partition("service=")[2]
            text = (
                _pkt(f"# service={service}\n") + b"0000" + _pkt(f"ERR {self.error_message} {auth}")
            )
            request.status = 200
            handler.send_response(200)
            handler.send_header("Content-Type", f"application/x-{service}-advertisement")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            handler.wfile.write(text)
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "fleet-bot",  # lets http-backend accept pushes (receive-pack)
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        request.status = status
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length", "0")))


def _command_of(handler: BaseHTTPRequestHandler, path: str, query: str, body: bytes) -> str | None:
    if handler.command != "POST":
        return None
    if handler.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    if body.startswith(b"00") and len(body) >= 4:  # a pkt-line: 4 hex digits of length
        first = body[4 : int(body[:4], 16)].decode(errors="replace").strip()
        if first.startswith("command="):
            return first.removeprefix("command=")
    return path.rsplit("/", 1)[-1]  # a v0 request: the service itself (git-receive-pack)


def _pkt(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data
