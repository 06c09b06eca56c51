"""The machinery the forge stand-ins share: HTTP server, repositories, auth, pages, ETags.

Tool layer (``gitops.sim.forges``). ``FakeForge`` serves one platform's REST root over real
local HTTP, keeps the repositories in memory and logs every request; a subclass per platform
(``github``, ``gitlab``, ``gitea``) says how it authenticates, pages, refuses and routes. The
neutral records (``FakePull``, ``FakeComment``, ``FakeStatus``) are what tests assert on.

It never reads the network beyond the address it serves on (127.0.0.1 by default).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, and the status it answered."""

    method: str
    path: str  # as sent: percent-encoding kept, query string removed
    query: dict[str, str]
    body: Any  # the parsed JSON body, None when there was none
    headers: dict[str, str]  # names lower-cased
    status: int
    at: float = 0.0  # the fake's clock when it was served


@dataclass
class FakePull:
    """A pull request (merge request), in neutral terms; ``state`` is ``open`` or ``closed``."""

    number: int
    title: str
    body: str
    head_ref: str
    base_ref: str
    head_sha: str
    author: str
    state: str = "open"
    merged: bool = False


@dataclass
class FakeComment:
    id: int
    body: str
    author: str
    system: bool = False  # a GitLab system note ("changed the description")


@dataclass
class FakeStatus:
    """A commit status; ``state`` is in the platform's own words (GitLab ``failed``...)."""

    id: int
    sha: str
    context: str
    state: str
    description: str = ""
    target_url: str = ""
    author: str = ""


