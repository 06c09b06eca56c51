"""One pool's plan: batch 1 (what may be done now), then the projected batches, then a status.

Part of the pure core (gitops.plan), between ``waves`` (which says in which ``Mode`` each pool
is planned) and the batch rules (``batches``). Batch 1 first carries on the work in flight
(``inflight``), then, in an active cluster, fixes capacity and starts replacements within the
budgets, behind the pool's soak gate; later batches are laid out on counts alone
(``project``), with the same rules. Reads ``now`` and the durable record only for the soak
gate of an active pool; everything else is a function of the pool's analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gitops.facts import pool_fingerprints
from gitops.fleet.quantities import format_duration
from gitops.fleet.wellknown import GPU_DRIVER_UPGRADE_DONE, GPU_DRIVER_UPGRADE_LABEL
from gitops.inventory import ClusterInventory, Member
from gitops.plan import actions, mdplan
from gitops.plan.batches import (
    Draft,
    add_capacity,
    break_before_make,
    make_before_break,
    remove_capacity,
)
from gitops.plan.budget import Budget
from gitops.plan.context import Context
from gitops.plan.inflight import carry_on
from gitops.plan.model import Batch, ClusterStatus, PoolPlan, PoolStatus
from gitops.plan.pools import NO_REASON, PoolWork
from gitops.plan.timing import gate as window_gate
from gitops.plan.timing import rate_gate, took

# How a pool is planned: ``active`` (new work may start now), ``projected`` (only the work in
# flight now; the rest shown as projected batches), ``inflight`` (only the work in flight).
Mode = Literal["active", "projected", "inflight"]


def planned(
    ctx: Context, work: PoolWork, mode: Mode, cluster_status: ClusterStatus, seen: ClusterInventory
) -> PoolPlan:
    """``plan_pool``, remembered on ``seen`` for the modes that never read the clock or the
    record (everything but ``active``), for as long as ``work`` is the remembered one."""
    if mode == "active" or work.clock_bound:
        return plan_pool(ctx, work, mode, cluster_status)
    return seen.derived(
        f"pool/{work.pool.name}/{mode}/{cluster_status}",
        (ctx.fleet, work),
        lambda: plan_pool(ctx, work, mode, cluster_status),
    )


def plan_pool(ctx: Context, work: PoolWork, mode: Mode, cluster_status: ClusterStatus) -> PoolPlan:
    """The pool's batches and status."""
    pool = work.pool
    if pool.machine_deployment is not None:
        return _md_pool(ctx, work, mode, cluster_status)
    first = Draft(
        work=work,
        budget=Budget(
            replicas=pool.replicas,
            surge=pool.surge,
            unavailable=pool.unavailable,
            machines=len(work.members),
            available=sum(1 for m in work.members if m.available),
        ),
        projected=False,
    )
    observed_machines, observed_available = first.budget.machines, first.budget.available
    rest = _first_batch(ctx, first, mode)
    batches: list[Batch] = []
    if first.actions or first.after:
        batches.append(Batch(index=1, actions=first.steps()))
    reason = project(rest, batches) if mode != "inflight" else _not_started(work, rest.deficit)
    return _pool_plan(
        ctx,
        work,
        batches,
        reason,
        cluster_status,
        machines=observed_machines,
        available=observed_available,
    )


def _md_pool(ctx: Context, work: PoolWork, mode: Mode, cluster_status: ClusterStatus) -> PoolPlan:
    """A MachineDeployment-mode pool: batch 1 now, the roll as a projected batch when it may
    not start yet (``mdplan``)."""
    first, later, reason = mdplan.plan_md_pool(ctx, work, mode, cluster_status)
    batches: list[Batch] = []
    if first:
        batches.append(Batch(index=1, actions=tuple(first)))
    if later:
        batches.append(Batch(index=len(batches) + 1, actions=tuple(later), projected=True))
    return _pool_plan(
        ctx,
        work,
        batches,
        reason,
        cluster_status,
        machines=len(work.members),
        available=sum(1 for m in work.members if m.available),
    )


def _pool_plan(
    ctx: Context,
    work: PoolWork,
    batches: list[Batch],
    reason: str,
    cluster_status: ClusterStatus,
    *,
    machines: int,
    available: int,
) -> PoolPlan:
    """The pool's plan as either mode lays it out, with its nodes' fingerprints."""
    pool = work.pool
    prints = pool_fingerprints(work.cluster, pool.name, work.members, work.facts)
    return PoolPlan(
        name=pool.name,
        image=pool.image,
        replicas=pool.replicas,
        max_surge=pool.surge,
        max_unavailable=pool.unavailable,
        machines=machines,
        available=available,
        outdated=work.outdated,
        drifted=len(work.drifted),
        status=pool_status(batches, reason, cluster_status),
        reason=reason,
        batches=tuple(batches),
        fingerprints=prints.distinct,
        odd_nodes=tuple(o.node for o in prints.odd),
    )


