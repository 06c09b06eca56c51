"""One fleet wave: which clusters get new work, and the status of each cluster and of the wave.

Part of the pure core (gitops.plan), called by ``make`` for each wave in order. It analyses
the pools of every observed cluster of the wave (``pools``), gives the free
``maxClustersInParallel`` slots out (``slots``), puts each cluster on its status ladder
(``cluster_ladder``: the mode its pools are planned in) and the wave on its own
(``wave_ladder``). The three decisions are pure functions of plain values, so that they can be
read, and tested, on their own; ``plan_wave`` only gathers their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gitops.fleet import ClusterDocument, Wave
from gitops.fleet.quantities import format_duration
from gitops.inventory import ClusterInventory, Inventory
from gitops.plan.context import Context
from gitops.plan.model import ClusterPlan, ClusterStatus, WavePlan, WaveStatus
from gitops.plan.poolplan import Mode, planned
from gitops.plan.pools import PoolWork, analysed
from gitops.plan.shard import ClusterSummary
from gitops.plan.timing import cluster_window


@dataclass(frozen=True, slots=True)
class Seat:
    """What the slot and status rules need to know of one observed cluster of a wave."""

    name: str
    paused: bool
    has_work: bool
    in_flight: bool
    soaking: bool  # converged, and its soak has not ended yet


def slots(
    seats: Sequence[Seat],
    limit: int | None,
    *,
    admitted: frozenset[str] | None = None,
    held: frozenset[str] = frozenset(),
) -> tuple[set[str], str]:
    """The clusters that may act now, and why the others with work are queued.

    Clusters with work in flight (or, with a ``limit``, still soaking) keep their slot; free
    slots go to the other clusters with work in the order given (by name); a paused cluster
    never takes one. Sharded (``plan.shard``): the coordinator counts the clusters it
    admitted before (``held``) as busy while they have work, so a summary that lags behind
    its owner never frees their slot; every other replica starts new work only in the
    clusters the coordinator ``admitted``.
    """
    busy = [
        s.name
        for s in seats
        if s.in_flight or (limit is not None and (s.soaking or (s.has_work and s.name in held)))
    ]
    candidates = [s.name for s in seats if s.has_work and s.name not in busy and not s.paused]
    free = len(candidates) if limit is None else max(0, limit - len(busy))
    active = {s.name for s in seats if s.name in busy and s.has_work and not s.paused}
    active.update(candidates[:free])
    if admitted is not None:
        in_flight = {s.name for s in seats if s.in_flight}
        active = {name for name in active if name in admitted or name in in_flight}
        if limit is None:
            return active, "waiting for the coordinator to admit it"
    if limit is None:
        return active, ""
    queued = f"maxClustersInParallel {limit}: waiting for a free slot" + (
        f" (busy: {', '.join(busy)})" if busy else ""
    )
    return active, queued


def cluster_ladder(
    seat: Seat,
    *,
    stopped: bool,
    gate_open: bool,
    active: bool,
    queued: str,
    blocker: str,
    soak: float,
) -> tuple[Mode, ClusterStatus, str]:
    """How an observed cluster's pools are planned, its status, and why."""
    if stopped:
        return "inflight", "stopped", "the rollout is stopped"
    if seat.paused:
        return "inflight", "paused", "paused in git (spec.paused): nothing new starts here"
    if not gate_open:
        return "projected", "pending", f"waits for wave {blocker} to converge and soak"
    if active:
        return "active", "active", ""
    if seat.has_work:
        return "projected", "queued", queued
    if seat.soaking:
        return "projected", "soaking", f"converged; soaking {format_duration(soak)}"
    return "projected", "converged", ""


def wave_ladder(
    seats: Sequence[Seat],
    *,
    unknown: Sequence[str],
    stopped: bool,
    gate_open: bool,
    blocker: str,
    any_active: bool,
    soak: float,
    settled_at: float,
    now: float,
) -> tuple[WaveStatus, str, float | None]:
    """The wave's status, why, and when its soak ends (None: it does not soak now).

    ``settled_at`` is the later of the wave's recorded convergence and the newest Ready time
    of a node the controller created in it (0: neither); ``unknown`` are the clusters that could
    not be observed, in name order.
    """
    if stopped:
        return "stopped", "the rollout is stopped", None
    if not gate_open:
        return "pending", f"waits for wave {blocker} to converge and soak", None
    if not unknown and not any(s.has_work for s in seats):
        if soak and settled_at > 0 and settled_at + soak > now:
            reason = f"converged; soaking {format_duration(soak)} before the next wave"
            return "soaking", reason, settled_at + soak
        return "complete", "", None
    if any_active:
        return "active", "", None
    why = [f"{n} is unreachable" for n in unknown]
    why += [f"{s.name} is paused" for s in seats if s.has_work and s.paused]
    return "blocked", "; ".join(why) or "waiting for work in flight", None


def soak_end(settled_at: float, soak: float) -> float | None:
    """When a soak of ``soak`` seconds from ``settled_at`` ends (None: nothing to soak)."""
    return settled_at + soak if soak and settled_at > 0 else None


@dataclass(slots=True)
class _Observed:
    """The clusters of one wave as observed, in name order."""

    docs: dict[str, ClusterDocument] = field(default_factory=dict)
    works: dict[str, list[PoolWork]] = field(default_factory=dict)
    seen: dict[str, ClusterInventory] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)  # why each could not be observed
    seats: dict[str, Seat] = field(default_factory=dict)
    soak_until: dict[str, float | None] = field(default_factory=dict)
    remote: dict[str, ClusterSummary] = field(default_factory=dict)  # planned from summaries
    newest: dict[str, float] = field(default_factory=dict)  # newest controller-made Ready time


