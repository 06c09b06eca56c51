"""One pool's plan in MachineDeployment mode: roll the deployment, wait for Cluster API, count.

Part of the pure core (gitops.plan), called by ``poolplan`` instead of the node-by-node batch
rules for a pool that names a ``machineDeployment``. Cluster API replaces the machines (its
MachineSets honour the pool's maxSurge and maxUnavailable, one Machine at a time); what stays
gitops' own is decided here and upstream of here exactly as for standalone pools: the wave
gate, ``maxClustersInParallel``, the pool soak (written as the deployment's
``minReadySeconds``, so Cluster API soaks each new machine before it goes on), the wave soak
(from the Ready time of the nodes the new template made), the failure budget (a Machine of the new template whose node is not Ready
``nodeStartupTimeout`` after its creation is abandoned and counted, ``inflight._abandon``) and
halts (a stopped or paused cluster pauses a deployment that is still rolling).

A pool is due to roll when the deployment was pointed at another image than the pool declares
(its ``fleet.gitops.io/image`` annotation; before gitops first rolled it, when any node is
Outdated), when its replicas or rolling update differ from the pool's, or when it is paused
while the rollout may go on. The template it is pointed at is named from its content
(``template_name``), so the same roll planned again names the same template; a rollback (the
pool declares the image the deployment ran before) points back at the template it used then.
"""

from __future__ import annotations

import hashlib

from gitops.fleet.wellknown import (
    PREVIOUS_IMAGE_ANNOTATION,
    PREVIOUS_TEMPLATE_ANNOTATION,
    TEMPLATE_BASE_ANNOTATION,
)
from gitops.inventory import MachineDeployment
from gitops.plan import actions
from gitops.plan.context import Context
from gitops.plan.inflight import abandon_action
from gitops.plan.model import (
    AnyAction,
    ClusterStatus,
    PauseMachineDeployment,
    RollMachineDeployment,
)
from gitops.plan.pools import PoolWork

DEFAULT_IMAGE_FIELD = "spec.template.spec.image"


def template_name(base: str, image_field: str, source: str) -> str:
    """The name of ``base`` cloned with ``source`` at ``image_field``: a hash of that content,
    so that a roll repeated after a crash finds its template instead of making a second."""
    digest = hashlib.sha256(f"{base}\n{image_field}\n{source}".encode()).hexdigest()[:10]
    return f"{base[: 63 - 11].rstrip('-')}-{digest}"


def _strategy(value: int | str) -> str:
    return str(value)


def _due(ctx: Context, work: PoolWork, md: MachineDeployment) -> str:
    """Why the deployment must be rolled now ("" when it need not)."""
    pool = work.pool
    if md.image and md.image != pool.image:
        return f"the deployment runs {md.image}, the pool declares {pool.image}"
    if not md.image and work.outdated:
        return f"{work.outdated} nodes are Outdated (the pool declares {pool.image})"
    if md.replicas != pool.replicas:
        return f"the deployment has {md.replicas} replicas, the pool declares {pool.replicas}"
    surge, unavailable = _strategy(pool.update.max_surge), _strategy(pool.update.max_unavailable)
    if (md.max_surge, md.max_unavailable) != (surge, unavailable):
        return (
            f"the deployment rolls with maxSurge {md.max_surge or 'default'}, maxUnavailable "
            f"{md.max_unavailable or 'default'}; the pool declares {surge}, {unavailable}"
        )
    if md.paused:
        return "the deployment is paused (by a halt or a paused cluster) and may go on"
    return ""


def min_ready_seconds(soak: float) -> int:
    """The pool's soak as Cluster API's minReadySeconds (whole seconds, rounded down).

    Cluster API counts a new Machine available only once its node has been Ready that long, so
    the next machines of its rolling update start, and old ones go, only after each new one
    soaked: the pool soak of the standalone mode, played by Cluster API. Every roll writes
    it; a soak changed alone reaches the deployment with its next roll (a deployment gitops
    never rolled keeps the value it has, so a first run is not a roll of every deployment).
    """
    return int(soak)


