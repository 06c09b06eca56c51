"""Drift pull requests: which findings to report, the drift file, the body, what to do.

Part of the bot's pure core (``gitops.bot.service`` does the git and forge requests). For each
cluster with unresolved drift the bot keeps one pull request from ``gitops/drift/<cluster>``
whose commit writes ``drift/<cluster>.yaml`` (the findings, machine-readable) and whose body
renders them. The rules, in the order they apply:

1. **Persistence.** A finding is reported only once it was seen in ``required`` consecutive
   observations of its cluster (:class:`Persistence`); a finding missing from one observation
   starts again from zero. Observations of a cluster that could not be observed (Unknown) are
   skipped: they neither count nor reset. The counters live in memory, so a restarted
   controller counts again from zero (a report is delayed, never lost or duplicated: the pull
   request itself is found again on the forge).
2. **Acknowledgement.** Findings whose fingerprints are in ``drift/<cluster>.yaml`` on the
   watched branch (merged from an earlier drift pull request) are acknowledged: shown as such,
   and they alone never open or keep open a pull request. A new or changed finding (another
   fingerprint) is reported again, with the acknowledged ones listed beside it.
3. **Idempotence.** The report's fingerprint (a hash of the reported findings' fingerprints
   and which of them are acknowledged) sits in a hidden marker of the body; the pull request
   is updated only when it differs, and closed with a comment once nothing is left to report.
4. **Humans win.** When the tip of the drift branch is not the bot's commit, the bot does not
   push; it comments once per human commit instead (:func:`decide`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitops.bot.markers import find, marker
from gitops.drift import Finding
from gitops.plan import Plan, Wait
from gitops.plan._format import describe

KIND = "drift"
HUMAN_KIND = "drift-human"
SCHEMA_VERSION = "gitops.drift-report/v1"
DEFAULT_PERSISTENCE = 2


def branch(cluster: str) -> str:
    return f"gitops/drift/{cluster}"


def path(cluster: str) -> str:
    return f"drift/{cluster}.yaml"


class Persistence:
    """Consecutive observations of each finding, per cluster (memory only; see rule 1)."""

    def __init__(self, required: int = DEFAULT_PERSISTENCE) -> None:
        if required < 1:
            raise ValueError("a finding must persist for at least one observation")
        self.required = required
        self._seen: dict[str, dict[str, int]] = {}

    def observe(self, cluster: str, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        """Count one observation of ``cluster``; the findings seen ``required`` times running."""
        before = self._seen.get(cluster, {})
        now: dict[str, int] = {}
        persisted: list[Finding] = []
        for finding in sorted(findings, key=Finding.sort_key):
            count = before.get(finding.fingerprint, 0) + 1
            now[finding.fingerprint] = count
            if count >= self.required:
                persisted.append(finding)
        self._seen[cluster] = now
        return tuple(persisted)

    def count(self, cluster: str, fingerprint: str) -> int:
        return self._seen.get(cluster, {}).get(fingerprint, 0)


@dataclass(frozen=True)
class Report:
    """What one cluster's drift pull request should say."""

    cluster: str
    findings: tuple[Finding, ...]  # persistent drift, sorted
    acknowledged: frozenset[str] = field(default_factory=frozenset)

    @property
    def new(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fingerprint not in self.acknowledged)

    @property
    def wanted(self) -> bool:
        """Whether a pull request should be open: something not yet acknowledged."""
        return bool(self.new)

    @property
    def fingerprint(self) -> str:
        text = "\n".join(
            f"{f.fingerprint} {'ack' if f.fingerprint in self.acknowledged else 'new'}"
            for f in self.findings
        )
        return hashlib.sha256(f"{self.cluster}\n{text}".encode()).hexdigest()[:16]


def unresolved(findings: Iterable[Finding], cluster: str) -> tuple[Finding, ...]:
    """The cluster's drift findings (not Outdated, not Unknown), sorted."""
    return tuple(
        sorted((f for f in findings if f.cluster == cluster and f.is_drift), key=Finding.sort_key)
    )


def _yaml() -> YAML:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    return yaml


def render_file(report: Report) -> str:
    """``drift/<cluster>.yaml``: every reported finding; merging it acknowledges them."""
    document: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "cluster": report.cluster,
        "findings": [
            {
                "fingerprint": f.fingerprint,
                "kind": f.kind,
                "pool": f.pool,
                "node": f.node,
                "fact": f.fact,
                "expected": f.expected,
                "observed": f.observed,
                "severity": f.severity,
                "remediation": f.remediation,
            }
            for f in report.findings
        ],
    }
    out = io.StringIO()
    out.write(
        f"# Drift found in cluster {report.cluster} by the gitops controller.\n"
        "# Merging this file acknowledges these findings: they are not reported again until\n"
        "# they change. Remove an entry (or the file) to have it reported again.\n"
    )
    _yaml().dump(document, out)
    return out.getvalue()


