"""Publishing a pull request's plan: the sticky comment, the full copy, the per-cluster statuses.

Shell layer (report side of the bot). Used by ``gitops plan --pr N`` in a CI job and by the
controller's sweep of open pull requests (``gitops.bot.service``). The decisions are in
``gitops.bot.plans``; this module does the requests, in an order that keeps a crash harmless:

1. list the pull request's comments; when the sticky comment's marker already names this head
   and this plan, stop: nothing is sent at all;
2. when the plan does not fit the comment, commit the full plan to ``plans/pr-<N>.md`` on the
   status branch (its other files untouched) and link it by commit (a permalink);
3. set one commit status per cluster on the head;
4. create or edit the sticky comment last: its marker records that everything before it was
   done, so a failure in 2 or 3 is retried on the next run instead of being forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitops.bot import links, plans
from gitops.fleet import FleetError
from gitops.fleet.loader import discover
from gitops.forge.base import Comment, CommitStatus, Forge, PullRequest
from gitops.gitrepo.branches import Branches
from gitops.plan import Plan

log = logging.getLogger("gitops.bot")

DEFAULT_STATUS_BRANCH = "gitops/status"


def plan_path(number: int) -> str:
    return f"plans/pr-{number}.md"


def pull_refs(kind: str, pr: PullRequest) -> list[str]:
    """Refs that may hold a pull request's head: its branch, then the platform's own ref."""
    own = (
        f"refs/merge-requests/{pr.number}/head"
        if kind == "gitlab"
        else f"refs/pull/{pr.number}/head"
    )
    return [f"refs/heads/{pr.head_ref}", own]


def cluster_names(root: Path) -> tuple[str, ...]:
    """The names of the Cluster documents under ``root``, read leniently (for an invalid fleet).

    An invalid fleet cannot be loaded, yet its clusters still deserve a failing status each;
    documents that do not parse are skipped.
    """
    names: set[str] = set()
    reader = YAML(typ="safe")
    for rel in discover(root, []):
        try:
            for doc in reader.load_all((root / rel).read_text(encoding="utf-8")):
                if isinstance(doc, dict) and doc.get("kind") == "Cluster":
                    name = (doc.get("metadata") or {}).get("name")
                    if isinstance(name, str) and name:
                        names.add(name)
        except (OSError, UnicodeDecodeError, YAMLError, AttributeError):
            continue
    return tuple(sorted(names))


@dataclass(frozen=True)
class Published:
    """What one publication did."""

    action: Literal["create", "update", "none"]
    comment: Comment | None = None
    statuses: tuple[CommitStatus, ...] = ()
    lines_cut: int = 0
    full_plan_url: str = ""


class PlanPublisher:
    """Publishes plans on the pull requests of one forge repository."""

    def __init__(
        self,
        forge: Forge,
        *,
        branches: Branches | None = None,
        status_branch: str = DEFAULT_STATUS_BRANCH,
    ) -> None:
        self.forge = forge
        self.branches = branches
        self.status_branch = status_branch

    def publish(
        self, pr: PullRequest, outcome: Plan | FleetError, *, clusters: Iterable[str] = ()
    ) -> Published:
        """Upsert the sticky comment and the statuses for ``pr`` at its head.

        ``outcome`` is the plan of the head, or the error of an invalid head; ``clusters``
        names the clusters that get a failing status when the head is invalid.
        """
        head = pr.head_sha
        if isinstance(outcome, FleetError):
            plan_id = plans.invalid_id(outcome.problems)
            text = plans.invalid_markdown(outcome.problems, pr=pr.number, head_sha=head)
        else:
            plan_id = outcome.id
            text = plans.full_markdown(outcome, pr=pr.number, head_sha=head)
        decision = plans.decide(self.forge.comments(pr.number), head, plan_id)
        if decision.action == "none":
            log.info(
                "The plan comment of pull request #%d already shows plan %s at %s; nothing to send.",
                pr.number,
                plan_id,
                head[:12],
            )
            return Published("none")
        limit = self.forge.max_body_chars
        link = ""
        if plans.needs_full_copy(text, limit, head, plan_id):
            link = self._full_copy(pr, text, plan_id)
        if isinstance(outcome, FleetError):
            statuses = plans.invalid_statuses(clusters, head, len(outcome.problems), pr.url)
        else:
            statuses = plans.plan_statuses(outcome, head, pr.url)
        for status in statuses:
            self.forge.set_commit_status(status)
        body, cut = plans.comment_body(head, plan_id, text, limit, link)
        if decision.action == "update" and decision.comment_id is not None:
            comment = self.forge.update_comment(pr.number, decision.comment_id, body)
        else:
            comment = self.forge.create_comment(pr.number, body)
        log.info(
            "%s the plan comment of pull request #%d: plan %s at %s, %d status(es)%s.",
            "Updated" if decision.action == "update" else "Posted",
            pr.number,
            plan_id,
            head[:12],
            len(statuses),
            f", {cut} lines cut (full plan at {link})" if cut else "",
        )
        return Published(decision.action, comment, statuses, cut, link)

    def _full_copy(self, pr: PullRequest, text: str, plan_id: str) -> str:
        """Commit the full plan to the status branch; a link to it (or where it is)."""
        path = plan_path(pr.number)
        if self.branches is None:
            return ""
        commit = self.branches.put(
            self.status_branch,
            path,
            text,
            f"Full plan of pull request #{pr.number} at {pr.head_sha[:12]}",
            fleet_revision=pr.head_sha,
            plan_id=plan_id,
        )
        repository = links.repository_url(self.forge.kind, pr.url)
        url = links.file_url(self.forge.kind, repository, commit, path)
        return url or f"`{path}` on the branch `{self.status_branch}` (commit `{commit[:12]}`)"