def roll(ctx: Context, work: PoolWork, md: MachineDeployment, why: str, ready: bool) -> AnyAction:
    """The roll of the pool's deployment to the image the pool declares."""
    pool = work.pool
    ref = pool.machine_deployment
    assert ref is not None
    topology = ref.topology is not None
    rollback = bool(
        md.annotations.get(PREVIOUS_IMAGE_ANNOTATION) == pool.image
        and md.annotations.get(PREVIOUS_TEMPLATE_ANNOTATION)
    )
    if topology:
        template = ""
    elif md.image == pool.image:
        template = md.template
    elif rollback:
        template = md.annotations[PREVIOUS_TEMPLATE_ANNOTATION]
    else:
        base = md.annotations.get(TEMPLATE_BASE_ANNOTATION) or md.template
        field = pool.machine_template.image_field if pool.machine_template else None
        template = template_name(
            base, field or DEFAULT_IMAGE_FIELD, ctx.fleet.images[pool.image].source
        )
    return RollMachineDeployment(
        cluster=work.cluster,
        pool=pool.name,
        deployment=ref.topology or md.name if topology else md.name,
        topology=topology,
        template=template,
        image=pool.image,
        replicas=pool.replicas,
        max_surge=_strategy(pool.update.max_surge),
        max_unavailable=_strategy(pool.update.max_unavailable),
        min_ready_seconds=min_ready_seconds(pool.update.soak),
        rollback=rollback and md.image != pool.image,
        reason=f"roll: {why}",
        budget=(
            f"Cluster API replaces the machines within replicas {pool.replicas} + maxSurge "
            f"{pool.surge} and {pool.replicas} - maxUnavailable {pool.unavailable} available; "
            "failures count against the wave's maxFailedNodes"
        ),
        ready=ready,
    )


def _progress(md: MachineDeployment) -> str:
    stale = (
        " (status not yet of the current spec)" if md.observed_generation < md.generation else ""
    )
    return (
        f"MachineDeployment {md.name} rolling: {md.up_to_date}/{md.replicas} up to date, "
        f"{md.available} available, {md.status_replicas} machines{stale}"
    )


def plan_md_pool(
    ctx: Context, work: PoolWork, mode: str, cluster_status: ClusterStatus
) -> tuple[list[AnyAction], list[AnyAction], str]:
    """(batch 1's steps, a projected batch's steps, why the pool has work not started)."""
    pool, md = work.pool, work.deployment
    ref = pool.machine_deployment
    assert ref is not None
    # A failed Machine is deleted to be counted once; its MachineSet makes another, so once the
    # rollout is stopped (or the cluster paused) failed Machines stay, under a paused deployment,
    # rather than churn and count on for ever.
    now: list[AnyAction] = (
        [abandon_action(work, m) for m in work.abandon] if mode != "inflight" else []
    )
    if md is None:
        what = (
            f"topology worker {ref.topology}" if ref.topology else f"MachineDeployment {ref.name}"
        )
        reason = (
            f"{what} not found in namespace of cluster {work.cluster}; create it or fix the pool"
        )
        now.append(actions.wait(work, "human", ref.topology or ref.name or "", reason))
        return now, [], ""
    why = _due(ctx, work, md)
    if mode == "inflight":
        if md.paused is False and work.rolling and cluster_status in ("stopped", "paused"):
            now.append(
                PauseMachineDeployment(
                    cluster=work.cluster,
                    pool=pool.name,
                    deployment=md.name,
                    topology=ref.topology is not None,
                    reason=f"the rollout is {cluster_status}: stop Cluster API rolling {md.name}",
                    budget="pausing replaces nothing",
                    ready=True,
                )
            )
        return now, [], f"not started: roll {md.name}: {why}" if why and not md.paused else ""
    # A deployment rolling to the pool's image is waited for, not rolled again; a topology
    # worker's deployment carries no image annotation (the topology controller copies labels
    # only), so while it rolls it is waited for all the same.
    settling = work.rolling and not md.paused and (md.image == pool.image or bool(ref.topology))
    if why and not settling:
        step = roll(ctx, work, md, why, ready=mode == "active")
        return ([*now, step], [], "") if mode == "active" else (now, [step], "")
    if work.rolling:
        now.append(actions.wait(work, "rollout", md.name, _progress(md)))
    elif work.targets:
        # Rolled by Cluster API's rule, yet nodes still run another image (a node the caches
        # still show, or a Machine no MachineSet of the deployment owns): say so rather than
        # hold the wave open without a word.
        reason = (
            f"MachineDeployment {md.name} is rolled to {md.image or 'its template'}, but "
            f"{len(work.targets)} nodes still run another image"
        )
        now.append(actions.wait(work, "rollout", md.name, reason))
    timeout = pool.update.node_startup_timeout
    for m in work.provisioning:
        machine = m.machine
        assert machine is not None
        reason = f"new machine {machine.name} is not Ready yet"
        now.append(
            actions.wait(work, "node-ready", machine.name, reason, until=machine.created + timeout)
        )
    return now, [], ""
