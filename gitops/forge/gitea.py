"""Gitea and Forgejo (REST ``/api/v1``) behind the ``Forge`` interface.

Adapter layer. Forgejo keeps Gitea's API for everything used here. Endpoints used, relative to
``https://HOST/api/v1``:

    GET   /repos/{owner}/{repo}/pulls?state=open|all          (pages: ``page``, ``limit``)
    GET   /repos/{owner}/{repo}/pulls/{index}
    POST  /repos/{owner}/{repo}/pulls               {head, base, title, body}
    PATCH /repos/{owner}/{repo}/pulls/{index}       {title, body} or {state: closed}
    GET   /repos/{owner}/{repo}/issues/{index}/comments      (a PR's index is an issue index)
    POST  /repos/{owner}/{repo}/issues/{index}/comments     {body}
    PATCH /repos/{owner}/{repo}/issues/comments/{id}        {body}
    POST  /repos/{owner}/{repo}/statuses/{sha}      {state, context, description, target_url}
    GET   /repos/{owner}/{repo}/commits/{sha}/status   combined: latest per context (pages)

Gitea's list of pull requests has no head-branch filter, so ``find_pull_request`` lists the
open ones and picks the branch. Gitea names a status's state ``status`` in its answers (and
``state`` in requests). Status states read: ``warning`` → failure (not a success; Gitea ranks
it between failure and pending), ``skipped`` → success, unknown → error.

``max_body_chars``: Gitea documents no limit on comment or pull-request bodies (they are stored
as long text); 65,536, GitHub's limit, is used so that a body accepted here is accepted on every
platform.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from gitops.forge._util import split_slug, text
from gitops.forge.base import Comment, CommitState, CommitStatus, Forge, PullRequest, PullState
from gitops.forge.http import ApiClient

API_PREFIX = "/api/v1"
MIN_WRITE_INTERVAL = 0.0
#: Gitea's ``[api] MAX_RESPONSE_ITEMS`` default: a larger ``limit`` is cut to this.
PAGE_SIZE = 50

_STATES: dict[str, CommitState] = {
    "pending": "pending",
    "success": "success",
    "failure": "failure",
    "error": "error",
    "warning": "failure",
    "skipped": "success",
}


class Gitea(Forge):
    kind = "gitea"
    max_body_chars = 65_536

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
        found = self.client.get_all(f"{self._repo}/pulls", {"state": "open"})
        full_name = f"{self.owner}/{self.name}".lower()
        mine = [
            self._pull(p)
            for p in found
            if (p.get("head") or {}).get("ref") == head_ref
            and text(((p.get("head") or {}).get("repo") or {}).get("full_name")).lower()
            in ("", full_name)
        ]
        return min(mine, key=lambda p: p.number) if mine else None

    def open_pull_request(
        self, *, head_ref: str, base_ref: str, title: str, body: str
    ) -> PullRequest:
        data = {"head": head_ref, "base": base_ref, "title": title, "body": body}
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
        return sorted((self._comment(c) for c in found), key=lambda c: c.id)

    def create_comment(self, number: int, body: str) -> Comment:
        data = self.client.post(f"{self._repo}/issues/{number}/comments", {"body": body})
        return self._comment(data)

    def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        data = self.client.patch(f"{self._repo}/issues/comments/{comment_id}", {"body": body})
        if data is None:  # some Gitea versions answer 204 when the body did not change
            return Comment(id=comment_id, body=body)
        return self._comment(data)

    # commit statuses -------------------------------------------------------------------

    def set_commit_status(self, status: CommitStatus) -> None:
        data = {
            "state": status.state,
            "context": status.context,
            "description": status.description,
        }
        if status.target_url:
            data["target_url"] = status.target_url
        self.client.post(f"{self._repo}/statuses/{quote(status.sha, safe='')}", data)

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        found = self.client.get_all(
            f"{self._repo}/commits/{quote(sha, safe='')}/status",
            items=lambda combined: list(combined.get("statuses") or []),
        )
        latest: dict[str, tuple[int, CommitStatus]] = {}
        for s in found:
            context = text(s.get("context"))
            ident = int(s.get("id") or 0)
            if context in latest and latest[context][0] >= ident:
                continue
            latest[context] = (
                ident,
                CommitStatus(
                    sha=sha,
                    context=context,
                    state=_STATES.get(text(s.get("status") or s.get("state")), "error"),
                    description=text(s.get("description")),
                    target_url=text(s.get("target_url")),
                ),
            )
        return [latest[c][1] for c in sorted(latest)]

    # translation -----------------------------------------------------------------------

    @staticmethod
    def _pull(data: Any) -> PullRequest:
        state: PullState
        if data.get("merged") or data.get("merged_at"):
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
