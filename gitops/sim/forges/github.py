"""The GitHub stand-in: REST v3 pulls, issue comments and commit statuses.

Tool layer (``gitops.sim.forges``): what ``gitops.forge.github`` talks to in tests and the demo,
with GitHub's paths, JSON, ``Link`` pagination, 422 "Validation Failed" refusals, length limits
and primary rate limit (403 with ``x-ratelimit-remaining: 0``). The Gitea stand-in extends it,
as the Gitea adapter extends the GitHub one, so each route and refusal here is a hook Gitea
may override.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gitops.sim.forges.base import (
    FakeComment,
    FakeForge,
    FakePull,
    FakeStatus,
    Refusal,
    Reply,
    Repo,
)


class FakeGitHub(FakeForge):
    """GitHub REST v3: pulls, issue comments, commit statuses (``prefix="/api/v3"`` for GHES)."""

    kind = "github"
    rate_headers: ClassVar[tuple[str, str, str] | None] = (
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    )
    free_304 = True
    docs = "https://docs.github.com/rest"
    max_body_chars = 65_536
    status_states: ClassVar[tuple[str, ...]] = ("pending", "success", "failure", "error")
    #: "a limit of 1000 statuses per sha and context within a repository" (422 past it)
    max_statuses_per_context = 1000
    #: the path segment of a pull request's web page: ``/{owner}/{repo}/pull/{number}``
    web_pulls: ClassVar[str] = "pull"

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and token == self.token

    def _error_body(self, status: int, message: str) -> Any:
        return {"message": message, "documentation_url": self.docs, "status": str(status)}

    def _rate_limited(self, wait: float) -> Reply:
        # The primary limit: 403 with x-ratelimit-remaining: 0 and the reset epoch.
        return Reply(403, self._error_body(403, "API rate limit exceeded for user ID 1."))

    def _invalid(self, resource: str, message: str, code: str = "custom") -> Refusal:
        return Refusal(
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
    ) -> Reply:
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
                return Reply(200, self._pull_json(repo, self._pull_or_404(repo, n)))
            case "PATCH", ["pulls", n]:
                return self._edit_pull(repo, self._pull_or_404(repo, n), body)
            case "GET", ["issues", n, "comments"]:
                return self._list_comments(repo, self._pull_or_404(repo, n), query, path)
            case "POST", ["issues", n, "comments"]:
                pull = self._pull_or_404(repo, n)
                text = self._body_text(body, "IssueComment")
                comment = self._new_comment(repo, pull.number, text, user)
                return Reply(201, self._comment_json(repo, comment, pull.number))
            case "PATCH", ["issues", "comments", cid]:
                found = self._find_comment(repo, self._number(cid))
                if found is None:
                    raise self._not_found()
                found[1].body = self._body_text(body, "IssueComment")
                return Reply(200, self._comment_json(repo, found[1], found[0]))
            case "POST", ["statuses", sha]:
                return self._create_status(repo, sha, body, user)
            case "GET", ["commits", ref, "status"]:
                return self._combined_status(repo, ref, query, path)
            case "GET", ["commits", ref, "statuses"]:
                return self._status_history(repo, ref, query, path)
        raise self._not_found()

    def _list_comments(self, repo: Repo, pull: FakePull, query: dict[str, str], path: str) -> Reply:
        comments = [self._comment_json(repo, c, pull.number) for c in repo.comments[pull.number]]
        page, headers = self._page(comments, query, path)
        return Reply(200, page, headers)

    def _status_history(self, repo: Repo, ref: str, query: dict[str, str], path: str) -> Reply:
        history = [s for s in reversed(repo.statuses) if s.sha == ref]
        page, headers = self._page([self._status_json(s) for s in history], query, path)
        return Reply(200, page, headers)

    def _body_text(self, body: Any, resource: str) -> str:
        text = self._field(body, "body")
        if not text:
            raise self._invalid(resource, "body wasn't supplied.", "missing_field")
        if len(text) > self.max_body_chars:
            raise self._invalid(
                resource, f"Body is too long (maximum is {self.max_body_chars} characters)"
            )
        return text

    def _list_pulls(self, repo: Repo, query: dict[str, str], path: str) -> Reply:
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
        return Reply(200, page, headers)

    def _create_pull(self, repo: Repo, body: Any, user: str) -> Reply:
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
        return Reply(201, self._pull_json(repo, pull))

    def _edit_pull(self, repo: Repo, pull: FakePull, body: Any) -> Reply:
        if isinstance(body.get("title"), str):
            pull.title = body["title"]
        if isinstance(body.get("body"), str):
            pull.body = body["body"]
        state = body.get("state")
        if state in ("open", "closed") and not pull.merged:
            pull.state = state
        elif state is not None and state not in ("open", "closed"):
            raise self._invalid("PullRequest", f"state {state!r} is not valid", "invalid")
        return Reply(200, self._pull_json(repo, pull))

    def _create_status(self, repo: Repo, sha: str, body: Any, user: str) -> Reply:
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
        return Reply(
            201, self._status_json(self._add_status(repo, sha, context, state, body, user))
        )

    def _combined_status(self, repo: Repo, ref: str, query: dict[str, str], path: str) -> Reply:
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
        return Reply(200, data, headers)

    def _pull_json(self, repo: Repo, pull: FakePull) -> dict[str, Any]:
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
            "html_url": f"{self.root}/{repo.slug}/{self.web_pulls}/{pull.number}",
            "url": f"{self.url}/repos/{repo.slug}/pulls/{pull.number}",
        }

    def _comment_json(self, repo: Repo, comment: FakeComment, number: int) -> dict[str, Any]:
        return {
            "id": comment.id,
            "body": comment.body,
            "user": {"login": comment.author},
            "html_url": f"{self.root}/{repo.slug}/{self.web_pulls}/{number}#issuecomment-{comment.id}",
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
