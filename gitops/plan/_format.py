"""Shared wording for the plan renderers: timestamps, one-line action summaries, counts.

Part of the pure core (rendering is a pure function of the plan). No datetime or time module
here, by the core's rule; UTC calendar dates are computed from the epoch seconds directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from gitops.drift import KINDS, Finding
from gitops.fleet.quantities import format_duration
from gitops.plan.model import (
    ACTION_KINDS,
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    PauseMachineDeployment,
    Plan,
    PoolPlan,
    RetireNode,
    RollMachineDeployment,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
)


def iso(ts: float) -> str:
    """``ts`` (seconds since the epoch) as an RFC 3339 UTC time, to the second."""
    secs = int(ts // 1)
    days, rest = divmod(secs, 86400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    # Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def when(ts: float, now: float) -> str:
    """An absolute time with its distance from ``now``: ``2025-06-15T15:16:40Z (in 10m)``."""
    delta = ts - now
    if delta > 0:
        return f"{iso(ts)} (in {format_duration(delta)})"
    if delta < 0:
        return f"{iso(ts)} ({format_duration(-delta)} ago)"
    return f"{iso(ts)} (now)"


def describe(action: AnyAction, now: float) -> str:
    """What the action does, in one line."""
    if isinstance(action, CreateReplacement):
        return f"create a replacement for {action.replaces} in {action.zone} ({action.image})"
    if isinstance(action, ScaleUp):
        return f"add a machine in {action.zone} ({action.image})"
    if isinstance(action, RetireNode):
        what = f"retire {action.node or action.machine}"
        return what + (f" (replaced by {action.replacement})" if action.replacement else "")
    if isinstance(action, ScaleDown):
        return f"remove {action.node or action.machine}"
    if isinstance(action, AbandonMachine):
        return f"abandon machine {action.machine}" + (
            f" (replacing {action.replaces})" if action.replaces else ""
        )
    if isinstance(action, Uncordon):
        return f"uncordon {action.node}"
    if isinstance(action, RollMachineDeployment):
        return roll_text(action)
    if isinstance(action, PauseMachineDeployment):
        what = "topology worker" if action.topology else "MachineDeployment"
        return f"pause {what} {action.deployment}"
    assert isinstance(action, Wait)
    until = f" until {when(action.until, now)}" if action.until is not None else ""
    return f"wait ({action.on}) for {action.what}{until}"


def roll_text(action: RollMachineDeployment) -> str:
    """ "roll MachineDeployment X to template Y (maxSurge …, maxUnavailable …)"."""
    budgets = (
        f"replicas {action.replicas}, maxSurge {action.max_surge}, "
        f"maxUnavailable {action.max_unavailable}"
    )
    if action.min_ready_seconds:
        budgets += f", minReadySeconds {action.min_ready_seconds} (soak)"
    if action.topology:
        return f"roll topology worker {action.deployment} to image {action.image} ({budgets})"
    back = "back " if action.rollback else ""
    return (
        f"roll MachineDeployment {action.deployment} {back}to template {action.template} "
        f"({action.image}; {budgets})"
    )


def kind_counts(actions: Iterable[AnyAction]) -> list[tuple[str, int]]:
    counts = Counter(a.kind for a in actions)
    return [(kind, counts[kind]) for kind in ACTION_KINDS if counts[kind]]


def finding_counts(findings: Iterable[Finding]) -> list[tuple[str, int]]:
    counts = Counter(f.kind for f in findings)
    return [(kind, counts[kind]) for kind in KINDS if counts[kind]]


def totals(plan: Plan) -> tuple[int, int, int]:
    """(steps that are not waits, of which ready now, waits)."""
    steps = ready = waits = 0
    for action in plan.actions():
        if isinstance(action, Wait):
            waits += 1
        else:
            steps += 1
            ready += action.ready
    return steps, ready, waits


def headline(plan: Plan) -> str:
    steps, ready, waits = totals(plan)
    clusters = sum(len(w.clusters) for w in plan.waves)
    parts = [
        f"{plural(steps, 'action')} ({ready} ready now)",
        plural(waits, "wait"),
        plural(len(plan.findings), "finding"),
        plural(len(plan.waves), "wave"),
        plural(clusters, "cluster"),
    ]
    return ", ".join(parts)


def fingerprints(pool: PoolPlan) -> str:
    """ ", 2 fingerprints (odd: n1, n2)" when the pool's nodes are not uniform, else ""."""
    if pool.fingerprints <= 1:
        return ""
    odd = ", ".join(pool.odd_nodes[:5]) + (", ..." if len(pool.odd_nodes) > 5 else "")
    return f", {pool.fingerprints} fingerprints (odd: {odd})"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def status_line(plan: Plan) -> str:
    text = plan.status.replace("-", " ")
    return f"{text}: {plan.reason}" if plan.reason else text


def drift_line(plan: Plan) -> str:
    return (
        f"{plan.drifted_nodes} of {plan.observed_nodes} observed nodes drifted "
        f"({plan.drifted_fraction:.0%}; limit {plan.max_drifted_fraction:.0%}"
        + (", overridden)" if plan.override_drift_limit else ")")
    )
