"""Plain-text rendering of plans and findings, for terminals.

Part of the pure core: a pure function of the plan. Colour (ANSI) only when the caller asks
(``color=True``): the command decides from ``isatty``, this module never looks. Summary first,
then waves → clusters → pools → batches, so the first screen answers "what will happen".
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops.drift import Finding
from gitops.facts import PoolFingerprints
from gitops.plan._format import (
    describe,
    drift_line,
    finding_counts,
    fingerprints,
    headline,
    iso,
    kind_counts,
    plural,
    status_line,
    when,
)
from gitops.plan.model import Plan, Wait

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}
_STATUS_COLOUR = {
    "converged": "green",
    "complete": "green",
    "in-progress": "cyan",
    "active": "cyan",
    "soaking": "blue",
    "waiting": "yellow",
    "queued": "yellow",
    "pending": "dim",
    "blocked": "yellow",
    "paused": "yellow",
    "unknown": "red",
    "stopped": "red",
    "halted": "red",
    "refused": "red",
}
_SEVERITY_COLOUR = {"error": "red", "warning": "yellow", "info": "dim"}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def status(self, status: str) -> str:
        return self(status, _STATUS_COLOUR.get(status, "bold"))


def render(plan: Plan, *, color: bool = False, findings: bool = True) -> str:
    """The plan as text; ``findings=False`` leaves the findings list out."""
    paint = _Painter(color)
    lines = [
        paint(f"Plan {plan.id}", "bold")
        + f" for fleet {plan.fleet}"
        + (f" at {plan.fleet_revision}" if plan.fleet_revision else "")
        + f" (planner v{plan.planner_version}, {iso(plan.now)})",
        "Status: " + paint(status_line(plan), _STATUS_COLOUR.get(plan.status, "bold")),
        "Summary: " + headline(plan),
    ]
    if plan.override:
        lines.append("Override: " + paint(plan.override, "yellow"))
    kinds = kind_counts(plan.actions())
    if kinds:
        lines.append("  " + ", ".join(f"{n} {kind}" for kind, n in kinds))
    lines.append("Drift: " + drift_line(plan))
    for wave in plan.waves:
        lines.append("")
        head = f"Wave {wave.index} {wave.name}: " + paint.status(wave.status)
        if wave.max_clusters_in_parallel:
            head += f" (at most {plural(wave.max_clusters_in_parallel, 'cluster')} at once)"
        if wave.reason:
            head += f" - {wave.reason}"
        if wave.soak_until is not None:
            head += f", until {when(wave.soak_until, plan.now)}"
        if wave.next_start is not None:
            head += f"; can start next {when(wave.next_start, plan.now)}"
        lines.append(head)
        for cluster in wave.clusters:
            head = f"  Cluster {paint(cluster.name, 'bold')}: " + paint.status(cluster.status)
            if cluster.reason:
                head += f" - {cluster.reason}"
            if cluster.soak_until is not None:
                head += f", until {when(cluster.soak_until, plan.now)}"
            if cluster.window:
                head += f" - {cluster.window}"
            lines.append(head)
            for pool in cluster.pools:
                counts = (
                    f"{pool.image}, {pool.replicas} replicas, maxSurge {pool.max_surge}, "
                    f"maxUnavailable {pool.max_unavailable}; {pool.machines} machines, "
                    f"{pool.available} available, {pool.outdated} outdated, "
                    f"{pool.drifted} drifted{fingerprints(pool)}"
                )
                head = f"    Pool {pool.name}: {paint.status(pool.status)} ({counts})"
                if pool.reason:
                    head += f" - {pool.reason}"
                lines.append(head)
                for batch in pool.batches:
                    note = "projected" if batch.projected else "now"
                    if batch.note:
                        note += f", {batch.note}"
                    lines.append(f"      Batch {batch.index} ({note})")
                    for action in batch.actions:
                        if isinstance(action, Wait):
                            mark = paint("…", "yellow")
                        elif action.ready:
                            mark = paint("▶", "green")
                        else:
                            mark = paint("○", "dim")
                        lines.append(f"        {mark} {describe(action, plan.now)}")
                        detail = action.reason
                        if action.budget:
                            detail += f" [{action.budget}]"
                        lines.append("            " + paint(detail, "dim"))
    if findings and plan.findings:
        lines.append("")
        lines.append(render_findings(plan.findings, color=color).rstrip("\n"))
    return "\n".join(lines) + "\n"


def render_findings(findings: Sequence[Finding], *, color: bool = False) -> str:
    """Findings grouped by cluster, most severe kinds first within each node."""
    paint = _Painter(color)
    drift = sum(1 for f in findings if f.is_drift)
    counts = ", ".join(f"{n} {kind}" for kind, n in finding_counts(findings))
    lines = [
        paint(f"Findings: {len(findings)}", "bold")
        + (f" ({counts}); {drift} are drift" if findings else "; none")
    ]
    cluster = None
    for f in findings:
        if f.cluster != cluster:
            cluster = f.cluster
            lines.append(f"  {paint(cluster, 'bold')}")
        severity = paint(f"{f.severity:<7}", _SEVERITY_COLOUR[f.severity])
        lines.append(
            f"    {severity} {f.kind:<16} {f.message} -> {f.remediation} "
            + paint(f"[{f.fingerprint}]", "dim")
        )
    return "\n".join(lines) + "\n"


def render_fingerprints(prints: Sequence[PoolFingerprints]) -> str:
    """The table of ``gitops drift --fingerprints``: one row per pool, then the odd nodes out."""
    rows = [("CLUSTER", "POOL", "NODES", "FINGERPRINTS", "COMMON", "ODD NODES")]
    for p in prints:
        odd = ", ".join(o.node for o in p.odd) or "-"
        rows.append((p.cluster, p.pool, str(p.nodes), str(p.distinct), p.common or "-", odd))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    for p in prints:
        for o in p.odd:
            lines.append(f"{p.cluster}/{p.pool}/{o.node} ({o.fingerprint}):")
            lines += [
                f"  {fact}: {seen} (most nodes: {common})" for fact, common, seen in o.differs
            ]
    uniform = sum(1 for p in prints if p.distinct <= 1)
    lines.append(f"Pools with one fingerprint: {uniform} of {len(prints)}")
    return "\n".join(lines) + "\n"
