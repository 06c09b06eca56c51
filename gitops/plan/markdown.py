"""Markdown rendering of plans and findings, for pull-request comments.

Part of the pure core: a pure function of the plan. Forges cap comment size (GitHub at 65,536
characters), so the output never exceeds ``budget`` bytes (UTF-8): the summary always comes
first and whole, then per cluster a collapsible ``<details>`` table of its actions, then the
findings; when the budget runs out the rendering stops at a row boundary, closes what it opened
and ends with a truthful tail counting exactly what was left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops.drift import Finding
from gitops.plan._format import (
    describe,
    drift_line,
    finding_counts,
    fingerprints,
    headline,
    kind_counts,
    status_line,
    when,
)
from gitops.plan.model import AnyAction, ClusterPlan, Plan, Wait

BUDGET = 60_000
# Room kept for closing tags and the "… and N more" tail, so that they always fit.
_RESERVE = 600
_ACTION_HEADER = "| | Pool | Batch | Action | Why | Budget |\n|---|---|---|---|---|---|\n"
_FINDING_HEADER = (
    "| Severity | Kind | Where | Expected | Observed | Remediation | Fingerprint |\n"
    "|---|---|---|---|---|---|---|\n"
)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


class _Writer:
    """Appends text while it fits the byte budget; remembers what did not fit."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.parts: list[str] = []
        self.size = 0
        self.full = False

    def fits(self, text: str) -> bool:
        return self.size + len(text.encode()) + _RESERVE <= self.budget

    def add(self, text: str) -> bool:
        if self.full or not self.fits(text):
            self.full = True
            return False
        self.parts.append(text)
        self.size += len(text.encode())
        return True

    def force(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text.encode())

    def text(self) -> str:
        return "".join(self.parts)


def _mark(action: AnyAction) -> str:
    if isinstance(action, Wait):
        return "⏳"
    return "▶️" if action.ready else "⏸️"


def _cluster_summary(cluster: ClusterPlan) -> tuple[int, int, int]:
    steps = ready = waits = 0
    for pool in cluster.pools:
        for batch in pool.batches:
            for action in batch.actions:
                if isinstance(action, Wait):
                    waits += 1
                else:
                    steps += 1
                    ready += action.ready
    return steps, ready, waits


def render(plan: Plan, *, budget: int = BUDGET, findings: bool = True) -> str:
    """The plan as a PR comment of at most ``budget`` bytes."""
    out = _Writer(budget)
    _summary(out, plan)
    total = sum(1 for _ in plan.actions())
    shown = _clusters(out, plan)
    shown_findings = 0
    if findings and plan.findings and not out.full:
        shown_findings = _findings_table(out, plan.findings)
    left_actions = total - shown
    left_findings = (len(plan.findings) - shown_findings) if findings else 0
    if left_actions or left_findings:
        parts = []
        if left_actions:
            parts.append(f"{left_actions} more actions")
        if left_findings:
            parts.append(f"{left_findings} more findings")
        out.force(
            f"… and {' and '.join(parts)} not shown (comment size limit); "
            "run `gitops plan -o json` for the whole plan.\n"
        )
    return out.text()


def _summary(out: _Writer, plan: Plan) -> None:
    """The head of the comment and the per-wave table: always whole, whatever the budget."""
    revision = f" at `{plan.fleet_revision}`" if plan.fleet_revision else ""
    out.force(f"### gitops plan `{plan.id}`\n\n")
    out.force(f"**Status: {_cell(status_line(plan))}**\n\n")
    out.force(f"Fleet `{plan.fleet}`{revision}, planned at {when(plan.now, plan.now)}: ")
    out.force(f"{headline(plan)}. {drift_line(plan).capitalize()}.\n\n")
    if plan.override:
        out.force(f"**Override:** {_cell(plan.override)}\n\n")
    kinds = kind_counts(plan.actions())
    if kinds:
        out.force("Actions: " + ", ".join(f"{n} {kind}" for kind, n in kinds) + ".\n\n")
    out.force("| Wave | Status | Clusters | Actions | Ready now | Waits |\n")
    out.force("|---|---|---|---|---|---|\n")
    for wave in plan.waves:
        totals = [_cluster_summary(c) for c in wave.clusters]
        status = wave.status + (f": {_cell(wave.reason)}" if wave.reason else "")
        if wave.next_start is not None:
            status += f"; can start next {when(wave.next_start, plan.now)}"
        out.force(
            f"| {wave.index}. {wave.name} | {status} | {len(wave.clusters)} | "
            f"{sum(t[0] for t in totals)} | {sum(t[1] for t in totals)} | "
            f"{sum(t[2] for t in totals)} |\n"
        )
    out.force("\n")