def acknowledged(text: bytes | str | None) -> frozenset[str]:
    """The fingerprints a merged drift file lists (empty for no file or an unreadable one)."""
    if not text:
        return frozenset()
    try:
        data = YAML(typ="safe").load(text if isinstance(text, str) else text.decode())
    except (YAMLError, UnicodeDecodeError):
        return frozenset()
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        return frozenset()
    return frozenset(
        str(item["fingerprint"])
        for item in data["findings"]
        if isinstance(item, dict) and item.get("fingerprint")
    )


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or "—"


def action_taken(finding: Finding, plan: Plan | None) -> str:
    """What the controller does about ``finding``: from the plan, else from its remediation."""
    if plan is not None:
        remedies = [
            a
            for a in plan.actions()
            if not isinstance(a, Wait)
            and a.cluster == finding.cluster
            and (a.finding == finding.fingerprint or (finding.node and a.subject == finding.node))
        ]
        if remedies:
            first = remedies[0]
            when = "under way" if first.ready else "pending"
            return f"{when}: {describe(first, plan.now)}"
        if plan.status in ("halted", "refused") and finding.remediation != "report":
            return f"pending: the rollout is {plan.status}"
    if finding.remediation == "report":
        return "none: reported only (policy)"
    if finding.remediation == "scale":
        return "pending: the pool is scaled to its replicas"
    return "pending: replacement not planned yet"


def _expected(f: Finding) -> str:
    return f"{f.fact}: {f.expected}" if f.fact else f.expected


def render_body(report: Report, plan: Plan | None, limit: int) -> str:
    """The pull request's body: marker, summary, the findings table; within ``limit``."""
    head = marker(KIND, {"cluster": report.cluster, "fingerprint": report.fingerprint})
    new, acked = len(report.new), len(report.findings) - len(report.new)
    lines = [
        head,
        f"### Drift in cluster `{report.cluster}`",
        "",
        f"{new} new finding{'s' if new != 1 else ''}"
        + (f" and {acked} acknowledged" if acked else "")
        + f", each seen in consecutive observations of the live cluster. This pull request "
        f"writes them to `{path(report.cluster)}`; **merging it acknowledges them** (they are "
        "not reported again until they change). The bot updates it while the drift changes "
        "and closes it once the drift is gone.",
        "",
        "| | Node | Kind | Expected | Observed | Action taken or pending |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for f in report.findings:
        state = "acknowledged" if f.fingerprint in report.acknowledged else "new"
        where = f.node or (f"pool {f.pool}" if f.pool else f.cluster)
        rows.append(
            f"| {state} | {_cell(where)} | {f.kind} | {_cell(_expected(f))} | "
            f"{_cell(f.observed)} | {_cell(action_taken(f, plan))} |"
        )
    text = "\n".join(lines) + "\n"
    for index, row in enumerate(rows):
        more = len(rows) - index
        if len(text) + len(row) + 1 + 120 > limit:
            text += (
                f"\n… {more} more findings not shown; all of them are in "
                f"`{path(report.cluster)}` on the branch `{branch(report.cluster)}`.\n"
            )
            break
        text += row + "\n"
    return text


def body_fingerprint(body: str) -> str:
    fields = find(body, KIND)
    return fields.get("fingerprint", "") if fields else ""


def human_comment(report: Report, tip_sha: str, author: str, changed: bool) -> str:
    """The one comment left when a human's commit is the drift branch's tip."""
    head = marker(HUMAN_KIND, {"head": tip_sha})
    what = f"The drift changed ({len(report.new)} new findings now), but the" if changed else "The"
    return (
        f"{head}\n{what} tip of `{branch(report.cluster)}` is a commit by {author} "
        f"(`{tip_sha[:12]}`), so the bot will not overwrite it. It will not push to this "
        "branch again until its tip is the bot's own commit; the live findings are in the "
        "cluster's status file on the status branch.\n"
    )


def commented_on(comments: Sequence[str], tip_sha: str) -> bool:
    """Whether the bot already left its human-commit comment for ``tip_sha``."""
    return any((find(c, HUMAN_KIND) or {}).get("head") == tip_sha for c in comments)


def closing_comment(cluster: str, acknowledged_only: bool) -> str:
    if acknowledged_only:
        return (
            f"Every remaining drift finding in cluster `{cluster}` is acknowledged in "
            f"`{path(cluster)}` on the main branch; closing."
        )
    return f"The drift in cluster `{cluster}` is gone: the live cluster matches git. Closing."


Step = Literal["nothing", "open", "update", "close", "human"]


def decide(report: Report, open_fingerprint: str | None, tip_is_ours: bool | None) -> Step:
    """What to do for one cluster.

    ``open_fingerprint``: the marker fingerprint of the open drift pull request's body (None:
    no open pull request). ``tip_is_ours``: whether the drift branch's tip is the bot's commit
    (None: the branch does not exist).
    """
    if not report.wanted:
        return "nothing" if open_fingerprint is None else "close"
    if open_fingerprint == report.fingerprint:
        return "nothing"
    if tip_is_ours is False:
        return "human"
    return "open" if open_fingerprint is None else "update"
