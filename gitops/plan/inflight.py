"""Batch 1's carry-on steps: finish what earlier reconciles started, before anything new.

Part of the pure core (gitops.plan), used by ``poolplan`` on the first batch's ``Draft``. The
executor is level-triggered: it records progress on the objects it manages, and each plan reads
it back (``pools.analyse`` sorts the members) and says what comes next for each piece of work
under way: abandon a machine that failed or did not boot in time, wait for a deletion or a
replacement to become Ready, retire an old node once its replacement is Ready (within the
availability floor), carry on a retirement, wait for a human on a quarantined node, undo a
stale cordon. The budget is updated as the executor will find it.
"""

from __future__ import annotations

from gitops.fleet.quantities import format_duration
from gitops.inventory import Machine, Member
from gitops.plan import actions
from gitops.plan.batches import Draft
from gitops.plan.budget import Budget
from gitops.plan.model import AbandonMachine, AnyAction, Uncordon
from gitops.plan.pools import NO_REASON, PoolWork


def carry_on(d: Draft) -> None:
    """Add the steps of the work in flight to batch 1, in the order they are to be done."""
    work, b = d.work, d.budget
    d.actions.extend(abandon_action(work, m) for m in work.abandon)
    for m in work.deleting:
        d.actions.append(
            actions.wait(
                work,
                "deletion",
                m.name,
                f"{m.name} is being deleted; it holds a surge slot until it is gone",
            )
        )
    for m in work.leaving:
        b.take_available(m.available)
        d.actions.append(
            actions.retire(
                work,
                m,
                "",
                reason=f"carry on retiring {m.name} (phase {m.phase or 'deleting'})",
                budget="already under way",
                ready=True,
            )
        )
    for target, replacement in work.pairs:
        _pair(d, target, replacement)
    d.actions.extend(actions.quarantine_wait(work, m) for m in work.quarantined)
    for m in work.uncordon:
        d.actions.append(_uncordon(work, b, m))
    timeout = work.pool.update.node_startup_timeout
    for m in work.provisioning:
        machine = m.machine
        assert machine is not None
        d.actions.append(
            actions.wait(
                work,
                "node-ready",
                machine.name,
                f"new machine {machine.name} is not Ready yet",
                until=machine.created + timeout,
            )
        )


def _capi_says(machine: Machine) -> str:
    """What Cluster API reported of a Machine that never became Ready, for the reason: its
    failure, else that its infrastructure never got provisioned (either API version)."""
    if machine.failure:
        return f"; Cluster API reports {machine.failure}"
    if machine.phase in ("Pending", "Provisioning") and not machine.infrastructure_ready:
        return "; its infrastructure was never provisioned"
    return ""


def abandon_action(work: PoolWork, m: Member) -> AbandonMachine:
    machine = m.machine
    assert machine is not None
    timeout = work.pool.update.node_startup_timeout
    why = (
        f"marked failed: {m.failed}"
        if m.failed
        else f"no Ready node {format_duration(timeout)} after creation (nodeStartupTimeout"
        f"{_capi_says(machine)})"
    )
    return AbandonMachine(
        cluster=work.cluster,
        pool=work.pool.name,
        machine=machine.name,
        node=m.node.name if m.node is not None else "",
        replaces=m.replaces,
        counted=bool(m.failed),
        reason=f"abandon {machine.name}: {why}",
        budget="counts once against the wave's maxFailedNodes",
        ready=True,
    )


def _pair(d: Draft, target: Member, replacement: Member) -> None:
    """An old node and its live replacement: retire it, or wait for the replacement or a human."""
    work, b = d.work, d.budget
    repl = replacement.machine.name if replacement.machine is not None else ""
    if target.quarantined:
        d.actions.append(actions.quarantine_wait(work, target))
    elif target.leaving:
        b.take_available(target.available)
        d.actions.append(
            actions.retire(
                work,
                target,
                repl,
                reason=f"carry on retiring {target.name}, replaced by {repl}",
                budget="already under way",
                ready=True,
            )
        )
    elif replacement.ready:
        d.actions.append(_retire_now(work, b, target, repl, f"{repl} is Ready"))
    else:
        timeout = work.pool.update.node_startup_timeout
        created = replacement.machine.created if replacement.machine is not None else 0.0
        d.actions.append(
            actions.wait(
                work,
                "node-ready",
                repl,
                f"replacement {repl} for {target.name} is not Ready yet; it is "
                f"abandoned if not Ready {format_duration(timeout)} after creation",
                until=created + timeout,
            )
        )
        _, why = work.why.get(target.name, NO_REASON)
        d.after.append(
            actions.retire(
                work,
                target,
                repl,
                reason=f"retire {target.name} once {repl} is Ready: {why}",
                budget="after its replacement is Ready",
                ready=False,
            )
        )


def _retire_now(
    work: PoolWork, b: Budget, target: Member, replacement: str, because: str
) -> AnyAction:
    """RetireNode if the availability budget allows it now, else a Wait saying why not."""
    if not b.may_take(target.available):
        return actions.wait(
            work,
            "availability",
            target.name,
            f"{target.name} waits: {b.floor_text()} (replicas {b.replicas} - maxUnavailable "
            f"{b.unavailable})",
        )
    b.take_available(target.available)
    _, why = work.why.get(target.name, NO_REASON)
    return actions.retire(
        work,
        target,
        replacement,
        reason=f"retire {target.name}, {because}" + (f": {why}" if why else ""),
        budget=b.availability_text(target.available),
        ready=True,
    )


def _uncordon(work: PoolWork, b: Budget, m: Member) -> Uncordon:
    node = m.node
    assert node is not None
    if node.ready:
        b.add_available()
    return Uncordon(
        cluster=work.cluster,
        pool=work.pool.name,
        node=node.name,
        reason=(
            f"{node.name} was cordoned by this controller ({node.cordoned_by}) for a "
            "replacement that no longer exists"
        ),
        budget=f"availability: {b.available} available after this",
        ready=True,
    )