def _clusters(out: _Writer, plan: Plan) -> int:
    """A ``<details>`` per cluster, wave by wave, while the budget lasts; returns actions shown."""
    shown = 0
    for wave in plan.waves:
        if not out.add(f"#### Wave {wave.index}: {wave.name} ({wave.status})\n\n"):
            break
        for cluster in wave.clusters:
            steps, ready, waits = _cluster_summary(cluster)
            reason = f" — {_cell(cluster.reason)}" if cluster.reason else ""
            if cluster.window:
                reason += f" — {_cell(cluster.window)}"
            head = (
                f"<details><summary><b>{cluster.name}</b>: {cluster.status}{reason} · "
                f"{steps} actions ({ready} ready now), {waits} waits</summary>\n\n"
            )
            if not out.add(head):
                break
            shown += _cluster_body(out, plan, cluster)
            out.force("\n</details>\n\n")
            if out.full:
                break
        if out.full:
            break
    return shown


def _cluster_body(out: _Writer, plan: Plan, cluster: ClusterPlan) -> int:
    """One cluster's pools and the table of its actions; returns the actions shown."""
    pools_text = "".join(
        f"- **{p.name}** ({p.status}): `{p.image}`, {p.replicas} replicas, maxSurge "
        f"{p.max_surge}, maxUnavailable {p.max_unavailable}; {p.machines} machines, "
        f"{p.available} available, {p.outdated} outdated, {p.drifted} drifted"
        + fingerprints(p)
        + (f" — {_cell(p.reason)}" if p.reason else "")
        + "\n"
        for p in cluster.pools
    )
    out.add(pools_text + "\n")
    rows = [
        (pool.name, batch, action)
        for pool in cluster.pools
        for batch in pool.batches
        for action in batch.actions
    ]
    shown = 0
    if rows and out.add(_ACTION_HEADER):
        for pool_name, batch, action in rows:
            label = f"{batch.index}" + (" (projected)" if batch.projected else "")
            row = (
                f"| {_mark(action)} | {pool_name} | {label} | "
                f"{_cell(describe(action, plan.now))} | {_cell(action.reason)} | "
                f"{_cell(action.budget)} |\n"
            )
            if not out.add(row):
                break
            shown += 1
    return shown


def _findings_table(out: _Writer, findings: Sequence[Finding]) -> int:
    counts = ", ".join(f"{n} {kind}" for kind, n in finding_counts(findings))
    head = (
        f"<details><summary><b>Findings</b>: {len(findings)} ({counts})</summary>\n\n"
        + _FINDING_HEADER
    )
    if not out.add(head):
        return 0
    shown = 0
    for f in findings:
        row = (
            f"| {f.severity} | {f.kind} | {_cell(f.where)} | "
            f"{_cell(f.fact + ': ' if f.fact else '')}{_cell(f.expected)} | {_cell(f.observed)} | "
            f"{f.remediation} | `{f.fingerprint}` |\n"
        )
        if not out.add(row):
            break
        shown += 1
    out.force("\n</details>\n\n")
    return shown


def render_findings(findings: Sequence[Finding], *, budget: int = BUDGET) -> str:
    """Findings as a PR comment or issue body of at most ``budget`` bytes."""
    out = _Writer(budget)
    drift = sum(1 for f in findings if f.is_drift)
    out.force(f"### gitops drift: {len(findings)} findings, {drift} drift\n\n")
    if not findings:
        out.force("Every observed node matches its pool's declaration.\n")
        return out.text()
    out.force("| Kind | Count |\n|---|---|\n")
    for kind, n in finding_counts(findings):
        out.force(f"| {kind} | {n} |\n")
    out.force("\n")
    shown = _findings_table(out, findings)
    if shown < len(findings):
        out.force(
            f"… and {len(findings) - shown} more findings not shown (comment size limit); "
            "run `gitops drift -o json` for all of them.\n"
        )
    return out.text()
