"""GitLab (REST v4, gitlab.com or self-managed) behind the ``Forge`` interface.

Adapter layer. The project is addressed by its URL-encoded path (``group%2Fsub%2Fproject``).
Endpoints used, relative to ``https://HOST/api/v4``:

    GET  /projects/{id}/merge_requests?state=opened|all&source_branch=B         (pages)
    GET  /projects/{id}/merge_requests/{iid}
    POST /projects/{id}/merge_requests          {source_branch, target_branch, title, description}
    PUT  /projects/{id}/merge_requests/{iid}    {title, description} or {state_event: close}
    GET  /projects/{id}/merge_requests/{iid}/notes?sort=asc&order_by=created_at  (pages)
    POST /projects/{id}/merge_requests/{iid}/notes           {body}
    PUT  /projects/{id}/merge_requests/{iid}/notes/{note_id} {body}
    POST /projects/{id}/statuses/{sha}          {state, name, description, target_url}
    GET  /projects/{id}/repository/commits/{sha}/statuses   latest per name (pages)

Translations:

* merge request ``opened`` and ``locked`` (a merge in progress) are ``open``.
* system notes ("added 1 commit", "changed the description") are not comments: left out.
* commit status states written: pending→pending, success→success, failure→failed,
  error→failed. GitLab has no "the check itself broke" state; ``canceled`` would tell a human
  someone stopped it, which is false, so an error is written as ``failed`` and reads back as
  ``failure``. Read: running→pending, failed→failure, canceled→error, skipped→success (a skipped
  job does not block a merge on GitLab either), anything unknown→error.
* GitLab refuses a status that repeats the current ``pending`` or ``running`` state of the same
  name with 400 "Cannot transition status via :enqueue from :pending"; the status is already
  what was asked, so ``set_commit_status`` treats that answer as done.
* A status ``description`` or ``target_url`` longer than 255 characters is refused with 400.
  The description is cut to 255; a longer target URL is left out, since a cut URL would link
  to a page that does not exist.
* While one status of a commit is being written GitLab holds a lock on the commit and answers
  another write 409 "Another update to this commit status is in progress". Nothing was
  written, so ``set_commit_status`` sends it again, ``STATUS_CONFLICT_TRIES`` times at most
  with waits doubling from half a second (on the client's limiter, so tests run in virtual
  time); past that the ``Unavailable`` (Transient) reaches the caller, who requeues.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from gitops.forge._util import text
from gitops.forge.base import Comment, CommitState, CommitStatus, Forge, PullRequest, PullState
from gitops.forge.errors import BadConfig, Invalid, Unavailable
from gitops.forge.http import ApiClient

DEFAULT_URL = "https://gitlab.com"
API_PREFIX = "/api/v4"
#: GitLab.com answers 429 with Retry-After when pressed; no fixed spacing is documented.
MIN_WRITE_INTERVAL = 0.0
#: The longest status ``description`` and ``target_url`` GitLab accepts (longer: 400).
MAX_STATUS_FIELD = 255
#: Tries of one status write answered 409 "another update ... is in progress".
STATUS_CONFLICT_TRIES = 4

_WRITE_STATES: dict[CommitState, str] = {
    "pending": "pending",
    "success": "success",
    "failure": "failed",
    "error": "failed",
}
_READ_STATES: dict[str, CommitState] = {
    "created": "pending",
    "waiting_for_resource": "pending",
    "preparing": "pending",
    "pending": "pending",
    "running": "pending",
    "manual": "pending",
    "scheduled": "pending",
    "success": "success",
    "skipped": "success",
    "failed": "failure",
    "canceled": "error",
}
_PULL_STATES: dict[str, PullState] = {
    "opened": "open",
    "locked": "open",
    "closed": "closed",
    "merged": "merged",
}


class GitLab(Forge):
    kind = "gitlab"
    #: GitLab's limit on a note or merge request description.
    max_body_chars = 1_000_000

    def __init__(self, client: ApiClient, slug: str) -> None:
        path = slug.strip("/")
        if "/" not in path:
            raise BadConfig(f"The GitLab project path {slug!r} is not of the form GROUP/NAME.")
        self.client = client
        self.slug = path
        self._project = f"projects/{quote(path, safe='')}"

    def close(self) -> None:
        self.client.close()

    # pull requests ---------------------------------------------------------------------

    def pull_request(self, number: int) -> PullRequest:
        return self._pull(self.client.get(f"{self._project}/merge_requests/{number}"))

    def pull_requests(self, *, state: Literal["open", "all"] = "open") -> list[PullRequest]:
        found = self.client.get_all(
            f"{self._project}/merge_requests", {"state": "opened" if state == "open" else "all"}
        )
        return sorted((self._pull(m) for m in found), key=lambda p: p.number)

    def find_pull_request(self, head_ref: str) -> PullRequest | None:
        found = self.client.get_all(
            f"{self._project}/merge_requests", {"state": "opened", "source_branch": head_ref}
        )
        # A merge request from a fork has the same source branch name but another source project.
        mine = [
            self._pull(m)
            for m in found
            if m.get("source_project_id") == m.get("target_project_id")
            and m.get("source_branch") == head_ref
        ]
        return min(mine, key=lambda p: p.number) if mine else None

    def open_pull_request(
        self, *, head_ref: str, base_ref: str, title: str, body: str
    ) -> PullRequest:
        data = {
            "source_branch": head_ref,
            "target_branch": base_ref,
            "title": title,
            "description": body,
        }
        return self._pull(self.client.post(f"{self._project}/merge_requests", data))

    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        data = {k: v for k, v in (("title", title), ("description", body)) if v is not None}
        if not data:
            return self.pull_request(number)
        return self._pull(self.client.put(f"{self._project}/merge_requests/{number}", data))

    def close_pull_request(self, number: int) -> PullRequest:
        data = {"state_event": "close"}
        return self._pull(self.client.put(f"{self._project}/merge_requests/{number}", data))

    # comments --------------------------------------------------------------------------

    def comments(self, number: int) -> list[Comment]:
        found = self.client.get_all(
            f"{self._project}/merge_requests/{number}/notes",
            {"sort": "asc", "order_by": "created_at"},
        )
        return [self._comment(n) for n in found if not n.get("system")]

    def create_comment(self, number: int, body: str) -> Comment:
        data = self.client.post(f"{self._project}/merge_requests/{number}/notes", {"body": body})
        return self._comment(data)

    def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        data = self.client.put(
            f"{self._project}/merge_requests/{number}/notes/{comment_id}", {"body": body}
        )
        return self._comment(data)

    # commit statuses -------------------------------------------------------------------

    def set_commit_status(self, status: CommitStatus) -> None:
        data = {
            "state": _WRITE_STATES[status.state],
            "name": status.context,
            "description": status.description[:MAX_STATUS_FIELD],
        }
        if status.target_url and len(status.target_url) <= MAX_STATUS_FIELD:
            data["target_url"] = status.target_url
        retrying = Retrying(
            stop=stop_after_attempt(STATUS_CONFLICT_TRIES),
            wait=wait_exponential(multiplier=0.5, max=4),
            retry=retry_if_exception(_write_in_progress),
            sleep=self.client.limiter.sleep,
            reraise=True,
        )
        try:
            retrying(
                self.client.post, f"{self._project}/statuses/{quote(status.sha, safe='')}", data
            )
        except Invalid as e:
            if e.status == 400 and "cannot transition status" in e.platform_message.lower():
                return
            raise

    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        found = self.client.get_all(
            f"{self._project}/repository/commits/{quote(sha, safe='')}/statuses"
        )
        latest: dict[str, tuple[int, CommitStatus]] = {}
        for s in found:
            name = text(s.get("name"))
            ident = int(s.get("id") or 0)
            if name in latest and latest[name][0] >= ident:
                continue
            latest[name] = (
                ident,
                CommitStatus(
                    sha=sha,
                    context=name,
                    state=_READ_STATES.get(text(s.get("status")), "error"),
                    description=text(s.get("description")),
                    target_url=text(s.get("target_url")),
                ),
            )
        return [latest[n][1] for n in sorted(latest)]

    # translation -----------------------------------------------------------------------

    @staticmethod
    def _pull(data: Any) -> PullRequest:
        return PullRequest(
            number=int(data["iid"]),
            title=text(data.get("title")),
            body=text(data.get("description")),
            state=_PULL_STATES.get(text(data.get("state")), "closed"),
            head_ref=text(data.get("source_branch")),
            head_sha=text(data.get("sha")),
            base_ref=text(data.get("target_branch")),
            url=text(data.get("web_url")),
            author=text((data.get("author") or {}).get("username")),
        )

    @staticmethod
    def _comment(data: Any) -> Comment:
        # A note's JSON has no web URL; building one would cost a request for the MR's.
        return Comment(
            id=int(data["id"]),
            body=text(data.get("body")),
            author=text((data.get("author") or {}).get("username")),
        )


def _write_in_progress(error: BaseException) -> bool:
    """GitLab's 409 while another write to the commit's statuses holds its lock."""
    return isinstance(error, Unavailable) and error.status == 409
