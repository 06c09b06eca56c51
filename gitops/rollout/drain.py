"""Retiring one node: cordon, drain through the Eviction API, then delete its machine.

Shell layer. A retirement spans many reconciles; every step is recorded on the Node itself
(``fleet.gitops.io/phase``: cordoned → draining → retired, ``drain-started``), so a restart
at any instant carries on from what the objects say. The steps of ``gitops.rollout.steps``
call these; each ``drain_pass`` is one pass:
pods are listed afresh, DaemonSet and mirror pods and finished pods are skipped, evictions
refused by a PodDisruptionBudget (429) are simply tried again on the next pass, evicted pods
are waited for until they are gone (Terminating for their grace period), and once
``drainTimeout`` has passed the pool's ``onDrainTimeout`` decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

from gitops.errors import GitopsError
from gitops.fleet.spec import NodePool
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    DRAIN_BLOCKED_ANNOTATION,
    DRAIN_STARTED_ANNOTATION,
    PHASE_ANNOTATION,
    QUARANTINE_LABEL,
)
from gitops.inventory import Node
from gitops.kube import actions
from gitops.kube.client import Kube
from gitops.kube.errors import NotFound
from gitops.kube.refs import PodRef

log = logging.getLogger(__name__)

Outcome = Literal["draining", "drained", "quarantined", "failed"]


@dataclass(frozen=True)
class DrainResult:
    outcome: Outcome
    remaining: int = 0
    blocked_by: tuple[str, ...] = ()
    message: str = ""
    terminating: int = 0  # of ``remaining``: evicted pods not gone yet


def cordoned(node: Node, now: float) -> Node:
    """``node`` as ``cordon`` leaves it: unschedulable, its drain started (at ``now`` unless
    an earlier pass started it)."""
    started = node.annotations.get(DRAIN_STARTED_ANNOTATION, f"{now:.3f}")
    return replace(
        node,
        unschedulable=True,
        annotations={**node.annotations, DRAIN_STARTED_ANNOTATION: started},
    )


def cordon(kube: Kube, node: Node, plan_id: str, now: float) -> None:
    """Cordon ``node`` and record who did it and when its drain started (idempotent)."""
    annotations: dict[str, str | None] = {
        CORDONED_BY_ANNOTATION: plan_id,
        PHASE_ANNOTATION: "draining",
    }
    if DRAIN_STARTED_ANNOTATION not in node.annotations:
        annotations[DRAIN_STARTED_ANNOTATION] = f"{now:.3f}"
    actions.patch_node(kube, node.name, unschedulable=True, annotations=annotations)


def drain_pass(kube: Kube, node: Node, pool: NodePool, now: float) -> DrainResult:
    """One pass of evictions; the caller deletes the machine once this says ``drained``."""
    pods = [p for p in actions.pods_on_node(kube, node.name) if p.evictable]
    blocked: list[str] = []
    failures: list[str] = []
    remaining: list[PodRef] = []
    terminating = 0
    for pod in pods:
        if pod.deleting:
            # Already going: the node is drained only once its kubelet has stopped it (as
            # kubectl drain waits for deletions), so its machine is not deleted under it.
            terminating += 1
            continue
        try:
            refused = actions.try_evict(kube, pod)
        except GitopsError as err:
            failures.append(str(err))
        else:
            if refused is None:
                # evicted (or gone already): Terminating for its grace period; a later pass
                # lists the node's pods afresh and sees when it is gone
                terminating += 1
                continue
            blocked.append(refused.budget)
        remaining.append(pod)
    if not remaining and not terminating:
        return DrainResult("drained")
    started = float(node.annotations.get(DRAIN_STARTED_ANNOTATION, now) or now)
    blockers = tuple(sorted(set(blocked)))
    if now - started < pool.update.drain_timeout:
        blocked_by = ", ".join(blockers)
        if blockers and node.annotations.get(DRAIN_BLOCKED_ANNOTATION) != blocked_by:
            # said once per change: a drain waiting on a budget passes here many times
            actions.patch_node(kube, node.name, annotations={DRAIN_BLOCKED_ANNOTATION: blocked_by})
        waiting = f"{terminating} pods terminating" if terminating else ""
        message = "; ".join(m for m in (*failures, waiting) if m)
        return DrainResult("draining", len(remaining) + terminating, blockers, message, terminating)
    policy = pool.update.on_drain_timeout
    why = f"drain of {node.name} timed out after {pool.update.drain_timeout:g}s" + (
        f", blocked by PodDisruptionBudget {', '.join(blockers)}" if blockers else ""
    )
    if policy == "force":
        for pod in remaining:
            try:
                actions.delete_pod(kube, pod)
            except NotFound:
                continue
        log.warning("%s; onDrainTimeout force deleted %d pods.", why, len(remaining))
        return DrainResult("drained", 0, blockers, why + "; pods deleted (force)")
    if policy == "quarantine":
        actions.patch_node(
            kube,
            node.name,
            labels={QUARANTINE_LABEL: "drain-timeout"},
            annotations={DRAIN_BLOCKED_ANNOTATION: ", ".join(blockers) or "timeout"},
        )
        return DrainResult("quarantined", len(remaining), blockers, why + "; node quarantined")
    return DrainResult("failed", len(remaining), blockers, why)
