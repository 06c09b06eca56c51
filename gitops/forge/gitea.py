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

Gitea names no next page of the combined status (no ``Link``; only ``X-Total-Count``), so
``ApiClient.get_all`` asks for the next page number while fewer items than that count have
been read: with more than 50 clusters (Gitea's largest page) every status is still seen.

Closing a pull request that was merged meanwhile is answered 412; ``close_pull_request``
returns it as it is (merged). Gitea's list of pull requests has no head-branch filter, so
``find_pull_request`` lists the open ones and picks the branch. Gitea names a status's state
``status`` in its answers (and ``state`` in requests). Status states read: ``warning`` →
failure (not a success; Gitea ranks it between failure and pending), ``skipped`` → success,
unknown → error.

``max_body_chars``: Gitea documents no limit on comment or pull-request bodies (they are stored
as long text); 65,536, GitHub's limit, is used so that a body accepted here is accepted on every
platform.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gitops.forge._util import text
from gitops.forge.base import Comment, CommitState, CommitStatus, PullRequest
from gitops.forge.errors import Invalid
from gitops.forge.github import GitHub

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


class Gitea(GitHub):
    """Gitea's API follows GitHub's; what differs is overridden here (see the module text)."""

    kind = "gitea"
    max_body_chars = 65_536
    max_status_description = None

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

    def close_pull_request(self, number: int) -> PullRequest:
        try:
            return super().close_pull_request(number)
        except Invalid as e:
            # 412 "cannot change state of this pull request, it was already merged": someone
            # merged it first; it is not open, which is what closing asked for.
            if e.status != 412:
                raise
            return self.pull_request(number)

    def comments(self, number: int) -> list[Comment]:
        return sorted(super().comments(number), key=lambda c: c.id)

    def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        data = self.client.patch(f"{self._repo}/issues/comments/{comment_id}", {"body": body})
        if data is None:  # some Gitea versions answer 204 when the body did not change
            return Comment(id=comment_id, body=body)
        return self._comment(data)

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

    @staticmethod
    def _merged(data: Any) -> bool:
        return bool(data.get("merged") or data.get("merged_at"))