def pool_status(batches: list[Batch], reason: str, cluster_status: ClusterStatus) -> PoolStatus:
    """The pool's status, from its batches, why it stalls and its cluster's status."""
    if not batches:
        if reason and cluster_status in ("paused", "stopped"):
            return "paused" if cluster_status == "paused" else "stopped"
        return "converged"
    if any(a.ready for a in batches[0].actions):
        return "active"
    if batches[0].projected:
        return "pending"
    return "waiting"


@dataclass(slots=True)
class AfterFirst:
    """The pool as it will be once batch 1 is done: what the projection starts from."""

    work: PoolWork
    budget: Budget  # batch 1's, for its constants
    removed: set[Member]  # members gone once batch 1 is done
    recovering: set[Member]  # members not available now but once batch 1 is done
    deficit: int  # replicas minus slots: nodes still to add (negative: to remove)
    remaining: list[Member]  # due nodes batch 1 does not replace
    added: int = 0  # machines batch 1 creates


def _first_batch(ctx: Context, d: Draft, mode: Mode) -> AfterFirst:
    """Lay out batch 1 on ``d``: the work in flight, then in an active pool new work."""
    work = d.work
    carry_on(d)
    removed: set[Member] = set(work.abandon)
    removed.update(work.deleting)
    removed.update(work.leaving)
    removed.update(t for t, _ in work.pairs if not t.quarantined)
    recovering: set[Member] = {r for _, r in work.pairs}
    recovering.update(work.provisioning)
    recovering.update(m for m in work.uncordon if m.ready)
    rest = AfterFirst(
        work=work,
        budget=d.budget,
        removed=removed,
        recovering=recovering,
        deficit=work.pool.replicas - work.slots,
        remaining=list(work.targets),
    )
    if mode == "active":
        _scale_now(d, rest)
        rest.remaining = [t for t in rest.remaining if t not in removed]
        _replace_now(ctx, d, rest)
    return rest


def _scale_now(d: Draft, rest: AfterFirst) -> None:
    """Fix capacity as far as the budgets allow now."""
    work, b, removed = d.work, d.budget, rest.removed
    if rest.deficit > 0:
        counts = actions.zone_counts(work.members, removed)
        rest.added = add_capacity(d, rest.deficit, counts)
        rest.deficit -= rest.added
        return
    if rest.deficit == 0:
        return
    candidates = [
        m
        for m in work.members
        if m not in removed and not m.quarantined and m not in rest.recovering
    ]
    rest.deficit, blocked = remove_capacity(d, rest.deficit, candidates, removed)
    if rest.deficit < 0 and blocked:
        d.actions.append(
            actions.wait(
                work,
                "availability",
                work.pool.name,
                f"{-rest.deficit} more to remove, but {b.floor_text()}",
            )
        )


def _replace_now(ctx: Context, d: Draft, rest: AfterFirst) -> None:
    """Start replacements within the budgets, once the pool's last batch has soaked."""
    work, b, remaining = d.work, d.budget, rest.remaining
    if not remaining:
        return
    pool = work.pool.name
    upgrading = _gpu_driver_upgrade(work)
    if upgrading:
        node, state = upgrading
        reason = (
            f"{len(remaining)} nodes to replace, but the GPU Operator is upgrading the driver "
            f"on {node} ({GPU_DRIVER_UPGRADE_LABEL}={state}): no replacement starts until it is "
            f"{GPU_DRIVER_UPGRADE_DONE}"
        )
        d.actions.append(actions.wait(work, "gpu-driver-upgrade", node, reason))
        return
    gate = _soak_gate(ctx, work)
    if gate > ctx.now:
        reason = (
            f"new nodes soak {format_duration(work.pool.update.soak)} before the next batch starts"
        )
        d.actions.append(actions.wait(work, "soak", pool, reason, until=gate))
        return
    # Windows and freezes: only what can finish before the allowed period ends starts now;
    # the rest stays due (projected) and the Wait says why and when it can start.
    remaining, waits = window_gate(ctx, work, remaining)
    if remaining:
        remaining, held = rate_gate(ctx, work, remaining)
        waits += held
    d.actions.extend(waits)
    if not remaining:
        return
    counts = actions.zone_counts(work.members, rest.removed)
    if b.surge > 0:
        started = make_before_break(d, remaining, counts)
        rest.added += len(started)
        if b.room <= 0:
            started += _retire_unavailable(d, remaining[len(started) :])
        if not started and not work.in_flight:
            reason = (
                f"{len(remaining)} nodes to replace, but {b.machines} machines "
                f"already fill replicas {b.replicas} + maxSurge {b.surge}"
            )
            d.actions.append(actions.wait(work, "surge", pool, reason))
    else:
        started = break_before_make(d, remaining, counts)
        rest.added += len(started)
        if not started and not work.in_flight:
            reason = f"{len(remaining)} nodes to replace, but {b.floor_text()} (maxSurge 0)"
            d.actions.append(actions.wait(work, "availability", pool, reason))
    rest.removed.update(started)
    took(ctx, work, len(started))
    gone = set(started)
    rest.remaining = [t for t in rest.remaining if t not in gone]