def _observe(ctx: Context, wave: Wave, names: tuple[str, ...], inventory: Inventory) -> _Observed:
    """Analyse the pools of each observed cluster and seat it; note the ones not observed."""
    out = _Observed()
    for name in sorted(names):
        doc = ctx.fleet.cluster(name)
        assert doc is not None  # the loader puts every wave member in fleet.clusters
        out.docs[name] = doc
        seen = inventory.cluster(name)
        if seen is None and ctx.shard is not None:
            summary = ctx.shard.summary(name, ctx.fleet.revision)
            if summary is None:
                out.unknown[name] = "owned by another replica, which has not planned it yet"
                continue
            out.remote[name] = summary
            _seat(ctx, wave, out, doc, summary.has_work, summary.in_flight, summary.newest_ready)
            continue
        if seen is None or not seen.reachable:
            out.unknown[name] = "not observed" if seen is None else (seen.error or "unreachable")
            continue
        out.seen[name] = seen
        works = out.works[name] = [analysed(ctx, doc, p, seen) for p in doc.spec.node_pools]
        _seat(
            ctx,
            wave,
            out,
            doc,
            any(w.has_work for w in works),
            any(w.in_flight for w in works),
            max((w.newest_ready for w in works), default=0.0),
        )
    return out


def _seat(
    ctx: Context,
    wave: Wave,
    out: _Observed,
    doc: ClusterDocument,
    has_work: bool,
    in_flight: bool,
    newest: float,
) -> None:
    """Seat an observed cluster, or one planned from its owner's summary."""
    settled = max(ctx.state.cluster(doc.name).converged_at or 0.0, newest)
    out.soak_until[doc.name] = until = soak_end(settled, wave.soak)
    out.newest[doc.name] = newest
    out.seats[doc.name] = Seat(
        name=doc.name,
        paused=doc.spec.paused,
        has_work=has_work,
        in_flight=in_flight,
        soaking=not has_work and until is not None and until > ctx.now,
    )


def _summaries(ctx: Context, seen: _Observed) -> tuple[ClusterSummary, ...]:
    """Sharded: what this replica observed of each cluster, for the others to plan it."""
    if ctx.shard is None:
        return ()
    return tuple(
        ClusterSummary(
            cluster=name,
            revision=ctx.fleet.revision,
            has_work=seen.seats[name].has_work,
            in_flight=seen.seats[name].in_flight,
            newest_ready=seen.newest[name],
            nodes=len(cluster.nodes),
            drifted=sum(1 for c, _ in ctx.drifted if c == name),
        )
        for name, cluster in sorted(seen.seen.items())
    )


def plan_wave(
    ctx: Context,
    index: int,
    wave: Wave,
    names: tuple[str, ...],
    inventory: Inventory,
    *,
    gate_open: bool,
    stopped: bool,
    blocker: str,
) -> WavePlan:
    """The plan of one wave: ``gate_open`` when every earlier wave is complete."""
    seen = _observe(ctx, wave, names, inventory)
    seats = list(seen.seats.values())
    active, queued = _slots(ctx, seats, wave) if gate_open else (set(), "")
    clusters: list[ClusterPlan] = []
    for name in sorted(names):
        if name in seen.unknown:
            reason = f"could not be observed: {seen.unknown[name]}; nothing is planned here"
            clusters.append(ClusterPlan(name=name, status="unknown", reason=reason))
            continue
        mode, status, reason = cluster_ladder(
            seen.seats[name],
            stopped=stopped,
            gate_open=gate_open,
            active=name in active,
            queued=queued,
            blocker=blocker,
            soak=wave.soak,
        )
        if name in seen.remote:
            clusters.append(_remote_plan(seen, name, status, reason))
            continue
        window, next_start = (
            cluster_window(ctx, seen.docs[name], seen.works[name])
            if status in ("active", "queued", "pending")
            else ("", None)
        )
        clusters.append(
            ClusterPlan(
                name=name,
                status=status,
                reason=reason,
                window=window,
                next_start=next_start,
                soak_until=seen.soak_until[name] if status == "soaking" else None,
                pools=tuple(
                    planned(ctx, w, mode, status, seen.seen[name]) for w in seen.works[name]
                ),
            )
        )
    newest = list(seen.newest.values())
    wave_status, wave_reason, until = wave_ladder(
        seats,
        unknown=sorted(seen.unknown),
        stopped=stopped,
        gate_open=gate_open,
        blocker=blocker,
        any_active=bool(active),
        soak=wave.soak,
        settled_at=max([ctx.state.wave(wave.name).converged_at or 0.0, *newest]),
        now=ctx.now,
    )
    return WavePlan(
        index=index,
        name=wave.name,
        status=wave_status,
        reason=wave_reason,
        soak_until=until,
        max_clusters_in_parallel=wave.max_clusters_in_parallel,
        clusters=tuple(clusters),
        summaries=_summaries(ctx, seen),
    )


def _slots(ctx: Context, seats: list[Seat], wave: Wave) -> tuple[set[str], str]:
    shard = ctx.shard
    if shard is None:
        return slots(seats, wave.max_clusters_in_parallel)
    return slots(seats, wave.max_clusters_in_parallel, admitted=shard.admitted, held=shard.held)


def _remote_plan(seen: _Observed, name: str, status: ClusterStatus, reason: str) -> ClusterPlan:
    """A cluster another replica owns, planned from its summary: its status, no pools."""
    owner = seen.remote[name].owner or "?"
    owned = f"owned by replica {owner}"
    return ClusterPlan(
        name=name,
        status=status,
        reason=f"{reason} ({owned})" if reason else owned,
        soak_until=seen.soak_until[name] if status == "soaking" else None,
        owner=owner,
    )
