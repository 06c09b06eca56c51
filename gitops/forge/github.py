"""GitHub (REST v3, github.com or GitHub Enterprise Server) behind the ``Forge`` interface.

Adapter layer. Endpoints used, relative to the REST root (``https://api.github.com``, or
``https://HOST/api/v3`` on Enterprise Server):

    GET    /repos/{owner}/{repo}/pulls?state=open|all&head=owner:branch   list (pages)
    GET    /repos/{owner}/{repo}/pulls/{number}
    POST   /repos/{owner}/{repo}/pulls                {title, head, base, body}
    PATCH  /repos/{owner}/{repo}/pulls/{number}       {title, body} or {state: closed}
    GET    /repos/{owner}/{repo}/issues/{number}/comments                  (pages)
    POST   /repos/{owner}/{repo}/issues/{number}/comments   {body}
    PATCH  /repos/{owner}/{repo}/issues/comments/{id}       {body}
    POST   /repos/{owner}/{repo}/statuses/{sha}       {state, context, description, target_url}
    GET    /repos/{owner}/{repo}/commits/{sha}/status  combined: latest per context (pages)

A pull request is ``merged`` when ``merged_at`` is set (its ``state`` is then ``closed``).
Writes are spaced at least one second apart, as GitHub asks of integrators.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from gitops.forge._util import split_slug, text
from gitops.forge.base import Comment, CommitState, CommitStatus, Forge, PullRequest, PullState
from gitops.forge.http import ApiClient

DEFAULT_URL = "https://api.github.com"
#: GitHub's advice: "wait at least one second between each" POST, PATCH, PUT or DELETE.
MIN_WRITE_INTERVAL = 1.0
API_VERSION = "2022-11-28"
#: A commit status description longer than this is refused with 422.
MAX_STATUS_DESCRIPTION = 140

_STATES: dict[str, CommitState] = {
    "pending": "pending",
    "success": "success",
    "failure": "failure",
    "error": "error",
}


class GitHub(Forge):
    kind = "github"
    max_body_chars = 65_536
    #: Cut status descriptions to this (None: send them whole).
    max_status_description: int | None = MAX_STATUS_DESCRIPTION

    def __init__(self, client: ApiClient, slug: str) -> None:
        self.client = client
        self.slug = slug
        self.owner, self.name = split_slug(slug)
        self._repo = f"repos/{quote(self.owner, safe='')}/{quote(self.name, safe='')}"

    def close(self) -> None:
        self.client.close()

    # pull requests ---------------------------------------------------------------------

    def pull_request(self, number: int) -> PullRequest:
        return self._pull(self.client.get(f"{self._repo}/pulls/{number}"))

    def pull_requests(self, *, state: Literal["open", "all"] = "open") -> list[PullRequest]:
        found = self.client.get_all(f"{self._repo}/pulls", {"state": state})
        return sorted((self._pull(p) for p in found), key=lambda p: p.number)

    def find_pull_request(self, head_ref: str) -> PullRequest | None:
        found = self.client.get_all(
            f"{self._repo}/pulls", {"state": "open", "head": f"{self.owner}:{head_ref}"}
        )
        pulls = [self._pull(p) for p in found]
        return min(pulls, key=lambda p: p.number) if pulls else None

    def open_pull_request(
        self, *, head_ref: str, base_ref: str, title: str, body: str
    ) -> PullRequest:
        data = {"title": title, "head": head_ref, "base": base_ref, "body": body}
        return self._pull(self.client.post(f"{self._repo}/pulls", data))

    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        data = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if not data:
            return self.pull_request(number)
        return self._pull(self.client.patch(f"{self._repo}/pulls/{number}", data))

    def close_pull_request(self, number: int) -> PullRequest:
        return self._pull(self.client.patch(f"{self._repo}/pulls/{number}", {"state": "closed"}))

    # comments --------------------------------------------------------------------------

    def comments(self, number: int) -> list[Comment]:
        found = self.client.get_all(f"{self._repo}/issues/{number}/comments")
        return [self._comment(c) for c in found]

    def create_comment(self, number: int, body: str) -> Comment:
        data = self.client.post(f"{self._repo}/issues/{number}/comments", {"body": body})
        return self._comment(data)

    def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        # The endpoint is addressed by comment id alone; ``number`` only names the context.
        data = self.client.patch(f"{self._repo}/issues/comments/{comment_id}", {"body": body})
        return self._comment(data)

    # commit statuses -------------------------------------------------------------------

    def set_commit_status(self, status: CommitStatus) -> None:
        data = {
            "state": status.state,
            "context": status.context,
            "description": status.description[: self.max_status_description],
        }
        if status.target_url:
            data["target_url"] = status.target_url
        self.client.post(f"{self._repo}/statuses/{quote(status.sha, safe='')}", data)

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        found = self.client.get_all(
            f"{self._repo}/commits/{quote(sha, safe='')}/status",
            items=lambda combined: list(combined.get("statuses") or []),
        )
        latest: dict[str, CommitStatus] = {}
        for s in found:  # newest first within a context; the first seen wins
            context = text(s.get("context"))
            latest.setdefault(
                context,
                CommitStatus(
                    sha=sha,
                    context=context,
                    state=_STATES.get(text(s.get("state")), "error"),
                    description=text(s.get("description")),
                    target_url=text(s.get("target_url")),
                ),
            )
        return [latest[c] for c in sorted(latest)]

    # translation -----------------------------------------------------------------------

    @staticmethod
    def _merged(data: Any) -> bool:
        return bool(data.get("merged_at"))

    @classmethod
    def _pull(cls, data: Any) -> PullRequest:
        state: PullState
        if cls._merged(data):
            state = "merged"
        elif data.get("state") == "open":
            state = "open"
        else:
            state = "closed"
        head, base = data.get("head") or {}, data.get("base") or {}
        return PullRequest(
            number=int(data["number"]),
            title=text(data.get("title")),
            body=text(data.get("body")),
            state=state,
            head_ref=text(head.get("ref")),
            head_sha=text(head.get("sha")),
            base_ref=text(base.get("ref")),
            url=text(data.get("html_url")),
            author=text((data.get("user") or {}).get("login")),
        )

    @staticmethod
    def _comment(data: Any) -> Comment:
        return Comment(
            id=int(data["id"]),
            body=text(data.get("body")),
            author=text((data.get("user") or {}).get("login")),
            url=text(data.get("html_url")),
        )
