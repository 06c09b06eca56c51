"""Retiring one node: cordon, drain through the Eviction API, then delete its machine.

Shell layer. A retirement spans many reconciles; every step is recorded on the Node itself
(``fleet.gitops.io/phase``: cordoned → draining → retired, ``drain-started``), so a restart
at any instant carries on from what the objects say. Each call of ``retire`` does one pass:
pods are listed afresh, DaemonSet and mirror pods and finished pods are skipped, evictions
refused by a PodDisruptionBudget (429) are simply tried again on the next pass, evicted pods
are waited for until they are gone (Terminating for their grace period), and once
``drainTimeout`` has passed the pool's ``onDrainTimeout`` decides.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

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
from gitops.kube.errors import NotFound, TooManyRequests
from gitops.kube.translate import evictable

log = logging.getLogger(__name__)

Outcome = Literal["draining", "drained", "quarantined", "failed"]


@dataclass(frozen=True)
class DrainResult:
    outcome: Outcome
    remaining: int = 0
    blocked_by: tuple[str, ...] = ()
    message: str = ""
    terminating: int = 0  # of ``remaining``: evicted pods not gone yet


def _blocking_pdb(err: TooManyRequests, namespace: str) -> str:
    """The PDB named by a 429 eviction answer, as ``namespace/name`` (it is the pod's namespace).

    The API server names it in a cause: "The disruption budget web-pdb needs 2 healthy pods
    and has 2 currently".
    """
    texts = [str(c.get("message", "")) for c in (err.details or {}).get("causes") or []]
    for text in [*texts, str(err)]:
        match = _PDB_NAME.search(text)
        if match:
            return f"{namespace}/{match.group(1)}"
    return f"a PodDisruptionBudget in {namespace}"


_PDB_NAME = re.compile(r"disruption budget ([a-z0-9][-a-z0-9.]*)")


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
    pods = [p for p in actions.pods_on_node(kube, node.name) if evictable(p)]
    blocked: list[str] = []
    failures: list[str] = []
    remaining: list[dict[str, Any]] = []
    terminating = 0
    for pod in pods:
        meta: dict[str, Any] = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            # Already going: the node is drained only once its kubelet has stopped it (as
            # kubectl drain waits for deletions), so its machine is not deleted under it.
            terminating += 1
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        try:
            actions.evict(kube, meta.get("namespace", ""), meta.get("name", ""), grace)
            terminating += 1  # evicted: Terminating for its grace period (a later pass sees)
            continue
        except TooManyRequests as err:
            blocked.append(_blocking_pdb(err, meta.get("namespace", "")))
        except NotFound:
            continue
        except GitopsError as err:
            failures.append(str(err))
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
            meta = pod.get("metadata") or {}
            try:
                actions.delete_pod(kube, meta.get("namespace", ""), meta.get("name", ""))
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
