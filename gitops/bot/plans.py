"""The plan on a pull request: one sticky comment, one commit status per cluster.

Part of the bot's pure core: functions of a plan (or of the problems of an invalid fleet), of
the comments already on the pull request and of the platform's limits. ``gitops.bot.prplan``
does the requests.

- The comment starts with the marker ``<!-- gitops:plan head=<sha> plan=<id> -->``; the bot
  finds its comment by it and edits it in place on every push. When the marker already names
  the head and the plan, nothing is sent at all (:func:`decide`).
- It fits ``Forge.max_body_chars``: when the full rendering does not, it is cut at a line,
  any ``<details>`` left open are closed, and a tail says exactly how many lines of the full
  plan are not shown and where the full plan is (:func:`fit`).
- Each cluster gets its own status context ``gitops/plan/<cluster>``, so clusters never
  overwrite each other: success when its plan is valid, failure when the fleet at the head is
  invalid or the plan refuses to act (:func:`plan_statuses`, :func:`invalid_statuses`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from gitops.bot.markers import find, marker
from gitops.fleet import Problem
from gitops.forge.base import Comment, CommitState, CommitStatus
from gitops.plan import Plan, Wait, markdown
from gitops.plan.model import ClusterPlan

KIND = "plan"
CONTEXT_PREFIX = "gitops/plan/"
DESCRIPTION_LIMIT = 140  # GitHub's limit for a commit status description
_UNLIMITED = 1 << 40


def context(cluster: str) -> str:
    return f"{CONTEXT_PREFIX}{cluster}"


def full_markdown(plan: Plan, *, pr: int, head_sha: str) -> str:
    """The whole plan as Markdown (never truncated): what the status branch keeps."""
    intro = f"Plan of pull request #{pr} at `{head_sha}`, against the live fleet.\n\n"
    return intro + markdown.render(plan, budget=_UNLIMITED)


def invalid_markdown(problems: Sequence[Problem], *, pr: int, head_sha: str) -> str:
    """The comment text when the fleet at the head does not validate."""
    count = len(problems)
    lines = [
        f"### gitops plan: the fleet at `{head_sha[:12]}` is invalid",
        "",
        f"Pull request #{pr} cannot be planned: {count} problem{'s' if count != 1 else ''} "
        "(run `gitops validate` locally to see the same list).",
        "",
        "```",
        *(str(p) for p in problems),
        "```",
        "",
    ]
    return "\n".join(lines)


def invalid_id(problems: Sequence[Problem]) -> str:
    """A stable id for a set of problems, so an unchanged invalid head is not re-sent."""
    text = "\n".join(str(p) for p in problems)
    return "invalid-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def tail(lines: int, link: str) -> str:
    where = f"the full plan is at {link}" if link else "run `gitops plan` for the full plan"
    return f"\n… {lines} more lines not shown; {where}\n"


def fit(text: str, limit: int, link: str) -> tuple[str, int]:
    """``text`` cut at a line to at most ``limit`` characters; (body, lines left out).

    Open ``<details>`` are closed and the tail counts the lines of ``text`` not shown.
    """
    if len(text) <= limit:
        return text, 0
    lines = text.splitlines(keepends=True)
    worst_tail = len(tail(len(lines), link))
    kept: list[str] = []
    size = 0
    open_details = 0
    for line in lines:
        opened = open_details + line.count("<details>") - line.count("</details>")
        closers = len("\n</details>\n") * max(0, opened)
        if size + len(line) + closers + worst_tail > limit:
            break
        kept.append(line)
        size += len(line)
        open_details = opened
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    body += "\n</details>\n" * max(0, open_details)
    left = len(lines) - len(kept)
    return body + tail(left, link), left


def comment_body(head_sha: str, plan_id: str, text: str, limit: int, link: str) -> tuple[str, int]:
    """The sticky comment (the marker line, then ``text`` fitted into ``limit`` characters)
    and how many lines of ``text`` it leaves out."""
    head = marker(KIND, {"head": head_sha, "plan": plan_id}) + "\n"
    body, cut = fit(text, limit - len(head), link)
    return head + body, cut


def needs_full_copy(text: str, limit: int, head_sha: str, plan_id: str) -> bool:
    """Whether the comment must be cut (and the full plan be published for its link)."""
    head = marker(KIND, {"head": head_sha, "plan": plan_id}) + "\n"
    return len(head) + len(text) > limit


@dataclass(frozen=True)
class Decision:
    """What to do with the pull request's comments."""

    action: Literal["create", "update", "none"]
    comment_id: int | None = None


def decide(comments: Sequence[Comment], head_sha: str, plan_id: str) -> Decision:
    """Create the sticky comment, edit it, or leave it (same head and plan: no request)."""
    for comment in comments:
        fields = find(comment.body, KIND)
        if fields is None:
            continue
        if fields.get("head") == head_sha and fields.get("plan") == plan_id:
            return Decision("none", comment.id)
        return Decision("update", comment.id)
    return Decision("create")


def _describe_cluster(cluster: ClusterPlan, findings: int) -> str:
    kinds: Counter[str] = Counter()
    waits = 0
    for pool in cluster.pools:
        for batch in pool.batches:
            for action in batch.actions:
                if isinstance(action, Wait):
                    waits += 1
                else:
                    kinds[action.kind] += 1
    steps = sum(kinds.values())
    drift = f"; {findings} drift finding{'s' if findings != 1 else ''}" if findings else ""
    if not steps and not waits:
        return "no changes" + drift
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    text = f"{steps} action{'s' if steps != 1 else ''}" + (f" ({detail})" if detail else "")
    if waits:
        text += f", {waits} wait{'s' if waits != 1 else ''}"
    return text + drift


def _short(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def plan_statuses(plan: Plan, head_sha: str, target_url: str = "") -> tuple[CommitStatus, ...]:
    """One status per cluster of the plan, in cluster-name order."""
    stopped = plan.status in ("refused", "halted")
    out: list[CommitStatus] = []
    clusters = sorted((c for w in plan.waves for c in w.clusters), key=lambda c: c.name)
    for cluster in clusters:
        drift = sum(1 for f in plan.findings if f.cluster == cluster.name and f.is_drift)
        state: CommitState
        if stopped:
            state, text = "failure", f"{plan.status}: {plan.reason}"
        elif cluster.status == "unknown":
            # A cluster the bot cannot observe (a new one, not created yet) does not block the
            # pull request: nothing can be planned for it, and the description says so.
            state, text = "success", f"not observed, nothing planned: {cluster.reason}"
        else:
            state, text = "success", _describe_cluster(cluster, drift)
        out.append(CommitStatus(head_sha, context(cluster.name), state, _short(text), target_url))
    return tuple(out)


def invalid_statuses(
    clusters: Iterable[str], head_sha: str, problems: int, target_url: str = ""
) -> tuple[CommitStatus, ...]:
    """Failure on every cluster the head's files name (the fleet cannot be planned at all)."""
    text = f"the fleet is invalid: {problems} problem{'s' if problems != 1 else ''}"
    return tuple(
        CommitStatus(head_sha, context(name), "failure", _short(text), target_url)
        for name in sorted(set(clusters))
    )
