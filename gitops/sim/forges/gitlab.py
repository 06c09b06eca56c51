"""The GitLab stand-in: REST v4 merge requests, notes (system notes too), commit statuses.

Tool layer (``gitops.sim.forges``): what ``gitops.forge.gitlab`` talks to in tests and the demo,
with GitLab's paths, JSON, ``X-Next-Page`` pagination, 400/409 refusals and length limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from gitops.sim.forges.base import (
    FakeComment,
    FakeForge,
    FakePull,
    FakeStatus,
    Refusal,
    Reply,
    Repo,
)

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
    ) -> Reply:
        if len(parts) < 3 or parts[0] != "projects":
            raise self._not_found()
        repo = self._project(parts[1])
        match method, parts[2:]:
            case "GET", ["merge_requests"]:
                return self._list(repo, query, path)
            case "POST", ["merge_requests"]:
                return self._create(repo, body, user)
            case "GET", ["merge_requests", iid]:
                return Reply(200, self._mr_json(repo, self._pull_or_404(repo, iid)))
            case "PUT", ["merge_requests", iid]:
                return self._update(repo, self._pull_or_404(repo, iid), body)
            case "GET", ["merge_requests", iid, "notes"]:
                pull = self._pull_or_404(repo, iid)
                for name, allowed in (("sort", ("asc", "desc")), ("order_by", _NOTE_ORDERS)):
                    if query.get(name, allowed[0]) not in allowed:
                        raise Refusal(400, {"error": f"{name} does not have a valid value"})
                notes = sorted(repo.comments[pull.number], key=lambda c: c.id)
                if query.get("sort", "desc") == "desc":
                    notes.reverse()
                page, headers = self._page([self._note_json(n, pull) for n in notes], query, path)
                return Reply(200, page, headers)
            case "POST", ["merge_requests", iid, "notes"]:
                pull = self._pull_or_404(repo, iid)
                created = self._new_comment(repo, pull.number, self._note_body(body), user)
                return Reply(201, self._note_json(created, pull))
            case "PUT", ["merge_requests", iid, "notes", nid]:
                pull = self._pull_or_404(repo, iid)
                note = next((n for n in repo.comments[pull.number] if str(n.id) == nid), None)
                if note is None or note.system:
                    raise self._not_found()
                note.body = self._note_body(body)
                return Reply(200, self._note_json(note, pull))
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
                return Reply(200, page, headers)
        raise self._not_found()

    def _project(self, ident: str) -> Repo:
        for repo in self._repos.values():
            if ident in (repo.slug, str(repo.id)):
                return repo
        raise Refusal(404, {"message": "404 Project Not Found"})

    def _note_body(self, body: Any) -> str:
        text = self._field(body, "body")
        if not text:
            raise Refusal(400, {"error": "body is missing"})
        if len(text) > 1_000_000:
            raise Refusal(
                400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}}
            )
        return text

    def _list(self, repo: Repo, query: dict[str, str], path: str) -> Reply:
        state = query.get("state", "all")
        wanted: Callable[[FakePull], bool] | None = {
            "opened": lambda p: p.state == "open",
            "closed": lambda p: p.state == "closed" and not p.merged,
            "merged": lambda p: p.merged,
            "locked": lambda p: False,
            "all": lambda p: True,
        }.get(state)
        if wanted is None:
            raise Refusal(400, {"error": "state does not have a valid value"})
        mrs = [
            self._mr_json(repo, p)
            for p in sorted(repo.pulls.values(), key=lambda p: -p.number)  # newest first
            if wanted(p)
            and query.get("source_branch") in (None, p.head_ref)
            and query.get("target_branch") in (None, p.base_ref)
        ]
        page, headers = self._page(mrs, query, path)
        return Reply(200, page, headers)

    def _create(self, repo: Repo, body: Any, user: str) -> Reply:
        source, target, title = (
            self._field(body, k) for k in ("source_branch", "target_branch", "title")
        )
        missing = [
            k
            for k, v in (("source_branch", source), ("target_branch", target), ("title", title))
            if not v
        ]
        if missing:
            raise Refusal(400, {"error": f"{missing[0]} is missing"})
        if source == target:
            # handle_merge_request_errors!: a validate_branches error is a 422.
            message = "You can't use same project/branch for source and target"
            raise Refusal(422, {"message": [message]})
        # GitLab refuses a second open merge request for the same source *and* target branch
        # (its message names only the source); another target is a new merge request.
        existing = self._open_pull_for(repo, source, target)
        if existing is not None:
            raise Refusal(
                409,
                {
                    "message": [
                        f"Another open merge request already exists for this source branch: !{existing.number}"
                    ]
                },
            )
        pull = self._new_pull(repo, source, target, title, self._field(body, "description"), user)
        return Reply(201, self._mr_json(repo, pull))

    def _update(self, repo: Repo, pull: FakePull, body: Any) -> Reply:
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
            raise Refusal(400, {"error": "state_event does not have a valid value"})
        return Reply(200, self._mr_json(repo, pull))

    def _create_status(self, repo: Repo, sha: str, body: Any, user: str) -> Reply:
        state = self._field(body, "state")
        if not state:
            raise Refusal(400, {"error": "state is missing"})
        if state not in self.status_states:
            raise Refusal(400, {"error": "state does not have a valid value"})
        if self._status_conflicts > 0:
            self._status_conflicts -= 1
            raise Refusal(409, {"message": "Another update to this commit status is in progress"})
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
            raise Refusal(400, {"message": invalid})
        name = self._field(body, "name") or self._field(body, "context") or "default"
        current = next(
            (s for s in reversed(repo.statuses) if s.sha == sha and s.context == name), None
        )
        if current is not None and current.state == state and state in ("pending", "running"):
            verb = "enqueue" if state == "pending" else "run"
            raise Refusal(
                400,
                {
                    "message": f'Cannot transition status via :{verb} from :{state} (Reasons: Status cannot transition via "{verb}")'
                },
            )
        return Reply(201, self._status_json(self._add_status(repo, sha, name, state, body, user)))

    def _mr_json(self, repo: Repo, pull: FakePull) -> dict[str, Any]:
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