def _retire_unavailable(d: Draft, targets: list[Member]) -> list[Member]:
    """With no surge room left, retire the due nodes that are not available anyway.

    That costs no availability and frees a machine slot; without it, a pair waiting on the
    availability floor and a dead node waiting on surge room would wait for each other for
    ever. Returns the nodes retired.
    """
    work, b = d.work, d.budget
    retired = [t for t in targets if not t.available]
    for target in retired:
        _, why = work.why.get(target.name, NO_REASON)
        d.actions.append(
            actions.retire(
                work,
                target,
                "",
                reason=(
                    f"retire {target.name} before its replacement: it is not "
                    f"available and the surge budget is full: {why}"
                ),
                budget=b.availability_text(False),
                ready=True,
            )
        )
    return retired


def _gpu_driver_upgrade(work: PoolWork) -> tuple[str, str] | None:
    """(node, state) of the first node whose GPU driver the NVIDIA GPU Operator is upgrading.

    The operator cordons and drains nodes itself while it upgrades; replacing nodes of the
    same pool at the same time would take capacity twice and race its drains.
    """
    for member in work.members:
        node = member.node
        if node is None:
            continue
        state = node.labels.get(GPU_DRIVER_UPGRADE_LABEL)
        if state is not None and state != GPU_DRIVER_UPGRADE_DONE:
            return node.name, state
    return None


def _soak_gate(ctx: Context, work: PoolWork) -> float:
    """When the next batch of new replacements may start (0: now)."""
    soak = work.pool.update.soak
    if not soak:
        return 0.0
    recorded = ctx.state.pool(work.cluster, work.pool.name).last_batch_ready_at or 0.0
    start = max(recorded, work.newest_ready)
    return start + soak if start > 0 else 0.0


def _not_started(work: PoolWork, deficit: int) -> str:
    """Why a pool planned only for its work in flight still has work ("" when it has none)."""
    if not work.targets and not deficit:
        return ""
    pending = []
    if work.targets:
        pending.append(f"{len(work.targets)} to replace")
    if deficit > 0:
        pending.append(f"{deficit} to add")
    if deficit < 0:
        pending.append(f"{-deficit} to remove")
    return "not started: " + ", ".join(pending)


def project(rest: AfterFirst, batches: list[Batch]) -> str:
    """Lay out later batches on counts alone; returns why it stalls ("" when it does not).

    The budget starts as the pool once batch 1 is done (every new machine a Ready node, every
    retired node gone); each batch then creates, waits for Ready, and retires, and the budgets
    are checked at each of those steps as the executor will check them.
    """
    work, first = rest.work, rest.budget
    kept = [m for m in work.members if m not in rest.removed]
    avail = {m: m.available or m in rest.recovering for m in kept}
    b = Budget(
        replicas=first.replicas,
        surge=first.surge,
        unavailable=first.unavailable,
        machines=len(kept) + rest.added,
        available=sum(avail.values()) + rest.added,
    )
    soak = work.pool.update.soak
    note = f"after the previous batch has soaked {format_duration(soak)}" if soak else ""
    counts = actions.zone_counts(kept, set())
    gone: set[Member] = set()
    deficit, remaining = rest.deficit, list(rest.remaining)
    index = len(batches) + 1
    while remaining or deficit:
        d = Draft(work=work, budget=b, projected=True, avail=avail)
        if deficit > 0:
            deficit -= add_capacity(d, deficit, counts)
        elif deficit < 0:
            deficit, _ = remove_capacity(d, deficit, kept, gone)
            remaining = [t for t in remaining if t not in gone]
        elif b.surge > 0:
            started = make_before_break(d, remaining, counts)
            gone.update(started)
            remaining = remaining[len(started) :]
        else:
            started = break_before_make(d, remaining, counts)
            gone.update(started)
            remaining = [t for t in remaining if t not in gone]
        if not d.actions and not d.after:
            break
        batches.append(Batch(index=index, actions=d.steps(), projected=True, note=note))
        index += 1
    return _stall(b, index - 1, remaining, deficit)


def _stall(b: Budget, last: int, remaining: list[Member], deficit: int) -> str:
    """Why the projection stops after batch ``last`` ("" when nothing is left)."""
    if not remaining and not deficit:
        return ""
    left = []
    if remaining:
        left.append(f"{len(remaining)} nodes to replace")
    if deficit > 0:
        left.append(f"{deficit} nodes to add")
    if deficit < 0:
        left.append(f"{-deficit} nodes to remove")
    return (
        f"stalls after batch {last}: {', '.join(left)} cannot proceed within "
        f"maxSurge {b.surge} and maxUnavailable {b.unavailable} "
        f"({b.available} of {b.replicas} available, {b.machines} machines)"
    )
