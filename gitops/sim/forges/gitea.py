"""The Gitea (and Forgejo) stand-in: ``/api/v1`` pulls, issue comments, commit statuses.

Tool layer (``gitops.sim.forges``): what ``gitops.forge.gitea`` talks to in tests. Gitea's API
follows GitHub's, so this extends ``FakeGitHub`` as the Gitea adapter extends the GitHub one,
and overrides only where Gitea answers otherwise: ``limit`` pages of at most 50 counted by
``X-Total-Count`` (no ``Link`` on the combined status), no rate-limit headers, its own error
bodies (``url`` to its swagger), 201 to an edit, 412 on changing a merged pull request, comments
not paginated, ``status`` for a status's state and no ``default`` context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.sim.forges.base import FakePull, FakeStatus, Refusal, Reply, Repo
from gitops.sim.forges.github import FakeGitHub


class FakeGitea(FakeGitHub):
    """Gitea (and Forgejo) ``/api/v1``: pulls, issue comments, commit statuses."""

    kind = "gitea"
    default_prefix = "/api/v1"
    page_param = "limit"
    platform_max_page_size = 50
    rate_headers = None
    free_304 = False
    status_states = ("pending", "success", "error", "failure", "warning", "skipped")
    web_pulls = "pulls"

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

    # routes ------------------------------------------------------------------------------

    def _list_pulls(self, repo: Repo, query: dict[str, str], path: str) -> Reply:
        # No head or base filter, and a state it does not know matches nothing (no 422).
        state = query.get("state", "open")
        pulls = [
            self._pull_json(repo, p)
            for p in sorted(repo.pulls.values(), key=lambda p: -p.number)
            if state in ("all", p.state)
        ]
        page, headers = self._page(pulls, query, path)
        return Reply(200, page, headers)

    def _create_pull(self, repo: Repo, body: Any, user: str) -> Reply:
        head, base, title = (self._field(body, k) for k in ("head", "base", "title"))
        if not (head and base and title):
            raise Refusal(422, self._error_body(422, "[Head Base Title]: Required"))
        if head == base:
            message = "Invalid PullRequest: There are no changes between the head and the base"
            raise Refusal(422, self._error_body(422, message))
        existing = self._open_pull_for(repo, head, base)
        if existing is not None:
            message = (
                f"pull request already exists for these targets [id: {existing.number + 1000 * repo.id}, "
                f"issue_id: {existing.number}, head_repo_id: {repo.id}, base_repo_id: {repo.id}, "
                f"head_branch: {head}, base_branch: {base}]"
            )
            raise Refusal(409, self._error_body(409, message))
        pull = self._new_pull(repo, head, base, title, self._field(body, "body"), user)
        return Reply(201, self._pull_json(repo, pull))

    def _edit_pull(self, repo: Repo, pull: FakePull, body: Any) -> Reply:
        if isinstance(body.get("title"), str) and body["title"]:
            pull.title = body["title"]  # an empty title is left as it is
        if isinstance(body.get("body"), str):
            pull.body = body["body"]
        if body.get("state") is not None:
            if pull.merged:
                message = "cannot change state of this pull request, it was already merged"
                raise Refusal(412, self._error_body(412, message))
            # EditPullRequest: "closed" closes, any other state reopens.
            pull.state = "closed" if body["state"] == "closed" else "open"
        return Reply(201, self._pull_json(repo, pull))  # Gitea answers 201 to an edit

    def _list_comments(self, repo: Repo, pull: FakePull, query: dict[str, str], path: str) -> Reply:
        comments = repo.comments[pull.number]  # not paginated on Gitea: every comment
        return Reply(
            200,
            [self._comment_json(repo, c, pull.number) for c in comments],
            {"X-Total-Count": str(len(comments))},
        )

    def _body_text(self, body: Any, resource: str) -> str:
        # No length limit is documented; an empty body fails binding.
        text = self._field(body, "body")
        if not text:
            raise Refusal(422, self._error_body(422, "[Body]: Required"))
        return text

    def _create_status(self, repo: Repo, sha: str, body: Any, user: str) -> Reply:
        state = self._field(body, "state")
        if state not in self.status_states:
            # CreateStatusOption binds ``state`` with no validation tag, so this is not
            # a 422 binding error; 400 is the only refusal Gitea documents here.
            raise Refusal(400, self._error_body(400, f"invalid commit status state {state!r}"))
        # Gitea has no "default" context, unlike GitHub.
        context = self._field(body, "context")
        return Reply(
            201, self._status_json(self._add_status(repo, sha, context, state, body, user))
        )

    def _combined_status(self, repo: Repo, ref: str, query: dict[str, str], path: str) -> Reply:
        latest = self._latest_statuses(repo, ref)
        if not latest:
            # An empty api.CombinedStatus{}: zero values, no X-Total-Count.
            empty = {"state": "", "sha": "", "total_count": 0, "statuses": None}
            return Reply(200, {**empty, "repository": None, "commit_url": "", "url": ""})
        # routers/api/v1/repo/status.go sets X-Total-Count here and no Link header;
        # convert.ToCombinedStatus counts and combines the statuses of this page only.
        page, headers = self._page([self._status_json(s) for s in latest], query, path, link=False)
        states = {x["status"] for x in page}
        worst = next(
            (s for s in ("error", "failure", "warning", "pending") if s in states),
            "success" if page else "",
        )
        data = {"state": worst, "sha": ref, "total_count": len(page), "statuses": page}
        return Reply(200, data, headers)

    def _status_history(self, repo: Repo, ref: str, query: dict[str, str], path: str) -> Reply:
        # Not served: the Gitea adapter reads only the combined status.
        raise self._not_found()

    # answers -----------------------------------------------------------------------------

    def _pull_json(self, repo: Repo, pull: FakePull) -> dict[str, Any]:
        data = super()._pull_json(repo, pull)
        del data["url"]  # Gitea's pull request has no API ``url``
        data["body"] = pull.body  # an empty body is "", not null
        data["head"]["label"] = pull.head_ref  # labels are bare branch names
        data["base"]["label"] = pull.base_ref
        return data

    @staticmethod
    def _status_json(status: FakeStatus) -> dict[str, Any]:
        # Gitea answers ``status`` (requests say ``state``) and sends empty strings, not null.
        data = FakeGitHub._status_json(status)
        return {("status" if k == "state" else k): v for k, v in data.items()} | {
            "description": status.description,
            "target_url": status.target_url,
        }
