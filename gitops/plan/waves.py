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
from gitops.plan.timing import cluster_window


@dataclass(frozen=True, slots=True)
class Seat:
    """What the slot and status rules need to know of one observed cluster of a wave."""

    name: str
    paused: bool
    has_work: bool
    in_flight: bool
    soaking: bool  # converged, and its soak has not ended yet


def slots(seats: Sequence[Seat], limit: int | None) -> tuple[set[str], str]:
    """The clusters that may act now, and why the others with work are queued.

    Clusters with work in flight (or, with a ``limit``, still soaking) keep their slot; free
    slots go to the other clusters with work in the order given (by name); a paused cluster
    never takes one.
    """
    busy = [s.name for s in seats if s.in_flight or (limit is not None and s.soaking)]
    candidates = [s.name for s in seats if s.has_work and s.name not in busy and not s.paused]
    free = len(candidates) if limit is None else max(0, limit - len(busy))
    active = {s.name for s in seats if s.name in busy and s.has_work and not s.paused}
    active.update(candidates[:free])
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


def _observe(ctx: Context, wave: Wave, names: tuple[str, ...], inventory: Inventory) -> _Observed:
    """Analyse the pools of each observed cluster and seat it; note the ones not observed."""
    out = _Observed()
    for name in sorted(names):
        doc = ctx.fleet.cluster(name)
        assert doc is not None  # the loader puts every wave member in fleet.clusters
        out.docs[name] = doc
        seen = inventory.cluster(name)
        if seen is None or not seen.reachable:
            out.unknown[name] = "not observed" if seen is None else (seen.error or "unreachable")
            continue
        out.seen[name] = seen
        works = out.works[name] = [analysed(ctx, doc, p, seen) for p in doc.spec.node_pools]
        settled = max(
            [ctx.state.cluster(name).converged_at or 0.0, *(w.newest_ready for w in works)]
        )
        out.soak_until[name] = until = soak_end(settled, wave.soak)
        has_work = any(w.has_work for w in works)
        out.seats[name] = Seat(
            name=name,
            paused=doc.spec.paused,
            has_work=has_work,
            in_flight=any(w.in_flight for w in works),
            soaking=not has_work and until is not None and until > ctx.now,
        )
    return out


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
    active, queued = slots(seats, wave.max_clusters_in_parallel) if gate_open else (set(), "")
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
    newest = [w.newest_ready for works in seen.works.values() for w in works]
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
    )