@dataclass
class Repo:
    """One repository (a GitLab project): its pull requests, comments, statuses, branches."""

    slug: str
    id: int
    pulls: dict[int, FakePull] = field(default_factory=dict)
    comments: dict[int, list[FakeComment]] = field(default_factory=dict)
    statuses: list[FakeStatus] = field(default_factory=list)  # oldest first
    branches: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    """What a route answers: status, JSON body, headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """Raised by a route to answer an error with the platform's body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeForge


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle each keep-alive answer waits ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``FakeForge.requests``."""


def sha_of(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


class FakeForge:
    """The machinery the three stand-ins share: server, repositories, auth, pages, ETags.

    ``repos`` are created empty; a request for any other repository is a 404. ``prefix`` is
    the path of the REST root on the server (GitHub Enterprise's ``/api/v3``, GitLab's
    ``/api/v4``, Gitea's ``/api/v1``). ``max_page_size`` caps a page as the platform does (tests
    lower it to see several pages). ``rate_limit`` requests per ``rate_limit_window`` seconds of
    ``clock`` are allowed, with the platform's headers; None sends no rate-limit headers.
    """

    kind: ClassVar[str] = ""
    default_prefix: ClassVar[str] = ""
    page_param: ClassVar[str] = "per_page"
    default_page_size: ClassVar[int] = 30
    platform_max_page_size: ClassVar[int] = 100
    #: names of the limit, remaining and reset headers; None when the platform sends none
    rate_headers: ClassVar[tuple[str, str, str] | None] = None
    #: GitHub: "a conditional request does not count against your primary rate limit if a
    #: 304 response is returned"
    free_304: ClassVar[bool] = False

    def __init__(
        self,
        repos: Iterable[str] = ("acme/fleet",),
        *,
        token: str = "fake-token",
        user: str = "gitops-bot",
        prefix: str | None = None,
        max_page_size: int | None = None,
        resolve_sha: Callable[[str, str], str | None] | None = None,
        rate_limit: int | None = None,
        rate_limit_window: float = 3600.0,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.user = user
        self.prefix = (self.default_prefix if prefix is None else prefix).rstrip("/")
        self.max_page_size = max_page_size or self.platform_max_page_size
        self.resolve_sha = resolve_sha
        self.rate_limit = rate_limit
        self.rate_limit_window = rate_limit_window
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self.lock = threading.RLock()
        self._repos: dict[str, Repo] = {}
        self._ids = 0
        self._faults: list[Reply] = []
        self._remaining = rate_limit or 0
        self._reset_at = clock() + rate_limit_window
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for slug in repos:
            self.add_repo(slug)

    # lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a background thread; the REST root URL."""
        if self._server is None:
            server = _Server((self._host, self._port), _Handler)
            server.fake = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},  # stop() waits up to one interval
                name=f"fake-{self.kind}",
                daemon=True,
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    @contextmanager
    def serve(self) -> Iterator[FakeForge]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def __enter__(self) -> FakeForge:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``: the server itself (web pages of PRs are made up under it)."""
        if self._server is None:
            raise RuntimeError(f"The fake {self.kind} server is not started.")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The REST root, the URL a client is configured with."""
        return self.root + self.prefix

    # the test side ---------------------------------------------------------------------

    def add_repo(self, slug: str) -> None:
        with self.lock:
            if slug not in self._repos:
                self._repos[slug] = Repo(slug=slug, id=len(self._repos) + 1)

    def set_branch(self, branch: str, sha: str, *, repo: str | None = None) -> None:
        """Point ``branch`` at ``sha`` (a push); open pull requests from it follow."""
        with self.lock:
            r = self._repo_for_test(repo)
            r.branches[branch] = sha
            for pull in r.pulls.values():
                if pull.head_ref == branch and pull.state == "open":
                    pull.head_sha = sha

    def open_pull(
        self,
        head_ref: str,
        *,
        base_ref: str = "main",
        title: str = "",
        body: str = "",
        author: str = "someone",
        repo: str | None = None,
    ) -> FakePull:
        """A pull request opened by someone else (no request is logged)."""
        with self.lock:
            r = self._repo_for_test(repo)
            return self._new_pull(r, head_ref, base_ref, title or head_ref, body, author)

    def pulls(self, *, repo: str | None = None) -> list[FakePull]:
        with self.lock:
            return sorted(self._repo_for_test(repo).pulls.values(), key=lambda p: p.number)

    def pull(self, number: int, *, repo: str | None = None) -> FakePull:
        with self.lock:
            return self._repo_for_test(repo).pulls[number]

    def merge(self, number: int, *, repo: str | None = None) -> FakePull:
        """Merge an open pull request, as a human pressing the button would."""
        with self.lock:
            pull = self._repo_for_test(repo).pulls[number]
            if pull.state != "open":
                raise ValueError(f"Pull request {number} is {pull.state}; only an open one merges.")
            pull.state, pull.merged = "closed", True
            return pull

    def comments(self, number: int, *, repo: str | None = None) -> list[FakeComment]:
        with self.lock:
            return list(self._repo_for_test(repo).comments.get(number, []))

    def add_comment(
        self,
        number: int,
        body: str,
        *,
        author: str = "someone",
        system: bool = False,
        repo: str | None = None,
    ) -> FakeComment:
        """A comment written by someone else (or a GitLab system note)."""
        with self.lock:
            return self._new_comment(self._repo_for_test(repo), number, body, author, system)

    def statuses(self, sha: str, *, repo: str | None = None) -> list[FakeStatus]:
        """Every status ever set on ``sha``, oldest first (history included)."""
        with self.lock:
            return [s for s in self._repo_for_test(repo).statuses if s.sha == sha]

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with this, whatever they ask (a fault)."""
        with self.lock:
            for _ in range(times):
                self._faults.append(Reply(status, body, dict(headers or {})))

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # shared machinery --------------------------------------------------------------------

    def _repo_for_test(self, slug: str | None) -> Repo:
        if slug is None:
            return next(iter(self._repos.values()))
        return self._repos[slug]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _head_sha(self, repo: Repo, branch: str) -> str:
        if branch in repo.branches:
            return repo.branches[branch]
        resolved = self.resolve_sha(repo.slug, branch) if self.resolve_sha else None
        return resolved or sha_of(repo.slug, branch)

    def _new_pull(
        self, repo: Repo, head: str, base: str, title: str, body: str, author: str
    ) -> FakePull:
        # One numbering for issues and pull requests, as on GitHub and Gitea.
        number = max([0, *repo.pulls]) + 1
        pull = FakePull(number, title, body, head, base, self._head_sha(repo, head), author)
        repo.pulls[number] = pull
        repo.comments[number] = []
        return pull

    def _open_pull_for(self, repo: Repo, head: str, base: str | None) -> FakePull | None:
        for pull in sorted(repo.pulls.values(), key=lambda p: p.number):
            if pull.state == "open" and pull.head_ref == head and base in (None, pull.base_ref):
                return pull
        return None

    def _new_comment(
        self, repo: Repo, number: int, body: str, author: str, system: bool = False
    ) -> FakeComment:
        comment = FakeComment(self._next_id(), body, author, system)
        repo.comments.setdefault(number, []).append(comment)
        return comment

    def _find_comment(self, repo: Repo, comment_id: int) -> tuple[int, FakeComment] | None:
        for number, comments in repo.comments.items():
            for comment in comments:
                if comment.id == comment_id:
                    return number, comment
        return None

    def _latest_statuses(self, repo: Repo, sha: str) -> list[FakeStatus]:
        """The newest status of each context on ``sha``, newest first."""
        latest: dict[str, FakeStatus] = {}
        for status in repo.statuses:
            if status.sha == sha:
                latest[status.context] = status
        return sorted(latest.values(), key=lambda s: -s.id)

    def _page(
        self, items: list[Any], query: Mapping[str, str], path: str, *, link: bool = True
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of ``items`` and the platform's pagination headers (``Link`` unless not
        ``link``: an endpoint that pages without one)."""
        size, page = self._page_numbers(query)
        size = max(1, min(size, self.max_page_size))
        pages = max(1, -(-len(items) // size))
        links = {"first": 1, "last": pages}
        if page > 1:
            links["prev"] = page - 1
        if page < pages:
            links["next"] = page + 1
        headers = {}
        if pages > 1 and link:
            headers["Link"] = ", ".join(
                f'<{self.root}{path}?{urlencode({**query, "page": str(n)})}>; rel="{rel}"'
                for rel, n in links.items()
            )
        headers.update(self._page_headers(page, size, len(items), pages))
        return items[(page - 1) * size : page * size], headers

    def _page_numbers(self, query: Mapping[str, str]) -> tuple[int, int]:
        """The page size and page number asked for; 400 for values that are not numbers."""
        try:
            size = int(query.get(self.page_param) or self.default_page_size)
            page = max(int(query.get("page") or 1), 1)
        except ValueError:
            raise Refusal(400, self._error_body(400, "invalid page parameters")) from None
        return size, page

    def _page_headers(self, page: int, size: int, total: int, pages: int) -> dict[str, str]:
        return {}

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method = handler.command
        with self.lock:
            try:
                body = json.loads(raw) if raw else None
                reply = self._dispatch(method, split.path, query, body, headers)
            except ValueError:
                body, reply = None, Reply(400, self._error_body(400, "Problems parsing JSON"))
            self.requests.append(
                RecordedRequest(
                    method, split.path, query, body, headers, reply.status, self.clock()
                )
            )
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.status != 304:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if reply.status != 304 and payload:
            handler.wfile.write(payload)

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> Reply:
        if self._faults:
            return self._faults.pop(0)
        if not path.startswith(self.prefix + "/"):
            return Reply(404, self._error_body(404, "Not Found"))
        user = self.user if self._authenticated(headers) else None
        if user is None:
            return Reply(401, self._error_body(401, "Bad credentials"))
        limited = self._spend_rate_limit(headers)
        if limited is not None:
            return limited
        parts = [unquote(p) for p in path[len(self.prefix) :].strip("/").split("/")]
        try:
            reply = self._route(method, parts, query, body if body is not None else {}, user, path)
        except Refusal as e:
            reply = Reply(e.status, e.body)
        if method == "GET" and reply.status == 200:
            etag = '"' + sha_of(json.dumps(reply.body), reply.headers.get("Link", "")) + '"'
            reply.headers["ETag"] = etag
            if headers.get("if-none-match") == etag:
                reply = Reply(304, None, {"ETag": etag})
        self._rate_limit_headers(reply)
        return reply

    def _spend_rate_limit(self, headers: Mapping[str, str]) -> Reply | None:
        if self.rate_limit is None or self.rate_headers is None:
            return None
        now = self.clock()
        if now >= self._reset_at:
            self._remaining = self.rate_limit
            self._reset_at = now + self.rate_limit_window
        if self._remaining <= 0:
            reply = self._rate_limited(self._reset_at - now)
            self._rate_limit_headers(reply)
            return reply
        self._remaining -= 1  # a free 304 is known only later: refunded then
        return None

    def _rate_limit_headers(self, reply: Reply) -> None:
        if self.rate_limit is None or self.rate_headers is None:
            return
        if reply.status == 304 and self.free_304:
            self._remaining += 1
        limit, remaining, reset = self.rate_headers
        reply.headers.setdefault(limit, str(self.rate_limit))
        reply.headers.setdefault(remaining, str(max(self._remaining, 0)))
        reply.headers.setdefault(reset, str(int(self._reset_at)))

    # what each platform defines ----------------------------------------------------------

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def _rate_limited(self, wait: float) -> Reply:
        return Reply(429, self._error_body(429, "rate limited"), {"Retry-After": str(int(wait))})

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        user: str,
        path: str,
    ) -> Reply:
        raise NotImplementedError

    def _not_found(self) -> Refusal:
        return Refusal(404, self._error_body(404, "Not Found"))

    def _repo(self, slug: str) -> Repo:
        repo = self._repos.get(slug)
        if repo is None:
            raise self._not_found()
        return repo

    def _number(self, value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise self._not_found() from None

    def _pull_or_404(self, repo: Repo, value: str) -> FakePull:
        pull = repo.pulls.get(self._number(value))
        if pull is None:
            raise self._not_found()
        return pull

    def _add_status(
        self, repo: Repo, sha: str, context: str, state: str, body: Any, user: str
    ) -> FakeStatus:
        """Record a status the request was allowed to set (every check has passed)."""
        status = FakeStatus(
            self._next_id(),
            sha,
            context,
            state,
            self._field(body, "description"),
            self._field(body, "target_url"),
            user,
        )
        repo.statuses.append(status)
        return status

    @staticmethod
    def _field(body: Any, name: str) -> str:
        value = body.get(name) if isinstance(body, dict) else None
        return value if isinstance(value, str) else ""
