"""The actions of one pool's plan, made in one place, each with its reason and budget.

Part of the pure core (gitops.plan), used by ``batches`` and ``inflight``. Every action the
planner emits for a pool is built by one of these functions from the pool's analysis
(``pools.PoolWork``: which cluster and pool, why a node is due) and, where the action spends a
budget, from its ``budget.Budget``: the builders of new machines count them against the surge
ceiling as they make them. The zone rule (same zone as the node replaced, else the least-filled
declared zone) is here too. Nothing here decides whether an action may happen: that is the
batch rules' business.
"""

from __future__ import annotations

from collections.abc import Iterable

from gitops.inventory import Member
from gitops.plan.budget import Budget
from gitops.plan.model import CreateReplacement, RetireNode, ScaleDown, ScaleUp, Wait, WaitOn
from gitops.plan.pools import NO_REASON, PoolWork


def create(work: PoolWork, b: Budget, target: Member, zone: str, ready: bool) -> CreateReplacement:
    """A replacement for ``target`` in ``zone``, counted against the surge ceiling."""
    b.take_surge()
    fingerprint, why = work.why.get(target.name, NO_REASON)
    return CreateReplacement(
        cluster=work.cluster,
        pool=work.pool.name,
        zone=zone,
        image=work.pool.image,
        replaces=target.name,
        replaces_machine=target.machine.name if target.machine is not None else "",
        finding=fingerprint,
        reason=f"replace {target.name}: {why}",
        budget=(
            f"surge: {b.machines}/{b.ceiling} machines after this "
            f"(replicas {b.replicas} + maxSurge {b.surge})"
        ),
        ready=ready,
    )


def scale_up(
    work: PoolWork, b: Budget, zone: str, why: str, ready: bool, budget: str = ""
) -> ScaleUp:
    """A new machine in ``zone`` replacing nothing, counted against the surge ceiling."""
    b.take_surge()
    return ScaleUp(
        cluster=work.cluster,
        pool=work.pool.name,
        zone=zone,
        image=work.pool.image,
        reason=why,
        budget=budget or f"surge: {b.machines}/{b.ceiling} machines after this",
        ready=ready,
    )


def scale_down(work: PoolWork, b: Budget, m: Member, ready: bool) -> ScaleDown:
    """``m`` retired for capacity; ``b`` already counts it out."""
    fingerprint, why = work.why.get(m.name, NO_REASON)
    return ScaleDown(
        cluster=work.cluster,
        pool=work.pool.name,
        node=m.node.name if m.node is not None else "",
        machine=m.machine.name if m.machine is not None else "",
        finding=fingerprint,
        reason=f"the pool has more than its {b.replicas} replicas; {m.name} goes first"
        + (f": {why}" if why else ""),
        budget=b.availability_text(m.available),
        ready=ready,
    )


def retire(
    work: PoolWork,
    target: Member,
    replacement: str,
    *,
    reason: str,
    budget: str,
    ready: bool,
) -> RetireNode:
    """``target`` cordoned, drained and deleted, once ``replacement`` (if any) is Ready."""
    fingerprint, _ = work.why.get(target.name, NO_REASON)
    return RetireNode(
        cluster=work.cluster,
        pool=work.pool.name,
        node=target.node.name if target.node is not None else "",
        machine=target.machine.name if target.machine is not None else "",
        replacement=replacement,
        finding=fingerprint,
        reason=reason,
        budget=budget,
        ready=ready,
    )


def wait(work: PoolWork, on: WaitOn, what: str, reason: str, until: float | None = None) -> Wait:
    """Nothing to do in the pool until ``until`` or until ``on`` changes for ``what``."""
    return Wait(
        cluster=work.cluster, pool=work.pool.name, on=on, what=what, until=until, reason=reason
    )


def quarantine_wait(work: PoolWork, member: Member) -> Wait:
    """A quarantined node keeps its slot until a human acts."""
    return wait(
        work,
        "human",
        member.name,
        f"{member.name} is quarantined after its drain timed out; it keeps its slot "
        "until a human deletes it or removes the fleet.gitops.io/quarantined label",
    )


def zone(work: PoolWork, member: Member | None, counts: dict[str, int]) -> str:
    """The member's zone when still declared, else the least-filled declared zone."""
    zones = work.pool.zones
    if member is not None and member.zone in zones:
        chosen = member.zone
    else:
        chosen = min(zones, key=lambda z: (counts.get(z, 0), zones.index(z)))
    counts[chosen] = counts.get(chosen, 0) + 1
    return chosen


def zone_counts(members: Iterable[Member], removed: set[Member]) -> dict[str, int]:
    """How many of ``members`` (but ``removed``) each zone holds."""
    counts: dict[str, int] = {}
    for m in members:
        if m not in removed:
            counts[m.zone] = counts.get(m.zone, 0) + 1
    return counts
