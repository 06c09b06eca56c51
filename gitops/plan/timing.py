"""Time in the planner: may a pool's next batch start now, under the windows and freezes?

Part of the pure core (gitops.plan), called by ``poolplan`` before new replacements start in an
active pool, and by ``waves`` to say when each cluster can start next. The time algebra itself
(zones, DST, levels, freezes) is ``gitops.fleet.windows``; the ``Calendar`` comes with the
``Context``, made once per plan, so evaluation is per window and per cluster, never per node.

A batch starts only when the allowed period (every level's windows, minus every freeze) holds
long enough for it to finish: the pool's expected step time, the worst case
``nodeStartupTimeout + drainTimeout`` unless at least ``MIN_SAMPLES`` replacements of this
rollout have already booted in the pool, then the longest boot observed plus ``drainTimeout``
(a drain is not observable once its node is gone). Work already started is not judged here: it
is carried on (``inflight``) whatever the time, so a window closing leaves no node half-done.
Capacity (scale up or down to ``replicas``) is not windowed: it is not a change of image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace

from gitops.fleet import ClusterDocument
from gitops.fleet.quantities import format_duration
from gitops.fleet.windows import Kind, Verdict
from gitops.inventory import Member
from gitops.plan import actions
from gitops.plan.context import Context
from gitops.plan.model import Wait, WaitOn
from gitops.plan.pools import PoolWork

MAX_JITTER = 5.0
"""Seconds over which clusters whose windows open at the same instant are spread."""

MIN_SAMPLES = 3
"""Boots observed in a pool before they, not the timeouts, say how long a step takes."""

_WHAT = {"image": "replacements for the new image", "drift": "drift remediations"}


def step_time(work: PoolWork) -> tuple[float, str]:
    """How long one batch of the pool may take, and how that was estimated."""
    update = work.pool.update
    boots = work.boots  # gathered while the pool was analysed, once per inventory
    if len(boots) >= MIN_SAMPLES:
        longest = max(boots)
        return longest + update.drain_timeout, (
            f"observed: longest of {len(boots)} boots in this rollout "
            f"{format_duration(longest)} + drainTimeout {format_duration(update.drain_timeout)}"
        )
    return update.node_startup_timeout + update.drain_timeout, (
        f"worst case: nodeStartupTimeout {format_duration(update.node_startup_timeout)} + "
        f"drainTimeout {format_duration(update.drain_timeout)}"
    )


def jitter(cluster: str) -> float:
    """A fixed delay in ``[0, MAX_JITTER)`` for ``cluster``, hashed from its name.

    Many clusters often share one window: at its opening each starts this long after it, so
    the provider APIs see the batches of a hundred clusters over seconds, not in one instant.
    A hash, not a random draw: the plan stays deterministic and the delay stable.
    """
    digest = hashlib.sha256(cluster.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * MAX_JITTER


def _spread(cluster: str, verdict: Verdict, now: float) -> Verdict:
    """``verdict`` with the cluster's jitter after each opening: at most a tenth of the
    period it opens (a window of hours is not shortened; one of seconds, in a demo, barely)."""
    delay = jitter(cluster)
    if verdict.closes is not None:
        opened = verdict.opened if verdict.open else verdict.starts
        if opened is not None:
            delay = min(delay, 0.1 * (verdict.closes - opened))
    if verdict.open and verdict.opened is not None and now < verdict.opened + delay:
        reason = (
            f"the window opened {format_duration(now - verdict.opened)} ago; this cluster starts "
            f"{format_duration(delay)} after each opening, so that clusters sharing a window do "
            "not call the provider all at once"
        )
        return replace(verdict, state="closed", starts=verdict.opened + delay, reason=reason)
    if not verdict.open and verdict.starts is not None and verdict.starts > now:
        return replace(verdict, starts=verdict.starts + delay)
    return verdict


def kind_of(work: PoolWork, member: Member) -> Kind:
    """Whether replacing ``member`` remedies drift or brings the new image."""
    return "drift" if member.name in work.drifted else "image"


def _doc(ctx: Context, name: str) -> ClusterDocument:
    doc = ctx.fleet.cluster(name)
    assert doc is not None  # pools are planned only for the fleet's clusters
    return doc


def gate(ctx: Context, work: PoolWork, remaining: list[Member]) -> tuple[list[Member], list[Wait]]:
    """The due nodes whose replacement may start now, and a Wait for each kind held back."""
    if ctx.calendar is None or not remaining:
        return remaining, []
    levels = ctx.levels(_doc(ctx, work.cluster))
    need, basis = step_time(work)
    verdicts: dict[Kind, Verdict] = {}
    kept: list[Member] = []
    held: dict[Kind, int] = {}
    for member in remaining:
        kind = kind_of(work, member)
        verdict = verdicts.get(kind)
        if verdict is None:
            verdict = ctx.calendar.verdict(levels, kind, need)
            verdict = verdicts[kind] = _spread(work.cluster, verdict, ctx.now)
        if verdict.open:
            kept.append(member)
        else:
            held[kind] = held.get(kind, 0) + 1
    waits = []
    for kind in sorted(held):
        verdict = verdicts[kind]
        reason = (
            f"{held[kind]} {_WHAT[kind]}: {verdict.reason}; a batch may take "
            f"{format_duration(need)} ({basis})"
        )
        on: WaitOn = "freeze" if verdict.state == "frozen" else "window"
        waits.append(actions.wait(work, on, work.pool.name, reason, until=verdict.starts))
    return kept, waits


def rate_gate(
    ctx: Context, work: PoolWork, remaining: list[Member]
) -> tuple[list[Member], list[Wait]]:
    """The due nodes the levels' rates leave room for now, and a Wait when they leave none."""
    if ctx.rates is None or not remaining:
        return remaining, []
    room = ctx.rates.room(ctx.levels(_doc(ctx, work.cluster)))
    if room.left >= len(remaining):
        return remaining, []
    if room.left:
        return remaining[: room.left], []
    reason = f"{len(remaining)} nodes to replace, but {room.text}"
    return [], [actions.wait(work, "rate", work.pool.name, reason, until=room.frees_at)]


def took(ctx: Context, work: PoolWork, started: int) -> None:
    """Record replacements started now against the levels' rates."""
    if ctx.rates is not None:
        ctx.rates.take(work.cluster, started)


def cluster_window(
    ctx: Context, doc: ClusterDocument, works: Sequence[PoolWork]
) -> tuple[str, float | None]:
    """Why time holds the cluster's new work back ("" when it does not), and when it can start.

    Judged for the pool that needs the longest step, for each kind of work the cluster has.
    """
    if ctx.calendar is None:
        return "", None
    due = [w for w in works if w.targets]
    if not due:
        return "", None
    need = max(step_time(w)[0] for w in due)
    kinds: Iterable[Kind] = sorted({kind_of(w, t) for w in due for t in w.targets})
    levels = ctx.levels(doc)
    verdicts = (_spread(doc.name, ctx.calendar.verdict(levels, k, need), ctx.now) for k in kinds)
    held = [v for v in verdicts if not v.open]
    if not held:
        return "", None
    first = min(held, key=lambda v: (v.starts is None, v.starts or 0.0))
    return first.reason, first.starts
