"""The executor's steps, one function per kind, each ending in a typed ``StepOutcome``.

Shell layer, between ``gitops.rollout.executor`` (which picks the steps, runs them on its
worker threads and books their outcomes with its scheduler) and the adapters
(``gitops.providers``, ``gitops.kube``) through which they write. A step does *how*, never
*whether*: the planner decided that. Every write is idempotent (machine names derive from
what they are for, annotations are merges), so a step repeated after a crash is harmless.

``perform`` runs one of a plan's ready actions: ``create_replacement`` and ``scale_up``
create a Machine; ``retire`` and ``scale_down`` take a node down (``cordon``, then ``drain``
one eviction pass at a time, then ``delete`` its Machine); ``uncordon`` gives back a node
whose replacement went away. ``abandon`` (run by the executor in its own thread, as it writes
the durable record) and ``mark_ready`` are called directly. A step's failure is its outcome's
``failure``, never an exception; events (``emit``) are for people and displays only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gitops.errors import GitopsError
from gitops.fleet import Fleet
from gitops.fleet.spec import ClusterDocument, NodePool
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    DRAIN_BLOCKED_ANNOTATION,
    DRAIN_STARTED_ANNOTATION,
    FAILED_ANNOTATION,
    PHASE_ANNOTATION,
)
from gitops.inventory import Inventory, Node
from gitops.kube import actions
from gitops.kube.client import Kube
from gitops.kube.errors import NotFound, retry_after_of
from gitops.plan import (
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    PauseMachineDeployment,
    Plan,
    RetireNode,
    RollMachineDeployment,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
)
from gitops.providers.clusterapi import ClusterAPIProvider, MachineRequest
from gitops.rollout import drain as evictions
from gitops.rollout.result import Failure, StepOutcome

SETTLED = StepOutcome(True)
MARK_READY = "MarkReady"  # the kind of a ``mark_ready`` step in a pass's outcomes


class Emit(Protocol):
    """Tell people what happened (logs, progress displays); decides nothing."""

    def __call__(
        self, cluster: str, pool: str, subject: str, message: str, level: str = "info"
    ) -> None: ...


@dataclass(frozen=True)
class Context:
    """What every step of one pass works with."""

    fleet: Fleet
    provider: ClusterAPIProvider
    workload: Callable[[str], Kube | None]  # a workload cluster's client, when connected
    emit: Emit
    plan: Plan
    inventory: Inventory
    now: float
    wave_of: Mapping[str, str]  # cluster -> its wave
    # Sharded (``gitops run --sharding``): raises ``Fenced`` unless this replica still owns
    # the cluster (its member Lease is current and the cluster's epoch is the one it took).
    # Every step that writes calls it first, so an ex-owner woken from a pause writes nothing.
    fence: Callable[[str], None] = field(default=lambda cluster: None)


def failed(action: AnyAction, err: GitopsError) -> StepOutcome:
    """The outcome of a step that failed: tried again after its backoff."""
    message = f"{action.kind} failed: {err}"
    return StepOutcome(
        False,
        failure=Failure(action.cluster, action.pool, action.subject, message),
        retry_after=retry_after_of(err),
    )


def perform(ctx: Context, action: AnyAction, slot: int, state: RolloutState) -> StepOutcome:
    """Carry one ready step out (not an abandon: see ``abandon``)."""
    doc = ctx.fleet.cluster(action.cluster)
    pool = doc.pool(action.pool) if doc is not None else None
    if doc is None or pool is None:
        return SETTLED
    try:
        ctx.fence(action.cluster)
        if isinstance(action, CreateReplacement):
            return create_replacement(ctx, action, doc, pool, state)
        if isinstance(action, ScaleUp):
            return scale_up(ctx, action, slot, doc, pool, state)
        if isinstance(action, RetireNode):
            return retire(ctx, action, doc, pool)
        if isinstance(action, ScaleDown):
            return scale_down(ctx, action, doc, pool)
        if isinstance(action, Uncordon):
            return uncordon(ctx, action)
        if isinstance(action, RollMachineDeployment):
            return roll_deployment(ctx, action, doc, pool)
        if isinstance(action, PauseMachineDeployment):
            return pause_deployment(ctx, action, doc, pool)
    except GitopsError as err:
        return failed(action, err)
    return SETTLED


# -- making machines -----------------------------------------------------------------------


def create_replacement(
    ctx: Context,
    action: CreateReplacement,
    doc: ClusterDocument,
    pool: NodePool,
    state: RolloutState,
) -> StepOutcome:
    """Create the Machine replacing ``action.replaces`` (its name is keyed on that node)."""
    return _create(ctx, action, "", doc, pool, state)


def scale_up(
    ctx: Context,
    action: ScaleUp,
    slot: int,
    doc: ClusterDocument,
    pool: NodePool,
    state: RolloutState,
) -> StepOutcome:
    """Create a Machine for capacity; it has no node to key on: its ``slot`` (its step number
    in this plan) tells it apart."""
    return _create(ctx, action, str(slot), doc, pool, state)


def _create(
    ctx: Context,
    action: ScaleUp | CreateReplacement,
    slot: str,
    doc: ClusterDocument,
    pool: NodePool,
    state: RolloutState,
) -> StepOutcome:
    # A failed attempt is deleted and the inventory goes back to what it was, so the plan
    # id (and with it the name) would repeat: the new Machine would collide with the old
    # one, or with its infrastructure clone, while they are still being deleted. The wave's
    # failure count is durable and moves with every abandon, so it tells attempts apart.
    failures = state.wave(ctx.wave_of[doc.name]).failures
    attempt = f"#attempt-{failures}" if failures else ""
    replaces = action.replaces if isinstance(action, CreateReplacement) else ""
    request = MachineRequest(
        cluster=doc,
        pool=pool,
        image_name=action.image,
        image=ctx.fleet.images[action.image],
        zone=action.zone,
        replaces=replaces,
        plan_id=ctx.plan.id,
        slot=slot + attempt,
    )
    machine = ctx.provider.create_replacement(request)
    what = f"for {replaces}" if replaces else "to scale up"
    ctx.emit(
        doc.name, pool.name, machine.name, f"created machine {machine.name} in {action.zone} {what}"
    )
    return StepOutcome(True, created=machine)


def mark_ready(ctx: Context, cluster: str, machine: str) -> StepOutcome:
    """Record ``ready`` on a machine the controller created once its node is first Ready.

    From then on nodeStartupTimeout no longer applies to it (the planner reads the phase).
    """
    doc = ctx.fleet.cluster(cluster)
    if doc is None:
        return SETTLED
    try:
        ctx.fence(cluster)
        ctx.provider.annotate_machine(doc.namespace, machine, {PHASE_ANNOTATION: "ready"})
    except GitopsError as err:
        message = f"cannot mark {machine} ready: {err}"
        return StepOutcome(False, failure=Failure(cluster, "", machine, message))
    return SETTLED


def abandon(
    ctx: Context,
    action: AbandonMachine,
    doc: ClusterDocument,
    state: RolloutState,
    save: Callable[[RolloutState], None],
) -> tuple[StepOutcome, RolloutState]:
    """Count a failed machine against its wave's budget (once), mark it failed, delete it.

    Count first (``save`` writes the durable record), then mark: a crash in between counts
    the failure twice, which halts early; the other order could lose it and let a bad image
    go further. When a write fails the record handed back is the one handed in, so the pass
    leaves the count where the machine's marks say it is (the next pass counts it again).
    """
    failed_node: Failure | None = None
    try:
        ctx.fence(doc.name)
        counted = state
        if not action.counted:
            counted = state.record_failure(ctx.wave_of[doc.name], doc.name)
            save(counted)
            reason = action.reason.removeprefix(f"abandon {action.machine}: ")[:200]
            ctx.provider.annotate_machine(
                doc.namespace, action.machine, {FAILED_ANNOTATION: reason}
            )
            message = f"machine {action.machine} failed: {action.reason}"
            failed_node = Failure(doc.name, action.pool, action.machine, message)
            ctx.emit(doc.name, action.pool, action.machine, message, "error")
        ctx.provider.delete_machine(doc.namespace, action.machine)
    except GitopsError as err:
        outcome = failed(action, err)
        return StepOutcome(False, failure=outcome.failure, failed_node=failed_node), state
    return StepOutcome(True, failed_node=failed_node), counted


# -- MachineDeployment mode ---------------------------------------------------------------


def roll_deployment(
    ctx: Context, action: RollMachineDeployment, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """Point the pool's MachineDeployment (or topology worker) at the image; Cluster API then
    replaces the machines. Repeating it finds the template made and the swap done."""
    source = ctx.fleet.images[action.image].source
    deployments = ctx.provider.deployments
    if action.topology:
        changed = deployments.roll_topology(
            doc,
            pool,
            image=action.image,
            source=source,
            replicas=action.replicas,
            max_surge=action.max_surge,
            max_unavailable=action.max_unavailable,
            min_ready_seconds=action.min_ready_seconds,
        )
        what = f"topology worker {action.deployment} to {action.image}"
    else:
        changed = deployments.roll(
            doc,
            pool,
            template=action.template,
            image=action.image,
            source=source,
            previous_image=_running(ctx, action),
            replicas=action.replicas,
            max_surge=action.max_surge,
            max_unavailable=action.max_unavailable,
            min_ready_seconds=action.min_ready_seconds,
        )
        what = f"MachineDeployment {action.deployment} to template {action.template}"
    verb = "rolled" if changed else "kept"
    ctx.emit(doc.name, pool.name, action.deployment, f"{verb} {what} ({action.image})")
    return SETTLED


def _running(ctx: Context, action: RollMachineDeployment) -> str:
    """The one image the pool's Outdated nodes run ("" when they run several, or none): what a
    deployment gitops never rolled before ran, and so what a rollback would point back to."""
    images = {
        f.observed
        for f in ctx.plan.findings
        if f.kind == "Outdated" and f.cluster == action.cluster and f.pool == action.pool
    }
    return images.pop() if len(images) == 1 else ""


def pause_deployment(
    ctx: Context, action: PauseMachineDeployment, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """Stop Cluster API rolling the pool (a halt, or the cluster paused in git)."""
    ctx.provider.deployments.pause(doc, pool)
    ctx.emit(doc.name, pool.name, action.deployment, f"paused {action.deployment}", "warning")
    return SETTLED


# -- taking nodes down ---------------------------------------------------------------------


def retire(
    ctx: Context, action: RetireNode | ScaleDown, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """One pass of a retirement: cordon (once), drain, and once drained delete the machine.

    Settled once the machine is deleted (or the drain failed and the rollout must halt).
    """
    seen = ctx.inventory.cluster(doc.name)
    node = seen.node(action.node) if seen is not None and action.node else None
    kube = ctx.workload(doc.name)
    if node is not None and kube is not None and not node.deleting:
        try:
            outcome = _take_down(ctx, kube, node, doc, pool)
        except NotFound:
            outcome = SETTLED  # the node went away under us: only its machine is left
        if outcome.halt or not outcome.settled:
            return outcome
    if action.machine:
        return delete(ctx, action, doc, pool)
    return SETTLED


def scale_down(
    ctx: Context, action: ScaleDown, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """A retirement for capacity: the pool has more than ``replicas``."""
    return retire(ctx, action, doc, pool)


def _take_down(
    ctx: Context, kube: Kube, node: Node, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    if node.unschedulable and node.phase == "retired":
        # Drained by an earlier pass (it wrote "retired" once no pod was left, and a
        # cordoned node gets none): what is left is its machine, or waiting for it to go.
        return SETTLED
    if not node.unschedulable or node.phase != "draining":
        cordon(ctx, kube, node, doc, pool)
        node = evictions.cordoned(node, ctx.now)
    return drain(ctx, kube, node, doc, pool)


def cordon(
    ctx: Context, kube: Kube, node: Node, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """Cordon ``node``, recording who did it and when its drain started (idempotent)."""
    evictions.cordon(kube, node, ctx.plan.id, ctx.now)
    ctx.emit(doc.name, pool.name, node.name, f"cordoned {node.name}")
    return SETTLED


def drain(
    ctx: Context, kube: Kube, node: Node, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """One eviction pass over a cordoned node: settled once it is drained (or the drain
    failed for good, with the halt); else blocked by the budgets that refused, until a retry."""
    result = evictions.drain_pass(kube, node, pool, ctx.now)
    if result.outcome == "drained":
        actions.patch_node(kube, node.name, annotations={PHASE_ANNOTATION: "retired"})
        return SETTLED
    if result.outcome == "failed":
        ctx.emit(doc.name, pool.name, node.name, result.message, "error")
        # The reason names the node, the blocking PDB and the timeout: it is what the
        # record, the plan and `gitops apply` show the SRE who has to act.
        why = result.message or f"drain of {node.name} failed"
        return StepOutcome(True, halt=f"{why} (onDrainTimeout: fail)")
    if result.outcome == "quarantined":
        ctx.emit(doc.name, pool.name, node.name, result.message, "warning")
    elif result.blocked_by:
        blockers = ", ".join(result.blocked_by)
        ctx.emit(
            doc.name,
            pool.name,
            node.name,
            f"drain of {node.name} blocked by PodDisruptionBudget {blockers}; retrying",
        )
    return StepOutcome(False, blocked_by=result.blocked_by, terminating=result.terminating > 0)


def delete(
    ctx: Context, action: RetireNode | ScaleDown, doc: ClusterDocument, pool: NodePool
) -> StepOutcome:
    """Mark the machine retired and delete it (settled too when it is already gone)."""
    try:
        ctx.provider.annotate_machine(doc.namespace, action.machine, {PHASE_ANNOTATION: "retired"})
    except NotFound:
        # Deleted by an earlier pass whose effect the cache has not shown yet: done.
        return SETTLED
    ctx.provider.delete_machine(doc.namespace, action.machine)
    ctx.emit(
        doc.name,
        pool.name,
        action.node or action.machine,
        f"deleted machine {action.machine} of {action.node or 'no node'}",
    )
    return SETTLED


def uncordon(ctx: Context, action: Uncordon) -> StepOutcome:
    """Give a node back to the scheduler and forget its retirement."""
    kube = ctx.workload(action.cluster)
    if kube is None:
        return SETTLED
    actions.patch_node(
        kube,
        action.node,
        unschedulable=False,
        annotations={
            CORDONED_BY_ANNOTATION: None,
            PHASE_ANNOTATION: None,
            DRAIN_STARTED_ANNOTATION: None,
            DRAIN_BLOCKED_ANNOTATION: None,
        },
    )
    ctx.emit(action.cluster, action.pool, action.node, f"uncordoned {action.node}")
    return SETTLED
