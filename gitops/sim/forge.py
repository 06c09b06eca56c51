"""Stand-ins for the forges' pull-request APIs: GitHub, GitLab and Gitea over real local HTTP.

A tool of the simulator (design section 6): the demo shows plan comments and drift pull
requests with no network, and the forge adapters are tested against these servers rather than
against mocks. Each class serves the subset of its platform's documented REST API that
``gitops.forge`` uses, with the platform's own paths, JSON shapes, status codes and error
bodies: pagination (``Link``, GitLab's ``X-Next-Page``, and Gitea's ``X-Total-Count`` alone
where Gitea sends no ``Link``), ETags and 304s, token checks (401), the "already exists"
refusal, length limits, rate-limit headers. Where the real platform would answer differently,
the stand-in is wrong; it is never laxer than the platform.

In-process::

    with FakeGitHub(repos=("acme/fleet",), token="t0ken") as gh:
        gh.url                       # the REST root to give the client
        gh.pulls(), gh.comments(1), gh.statuses(sha)   # in-memory state, for assertions
        gh.merge(1)                  # what a human pressing "Merge" does
        gh.requests                  # every request: method, raw path, query, JSON, headers

It holds no git: a pull request's head sha comes from ``set_branch``, from ``resolve_sha``,
or is derived from the branch name. It never reads the network beyond 127.0.0.1.
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

__all__ = [
    "FakeComment",
    "FakeForge",
    "FakeGitHub",
    "FakeGitLab",
    "FakeGitea",
    "FakePull",
    "FakeStatus",
    "RecordedRequest",
]


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
class _Repo:
    slug: str
    id: int
    pulls: dict[int, FakePull] = field(default_factory=dict)
    comments: dict[int, list[FakeComment]] = field(default_factory=dict)
    statuses: list[FakeStatus] = field(default_factory=list)  # oldest first
    branches: dict[str, str] = field(default_factory=dict)


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Refusal(Exception):
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


def _sha_of(*parts: str) -> str:
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
        self._repos: dict[str, _Repo] = {}
        self._ids = 0
        self._faults: list[_Reply] = []
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
                self._repos[slug] = _Repo(slug=slug, id=len(self._repos) + 1)

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
                self._faults.append(_Reply(status, body, dict(headers or {})))

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # shared machinery --------------------------------------------------------------------

    def _repo_for_test(self, slug: str | None) -> _Repo:
        if slug is None:
            return next(iter(self._repos.values()))
        return self._repos[slug]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _head_sha(self, repo: _Repo, branch: str) -> str:
        if branch in repo.branches:
            return repo.branches[branch]
        resolved = self.resolve_sha(repo.slug, branch) if self.resolve_sha else None
        return resolved or _sha_of(repo.slug, branch)

    def _new_pull(
        self, repo: _Repo, head: str, base: str, title: str, body: str, author: str
    ) -> FakePull:
        # One numbering for issues and pull requests, as on GitHub and Gitea.
        number = max([0, *repo.pulls]) + 1
        pull = FakePull(number, title, body, head, base, self._head_sha(repo, head), author)
        repo.pulls[number] = pull
        repo.comments[number] = []
        return pull

    def _open_pull_for(self, repo: _Repo, head: str, base: str | None) -> FakePull | None:
        for pull in sorted(repo.pulls.values(), key=lambda p: p.number):
            if pull.state == "open" and pull.head_ref == head and base in (None, pull.base_ref):
                return pull
        return None

    def _new_comment(
        self, repo: _Repo, number: int, body: str, author: str, system: bool = False
    ) -> FakeComment:
        comment = FakeComment(self._next_id(), body, author, system)
        repo.comments.setdefault(number, []).append(comment)
        return comment

    def _find_comment(self, repo: _Repo, comment_id: int) -> tuple[int, FakeComment] | None:
        for number, comments in repo.comments.items():
            for comment in comments:
                if comment.id == comment_id:
                    return number, comment
        return None

    def _latest_statuses(self, repo: _Repo, sha: str) -> list[FakeStatus]:
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
            raise _Refusal(400, self._error_body(400, "invalid page parameters")) from None
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
                body, reply = None, _Reply(400, self._error_body(400, "Problems parsing JSON"))
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
    ) -> _Reply:
        if self._faults:
            return self._faults.pop(0)
        if not path.startswith(self.prefix + "/"):
            return _Reply(404, self._error_body(404, "Not Found"))
        user = self.user if self._authenticated(headers) else None
        if user is None:
            return _Reply(401, self._error_body(401, "Bad credentials"))
        limited = self._spend_rate_limit(headers)
        if limited is not None:
            return limited
        parts = [unquote(p) for p in path[len(self.prefix) :].strip("/").split("/")]
        try:
            reply = self._route(method, parts, query, body if body is not None else {}, user, path)
        except _Refusal as e:
            reply = _Reply(e.status, e.body)
        if method == "GET" and reply.status == 200:
            etag = '"' + _sha_of(json.dumps(reply.body), reply.headers.get("Link", "")) + '"'
            reply.headers["ETag"] = etag
            if headers.get("if-none-match") == etag:
                reply = _Reply(304, None, {"ETag": etag})
        self._rate_limit_headers(reply)
        return reply

    def _spend_rate_limit(self, headers: Mapping[str, str]) -> _Reply | None:
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

    def _rate_limit_headers(self, reply: _Reply) -> None:
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

    def _rate_limited(self, wait: float) -> _Reply:
        return _Reply(429, self._error_body(429, "rate limited"), {"Retry-After": str(int(wait))})

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        user: str,
        path: str,
    ) -> _Reply:
        raise NotImplementedError

    def _not_found(self) -> _Refusal:
        return _Refusal(404, self._error_body(404, "Not Found"))

    def _repo(self, slug: str) -> _Repo:
        repo = self._repos.get(slug)
        if repo is None:
            raise self._not_found()
        return repo

    def _number(self, value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise self._not_found() from None

    def _pull_or_404(self, repo: _Repo, value: str) -> FakePull:
        pull = repo.pulls.get(self._number(value))
        if pull is None:
            raise self._not_found()
        return pull

    @staticmethod
    def _field(body: Any, name: str) -> str:
        value = body.get(name) if isinstance(body, dict) else None
        return value if isinstance(value, str) else ""


class FakeGitHub(FakeForge):
    """GitHub REST v3: pulls, issue comments, commit statuses (``prefix="/api/v3"`` for GHES)."""

    kind = "github"
    rate_headers = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
    free_304 = True
    docs = "https://docs.github.com/rest"
    max_body_chars = 65_536
    status_states = ("pending", "success", "failure", "error")
    #: "a limit of 1000 statuses per sha and context within a repository" (422 past it)
    max_statuses_per_context = 1000

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and token == self.token

    def _error_body(self, status: int, message: str) -> Any:
        return {"message": message, "documentation_url": self.docs, "status": str(status)}

    def _rate_limited(self, wait: float) -> _Reply:
        # The primary limit: 403 with x-ratelimit-remaining: 0 and the reset epoch.
        return _Reply(403, self._error_body(403, "API rate limit exceeded for user ID 1."))

    def _invalid(self, resource: str, message: str, code: str = "custom") -> _Refusal:
        return _Refusal(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": resource, "code": code, "message": message}],
                "documentation_url": self.docs,
                "status": "422",
            },
        )

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        user: str,
        path: str,
    ) -> _Reply:
        if len(parts) < 4 or parts[0] != "repos":
            raise self._not_found()
        repo = self._repo(f"{parts[1]}/{parts[2]}")
        rest = parts[3:]
        match method, rest:
            case "GET", ["pulls"]:
                return self._list_pulls(repo, query, path)
            case "POST", ["pulls"]:
                return self._create_pull(repo, body, user)
            case "GET", ["pulls", n]:
                return _Reply(200, self._pull_json(repo, self._pull_or_404(repo, n)))
            case "PATCH", ["pulls", n]:
                return self._edit_pull(repo, self._pull_or_404(repo, n), body)
            case "GET", ["issues", n, "comments"]:
                pull = self._pull_or_404(repo, n)
                comments = [
                    self._comment_json(repo, c, pull.number) for c in repo.comments[pull.number]
                ]
                page, headers = self._page(comments, query, path)
                return _Reply(200, page, headers)
            case "POST", ["issues", n, "comments"]:
                pull = self._pull_or_404(repo, n)
                text = self._body_text(body, "IssueComment")
                comment = self._new_comment(repo, pull.number, text, user)
                return _Reply(201, self._comment_json(repo, comment, pull.number))
            case "PATCH", ["issues", "comments", cid]:
                found = self._find_comment(repo, self._number(cid))
                if found is None:
                    raise self._not_found()
                found[1].body = self._body_text(body, "IssueComment")
                return _Reply(200, self._comment_json(repo, found[1], found[0]))
            case "POST", ["statuses", sha]:
                return self._create_status(repo, sha, body, user)
            case "GET", ["commits", ref, "status"]:
                return self._combined_status(repo, ref, query, path)
            case "GET", ["commits", ref, "statuses"]:
                history = [s for s in reversed(repo.statuses) if s.sha == ref]
                page, headers = self._page([self._status_json(s) for s in history], query, path)
                return _Reply(200, page, headers)
        raise self._not_found()

    def _body_text(self, body: Any, resource: str) -> str:
        text = self._field(body, "body")
        if not text:
            raise self._invalid(resource, "body wasn't supplied.", "missing_field")
        if len(text) > self.max_body_chars:
            raise self._invalid(
                resource, f"Body is too long (maximum is {self.max_body_chars} characters)"
            )
        return text

    def _list_pulls(self, repo: _Repo, query: dict[str, str], path: str) -> _Reply:
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise self._invalid("PullRequest", f"state {state!r} is not valid", "invalid")
        # ``head`` filters only in the documented form ``user:ref-name``; GitHub ignores any
        # other value and lists every pull request (a bare branch name is the classic slip).
        head = query.get("head") or ""
        head_owner, colon, head_ref = head.partition(":")
        owner = repo.slug.split("/")[0]
        pulls = [
            p
            for p in sorted(repo.pulls.values(), key=lambda p: -p.number)  # newest first
            if state in ("all", p.state)
            and (not colon or (head_owner.lower() == owner.lower() and head_ref == p.head_ref))
            and query.get("base") in (None, p.base_ref)
        ]
        page, headers = self._page([self._pull_json(repo, p) for p in pulls], query, path)
        return _Reply(200, page, headers)

    def _create_pull(self, repo: _Repo, body: Any, user: str) -> _Reply:
        head, base, title = (self._field(body, k) for k in ("head", "base", "title"))
        for name, value in (("head", head), ("base", base), ("title", title)):
            if not value:
                raise self._invalid("PullRequest", f"{name} wasn't supplied.", "missing_field")
        owner = repo.slug.split("/")[0]
        branch = head.split(":", 1)[1] if head.startswith(f"{owner}:") else head
        if branch == base:
            raise self._invalid("PullRequest", f"No commits between {base} and {head}")
        if self._open_pull_for(repo, branch, base) is not None:
            raise self._invalid(
                "PullRequest", f"A pull request already exists for {owner}:{branch}."
            )
        if len(self._field(body, "body")) > self.max_body_chars:
            raise self._invalid("PullRequest", "Body is too long")
        pull = self._new_pull(repo, branch, base, title, self._field(body, "body"), user)
        return _Reply(201, self._pull_json(repo, pull))

    def _edit_pull(self, repo: _Repo, pull: FakePull, body: Any) -> _Reply:
        if isinstance(body.get("title"), str):
            pull.title = body["title"]
        if isinstance(body.get("body"), str):
            pull.body = body["body"]
        state = body.get("state")
        if state in ("open", "closed") and not pull.merged:
            pull.state = state
        elif state is not None and state not in ("open", "closed"):
            raise self._invalid("PullRequest", f"state {state!r} is not valid", "invalid")
        return _Reply(200, self._pull_json(repo, pull))

    def _create_status(self, repo: _Repo, sha: str, body: Any, user: str) -> _Reply:
        state = self._field(body, "state")
        if state not in self.status_states:
            raise self._invalid("Status", f"state is not included in the list: {state!r}")
        if len(self._field(body, "description")) > 140:
            raise self._invalid("Status", "description is too long (maximum is 140 characters)")
        context = self._field(body, "context") or "default"
        same = [s for s in repo.statuses if s.sha == sha and s.context.lower() == context.lower()]
        if len(same) >= self.max_statuses_per_context:
            raise self._invalid(
                "Status", "This SHA and context has reached the maximum number of statuses."
            )
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
        return _Reply(201, self._status_json(status))

    def _combined_status(self, repo: _Repo, ref: str, query: dict[str, str], path: str) -> _Reply:
        latest = self._latest_statuses(repo, ref)
        states = {s.state for s in latest}
        combined = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if not latest or "pending" in states
            else "success"
        )
        page, headers = self._page([self._status_json(s) for s in latest], query, path)
        data = {"state": combined, "sha": ref, "total_count": len(latest), "statuses": page}
        return _Reply(200, data, headers)

    def _pull_json(self, repo: _Repo, pull: FakePull) -> dict[str, Any]:
        owner = repo.slug.split("/")[0]
        repo_json = {"id": repo.id, "full_name": repo.slug}
        return {
            "id": pull.number + 1000 * repo.id,
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body or None,
            "user": {"login": pull.author},
            "head": {
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "label": f"{owner}:{pull.head_ref}",
                "repo": repo_json,
            },
            "base": {
                "ref": pull.base_ref,
                "sha": self._head_sha(repo, pull.base_ref),
                "label": f"{owner}:{pull.base_ref}",
                "repo": repo_json,
            },
            "merged": pull.merged,
            "merged_at": "2024-01-01T00:00:00Z" if pull.merged else None,
            "html_url": f"{self.root}/{repo.slug}/pull/{pull.number}",
            "url": f"{self.url}/repos/{repo.slug}/pulls/{pull.number}",
        }

    def _comment_json(self, repo: _Repo, comment: FakeComment, number: int) -> dict[str, Any]:
        return {
            "id": comment.id,
            "body": comment.body,
            "user": {"login": comment.author},
            "html_url": f"{self.root}/{repo.slug}/pull/{number}#issuecomment-{comment.id}",
        }

    @staticmethod
    def _status_json(status: FakeStatus) -> dict[str, Any]:
        return {
            "id": status.id,
            "state": status.state,
            "context": status.context,
            "description": status.description or None,
            "target_url": status.target_url or None,
            "creator": {"login": status.author},
        }


#: ``order_by`` values GitLab accepts when listing notes (the first is its default).
_NOTE_ORDERS = ("created_at", "updated_at")


class FakeGitLab(FakeForge):
    """GitLab REST v4: merge requests, notes (with system notes), commit statuses.

    ``conflict_status_writes(n)`` makes the next ``n`` status writes answer 409 "Another
    update to this commit status is in progress", as GitLab does while another write holds
    the commit's lock (``Ci::CreateCommitStatusService``); nothing is written then.
    """

    kind = "gitlab"
    default_prefix = "/api/v4"
    default_page_size = 20
    rate_headers = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    status_states = ("pending", "running", "success", "failed", "canceled", "skipped")
    #: "Must be 255 characters or fewer" (lib/api/commit_statuses.rb) for these fields.
    status_field_limit = 255

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._status_conflicts = 0

    def conflict_status_writes(self, times: int = 1) -> None:
        """Answer the next ``times`` status writes 409, as while another write holds the lock."""
        with self.lock:
            self._status_conflicts += times

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        return headers.get("private-token") == self.token or (
            scheme.lower() == "bearer" and bearer == self.token
        )

    def _error_body(self, status: int, message: str) -> Any:
        return {
            400: {"message": message},
            401: {"message": "401 Unauthorized"},
            404: {"message": "404 Not found"},
            429: {"message": "Retry later"},
        }.get(status, {"message": message})

    def _page_headers(self, page: int, size: int, total: int, pages: int) -> dict[str, str]:
        return {
            "X-Page": str(page),
            "X-Per-Page": str(size),
            "X-Total": str(total),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        user: str,
        path: str,
    ) -> _Reply:
        if len(parts) < 3 or parts[0] != "projects":
            raise self._not_found()
        repo = self._project(parts[1])
        match method, parts[2:]:
            case "GET", ["merge_requests"]:
                return self._list(repo, query, path)
            case "POST", ["merge_requests"]:
                return self._create(repo, body, user)
            case "GET", ["merge_requests", iid]:
                return _Reply(200, self._mr_json(repo, self._pull_or_404(repo, iid)))
            case "PUT", ["merge_requests", iid]:
                return self._update(repo, self._pull_or_404(repo, iid), body)
            case "GET", ["merge_requests", iid, "notes"]:
                pull = self._pull_or_404(repo, iid)
                for name, allowed in (("sort", ("asc", "desc")), ("order_by", _NOTE_ORDERS)):
                    if query.get(name, allowed[0]) not in allowed:
                        raise _Refusal(400, {"error": f"{name} does not have a valid value"})
                notes = sorted(repo.comments[pull.number], key=lambda c: c.id)
                if query.get("sort", "desc") == "desc":
                    notes.reverse()
                page, headers = self._page([self._note_json(n, pull) for n in notes], query, path)
                return _Reply(200, page, headers)
            case "POST", ["merge_requests", iid, "notes"]:
                pull = self._pull_or_404(repo, iid)
                created = self._new_comment(repo, pull.number, self._note_body(body), user)
                return _Reply(201, self._note_json(created, pull))
            case "PUT", ["merge_requests", iid, "notes", nid]:
                pull = self._pull_or_404(repo, iid)
                note = next((n for n in repo.comments[pull.number] if str(n.id) == nid), None)
                if note is None or note.system:
                    raise self._not_found()
                note.body = self._note_body(body)
                return _Reply(200, self._note_json(note, pull))
            case "POST", ["statuses", sha]:
                return self._create_status(repo, sha, body, user)
            case "GET", ["repository", "commits", sha, "statuses"]:
                # Ordered by id, ascending, unless asked otherwise (lib/api/commit_statuses.rb).
                chosen = sorted(
                    (
                        [s for s in repo.statuses if s.sha == sha]
                        if query.get("all") == "true"
                        else self._latest_statuses(repo, sha)
                    ),
                    key=lambda s: s.id,
                    reverse=query.get("sort") == "desc",
                )
                page, headers = self._page([self._status_json(s) for s in chosen], query, path)
                return _Reply(200, page, headers)
        raise self._not_found()

    def _project(self, ident: str) -> _Repo:
        for repo in self._repos.values():
            if ident in (repo.slug, str(repo.id)):
                return repo
        raise _Refusal(404, {"message": "404 Project Not Found"})

    def _note_body(self, body: Any) -> str:
        text = self._field(body, "body")
        if not text:
            raise _Refusal(400, {"error": "body is missing"})
        if len(text) > 1_000_000:
            raise _Refusal(
                400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}}
            )
        return text

    def _list(self, repo: _Repo, query: dict[str, str], path: str) -> _Reply:
        state = query.get("state", "all")
        wanted: Callable[[FakePull], bool] | None = {
            "opened": lambda p: p.state == "open",
            "closed": lambda p: p.state == "closed" and not p.merged,
            "merged": lambda p: p.merged,
            "locked": lambda p: False,
            "all": lambda p: True,
        }.get(state)
        if wanted is None:
            raise _Refusal(400, {"error": "state does not have a valid value"})
        mrs = [
            self._mr_json(repo, p)
            for p in sorted(repo.pulls.values(), key=lambda p: -p.number)  # newest first
            if wanted(p)
            and query.get("source_branch") in (None, p.head_ref)
            and query.get("target_branch") in (None, p.base_ref)
        ]
        page, headers = self._page(mrs, query, path)
        return _Reply(200, page, headers)

    def _create(self, repo: _Repo, body: Any, user: str) -> _Reply:
        source, target, title = (
            self._field(body, k) for k in ("source_branch", "target_branch", "title")
        )
        missing = [
            k
            for k, v in (("source_branch", source), ("target_branch", target), ("title", title))
            if not v
        ]
        if missing:
            raise _Refusal(400, {"error": f"{missing[0]} is missing"})
        if source == target:
            # handle_merge_request_errors!: a validate_branches error is a 422.
            message = "You can't use same project/branch for source and target"
            raise _Refusal(422, {"message": [message]})
        # GitLab refuses a second open merge request for the same source *and* target branch
        # (its message names only the source); another target is a new merge request.
        existing = self._open_pull_for(repo, source, target)
        if existing is not None:
            raise _Refusal(
                409,
                {
                    "message": [
                        f"Another open merge request already exists for this source branch: !{existing.number}"
                    ]
                },
            )
        pull = self._new_pull(repo, source, target, title, self._field(body, "description"), user)
        return _Reply(201, self._mr_json(repo, pull))

    def _update(self, repo: _Repo, pull: FakePull, body: Any) -> _Reply:
        if isinstance(body.get("title"), str) and body["title"] != pull.title:
            pull.title = body["title"]
            self._new_comment(
                repo, pull.number, f"changed title to **{pull.title}**", self.user, True
            )
        if isinstance(body.get("description"), str) and body["description"] != pull.body:
            pull.body = body["description"]
            self._new_comment(repo, pull.number, "changed the description", self.user, True)
        event = body.get("state_event")
        if event == "close" and pull.state == "open":
            pull.state = "closed"
            self._new_comment(repo, pull.number, "closed", self.user, True)
        elif event == "reopen" and pull.state == "closed" and not pull.merged:
            pull.state = "open"
        elif event not in (None, "close", "reopen"):
            raise _Refusal(400, {"error": "state_event does not have a valid value"})
        return _Reply(200, self._mr_json(repo, pull))

    def _create_status(self, repo: _Repo, sha: str, body: Any, user: str) -> _Reply:
        state = self._field(body, "state")
        if not state:
            raise _Refusal(400, {"error": "state is missing"})
        if state not in self.status_states:
            raise _Refusal(400, {"error": "state does not have a valid value"})
        if self._status_conflicts > 0:
            self._status_conflicts -= 1
            raise _Refusal(409, {"message": "Another update to this commit status is in progress"})
        invalid = {
            key: [f"is too long (maximum is {self.status_field_limit} characters)"]
            for key in ("description", "target_url")
            if len(self._field(body, key)) > self.status_field_limit
        }
        url = self._field(body, "target_url")
        if url and urlsplit(url).scheme not in ("http", "https"):
            # GenericCommitStatus validates target_url with the addressable URL validator.
            invalid.setdefault("target_url", []).insert(
                0, "is blocked: Only allowed schemes are http, https"
            )
        if invalid:
            raise _Refusal(400, {"message": invalid})
        name = self._field(body, "name") or self._field(body, "context") or "default"
        current = next(
            (s for s in reversed(repo.statuses) if s.sha == sha and s.context == name), None
        )
        if current is not None and current.state == state and state in ("pending", "running"):
            verb = "enqueue" if state == "pending" else "run"
            raise _Refusal(
                400,
                {
                    "message": f'Cannot transition status via :{verb} from :{state} (Reasons: Status cannot transition via "{verb}")'
                },
            )
        status = FakeStatus(
            self._next_id(),
            sha,
            name,
            state,
            self._field(body, "description"),
            self._field(body, "target_url"),
            user,
        )
        repo.statuses.append(status)
        return _Reply(201, self._status_json(status))

    def _mr_json(self, repo: _Repo, pull: FakePull) -> dict[str, Any]:
        state = "merged" if pull.merged else "opened" if pull.state == "open" else "closed"
        return {
            "id": pull.number + 1000 * repo.id,
            "iid": pull.number,
            "project_id": repo.id,
            "title": pull.title,
            "description": pull.body or None,
            "state": state,
            "source_branch": pull.head_ref,
            "target_branch": pull.base_ref,
            "source_project_id": repo.id,
            "target_project_id": repo.id,
            "sha": pull.head_sha,
            "author": {"username": pull.author},
            "web_url": f"{self.root}/{repo.slug}/-/merge_requests/{pull.number}",
        }

    @staticmethod
    def _note_json(note: FakeComment, pull: FakePull) -> dict[str, Any]:
        return {
            "id": note.id,
            "body": note.body,
            "author": {"username": note.author},
            "system": note.system,
            "noteable_type": "MergeRequest",
            "noteable_iid": pull.number,
        }

    @staticmethod
    def _status_json(status: FakeStatus) -> dict[str, Any]:
        return {
            "id": status.id,
            "sha": status.sha,
            "status": status.state,
            "name": status.context,
            "description": status.description or None,
            "target_url": status.target_url or None,
            "author": {"username": status.author},
        }


class FakeGitea(FakeForge):
    """Gitea (and Forgejo) ``/api/v1``: pulls, issue comments, commit statuses."""

    kind = "gitea"
    default_prefix = "/api/v1"
    page_param = "limit"
    platform_max_page_size = 50
    status_states = ("pending", "success", "error", "failure", "warning", "skipped")

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() in ("token", "bearer") and token == self.token

    def _error_body(self, status: int, message: str) -> Any:
        url = f"{self.root}/api/swagger"
        if status == 404:
            return {"errors": [], "message": "The target couldn't be found.", "url": url}
        if status == 401:
            return {"message": "token is required", "url": url}
        return {"message": message, "url": url}

    def _page_headers(self, page: int, size: int, total: int, pages: int) -> dict[str, str]:
        return {"X-Total-Count": str(total)}

    def _page_numbers(self, query: Mapping[str, str]) -> tuple[int, int]:
        # Gitea reads ``page`` and ``limit`` with ctx.FormInt: what is not a number is 0, and
        # 0 means the default (page 1, DEFAULT_PAGING_NUM items); it never answers 400 here.
        def number(name: str) -> int:
            try:
                return int(query.get(name) or 0)
            except ValueError:
                return 0

        return number(self.page_param) or self.default_page_size, max(number("page"), 1)

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        user: str,
        path: str,
    ) -> _Reply:
        if len(parts) < 4 or parts[0] != "repos":
            raise self._not_found()
        repo = self._repo(f"{parts[1]}/{parts[2]}")
        match method, parts[3:]:
            case "GET", ["pulls"]:
                state = query.get("state", "open")
                pulls = [
                    self._pull_json(repo, p)
                    for p in sorted(repo.pulls.values(), key=lambda p: -p.number)
                    if state in ("all", p.state)
                ]
                page, headers = self._page(pulls, query, path)
                return _Reply(200, page, headers)
            case "POST", ["pulls"]:
                return self._create_pull(repo, body, user)
            case "GET", ["pulls", n]:
                return _Reply(200, self._pull_json(repo, self._pull_or_404(repo, n)))
            case "PATCH", ["pulls", n]:
                pull = self._pull_or_404(repo, n)
                if isinstance(body.get("title"), str) and body["title"]:
                    pull.title = body["title"]  # an empty title is left as it is
                if isinstance(body.get("body"), str):
                    pull.body = body["body"]
                if body.get("state") is not None:
                    if pull.merged:
                        message = "cannot change state of this pull request, it was already merged"
                        raise _Refusal(412, self._error_body(412, message))
                    # EditPullRequest: "closed" closes, any other state reopens.
                    pull.state = "closed" if body["state"] == "closed" else "open"
                return _Reply(201, self._pull_json(repo, pull))  # Gitea answers 201 to an edit
            case "GET", ["issues", n, "comments"]:
                pull = self._pull_or_404(repo, n)  # not paginated on Gitea: every comment
                comments = repo.comments[pull.number]
                return _Reply(
                    200,
                    [self._comment_json(repo, c, pull.number) for c in comments],
                    {"X-Total-Count": str(len(comments))},
                )
            case "POST", ["issues", n, "comments"]:
                pull = self._pull_or_404(repo, n)
                comment = self._new_comment(repo, pull.number, self._comment_body(body), user)
                return _Reply(201, self._comment_json(repo, comment, pull.number))
            case "PATCH", ["issues", "comments", cid]:
                found = self._find_comment(repo, self._number(cid))
                if found is None:
                    raise self._not_found()
                found[1].body = self._comment_body(body)
                return _Reply(200, self._comment_json(repo, found[1], found[0]))
            case "POST", ["statuses", sha]:
                state = self._field(body, "state")
                if state not in self.status_states:
                    # CreateStatusOption binds ``state`` with no validation tag, so this is not
                    # a 422 binding error; 400 is the only refusal Gitea documents here.
                    raise _Refusal(
                        400, self._error_body(400, f"invalid commit status state {state!r}")
                    )
                status = FakeStatus(
                    self._next_id(),
                    sha,
                    self._field(body, "context"),  # Gitea has no "default" context, unlike GitHub
                    state,
                    self._field(body, "description"),
                    self._field(body, "target_url"),
                    user,
                )
                repo.statuses.append(status)
                return _Reply(201, self._status_json(status))
            case "GET", ["commits", ref, "status"]:
                latest = self._latest_statuses(repo, ref)
                if not latest:
                    # An empty api.CombinedStatus{}: zero values, no X-Total-Count.
                    empty = {"state": "", "sha": "", "total_count": 0, "statuses": None}
                    return _Reply(200, {**empty, "repository": None, "commit_url": "", "url": ""})
                # routers/api/v1/repo/status.go sets X-Total-Count here and no Link header;
                # convert.ToCombinedStatus counts and combines the statuses of this page only.
                page, headers = self._page(
                    [self._status_json(s) for s in latest], query, path, link=False
                )
                states = {x["status"] for x in page}
                worst = next(
                    (s for s in ("error", "failure", "warning", "pending") if s in states),
                    "success" if page else "",
                )
                data = {"state": worst, "sha": ref, "total_count": len(page), "statuses": page}
                return _Reply(200, data, headers)
        raise self._not_found()

    def _comment_body(self, body: Any) -> str:
        text = self._field(body, "body")
        if not text:
            raise _Refusal(422, self._error_body(422, "[Body]: Required"))
        return text

    def _create_pull(self, repo: _Repo, body: Any, user: str) -> _Reply:
        head, base, title = (self._field(body, k) for k in ("head", "base", "title"))
        if not (head and base and title):
            raise _Refusal(422, self._error_body(422, "[Head Base Title]: Required"))
        if head == base:
            message = "Invalid PullRequest: There are no changes between the head and the base"
            raise _Refusal(422, self._error_body(422, message))
        existing = self._open_pull_for(repo, head, base)
        if existing is not None:
            message = (
                f"pull request already exists for these targets [id: {existing.number + 1000 * repo.id}, "
                f"issue_id: {existing.number}, head_repo_id: {repo.id}, base_repo_id: {repo.id}, "
                f"head_branch: {head}, base_branch: {base}]"
            )
            raise _Refusal(409, self._error_body(409, message))
        pull = self._new_pull(repo, head, base, title, self._field(body, "body"), user)
        return _Reply(201, self._pull_json(repo, pull))

    def _pull_json(self, repo: _Repo, pull: FakePull) -> dict[str, Any]:
        repo_json = {"id": repo.id, "full_name": repo.slug}
        return {
            "id": pull.number + 1000 * repo.id,
            "number": pull.number,
            "title": pull.title,
            "body": pull.body,
            "state": pull.state,
            "merged": pull.merged,
            "merged_at": "2024-01-01T00:00:00Z" if pull.merged else None,
            "user": {"login": pull.author},
            "head": {
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "label": pull.head_ref,
                "repo": repo_json,
            },
            "base": {
                "ref": pull.base_ref,
                "sha": self._head_sha(repo, pull.base_ref),
                "label": pull.base_ref,
                "repo": repo_json,
            },
            "html_url": f"{self.root}/{repo.slug}/pulls/{pull.number}",
        }

    def _comment_json(self, repo: _Repo, comment: FakeComment, number: int) -> dict[str, Any]:
        return {
            "id": comment.id,
            "body": comment.body,
            "user": {"login": comment.author},
            "html_url": f"{self.root}/{repo.slug}/pulls/{number}#issuecomment-{comment.id}",
        }

    @staticmethod
    def _status_json(status: FakeStatus) -> dict[str, Any]:
        return {
            "id": status.id,
            "status": status.state,
            "context": status.context,
            "description": status.description,
            "target_url": status.target_url,
            "creator": {"login": status.author},
        }
