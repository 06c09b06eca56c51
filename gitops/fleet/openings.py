"""What people see of the windows: ``gitops windows``, status files, metrics, warnings.

Part of the model layer, pure: each function reads a loaded ``Fleet`` and the ``now`` it is
given, through the time algebra of ``gitops.fleet.windows`` (the same the planner uses, so what
these show is what the plan waits for). Callers in the shell read the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitops.fleet.model import Fleet
from gitops.fleet.problems import Problem
from gitops.fleet.spec import Maintenance
from gitops.fleet.windows import HORIZON, Calendar, Span, cluster_levels, local, occurrences, union


@dataclass(frozen=True, slots=True)
class Openings:
    """When work may start at one cluster over a stretch of days (``gitops windows``)."""

    cluster: str
    wave: str
    declared: bool  # some level declares a window or freeze for the cluster
    image: tuple[Span, ...]  # allowed periods for replacements for a new image
    drift: tuple[Span, ...]  # allowed periods for drift remediation
    freezes: tuple[Span, ...]


def openings(fleet: Fleet, now: float, days: float) -> tuple[Openings, ...]:
    """Every cluster's allowed periods from ``now`` for ``days``, wave by wave, then by name."""
    calendar = Calendar(now)
    until = now + days * 86400.0
    out = []
    for members in fleet.waves:
        for name in members.clusters:
            levels = cluster_levels(fleet, name)
            image, frozen, declared = calendar.periods(levels, "image")
            drift, frozen_drift, declared_drift = calendar.periods(levels, "drift")
            out.append(
                Openings(
                    cluster=name,
                    wave=members.wave.name,
                    declared=declared or declared_drift,
                    image=_clip(image, until),
                    drift=_clip(drift, until),
                    freezes=_clip(union([*frozen, *frozen_drift]), until),
                )
            )
    return tuple(out)


def _clip(spans: Sequence[Span], until: float) -> tuple[Span, ...]:
    return tuple(
        Span(s.start, min(s.end, until), s.label, s.zone) for s in spans if s.start < until
    )


def window_states(fleet: Fleet, now: float) -> tuple[tuple[str, str, bool], ...]:
    """(scope, window name, open now) for every window the fleet declares, freezes aside.

    ``scope`` is ``fleet``, ``wave:<name>`` or ``cluster:<name>``: the labels of the metric
    ``gitops_window_open``.
    """
    rollout = fleet.document.spec.rollout
    blocks: list[tuple[str, Maintenance | None]] = [("fleet", rollout.maintenance)]
    blocks += [(f"wave:{w.name}", w.maintenance) for w in rollout.waves]
    blocks += [(f"cluster:{c.name}", c.spec.maintenance) for c in fleet.clusters]
    out = []
    for scope, block in blocks:
        for window in block.windows if block is not None else ():
            spans = occurrences(window, now, now + 1)
            out.append((scope, window.name, any(s.start <= now < s.end for s in spans)))
    return tuple(out)


def expired_freezes(fleet: Fleet, now: float) -> tuple[Problem, ...]:
    """Warnings for one-off freezes that ended before ``now``: the repository stays tidy."""
    return tuple(
        Problem(
            mark.path,
            mark.line,
            mark.col,
            f"warning: freeze {mark.name} ended {local(mark.ends_at, 'UTC')}",
            "remove it; it no longer holds anything back",
        )
        for mark in fleet.freezes
        if mark.ends_at <= now
    )


def next_window(fleet: Fleet, name: str, now: float) -> dict[str, str] | None:
    """For a cluster's status: open now or not, until when, and the next opening (RFC 3339
    UTC times); None when no level declares a window or freeze for it. New images only."""
    allowed, _, declared = Calendar(now).periods(cluster_levels(fleet, name), "image")
    if not declared:
        return None
    here = next((s for s in allowed if s.start <= now < s.end), None)
    later = next((s for s in allowed if s.start > now), None)
    out = {"open": "true" if here is not None else "false"}
    if here is not None and here.end < now + HORIZON:  # else: open as far as it looks
        out["closes"] = local(here.end, "UTC")
    if later is not None:
        out["nextOpening"] = local(later.start, "UTC")
        out["window"] = later.label
    return out
