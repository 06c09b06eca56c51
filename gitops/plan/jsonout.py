"""JSON rendering of plans and findings: the stable, versioned form bots and tools read.

Part of the pure core: a pure function of the plan. The shape is ``gitops.plan/v1`` (findings
alone: ``gitops.drift/v1``), described by the JSON Schemas in ``gitops.plan.schema`` and in
gitops/plan/README.md. Keys appear in a fixed, documented order (never sorted at random, never
dependent on input order); times are seconds since the epoch (numbers) with an RFC 3339 twin
for people. Adding a key is a compatible change; renaming or removing one bumps the version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gitops.drift import KINDS, Finding
from gitops.facts import PoolFingerprints
from gitops.plan._format import iso, totals
from gitops.plan.model import (
    ACTION_KINDS,
    SCHEMA_VERSION,
    AbandonMachine,
    AnyAction,
    Batch,
    ClusterPlan,
    CreateReplacement,
    PauseMachineDeployment,
    Plan,
    PoolPlan,
    RetireNode,
    RollMachineDeployment,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    WavePlan,
)
from gitops.plan.schema import FINDINGS_SCHEMA_VERSION


def render(plan: Plan) -> str:
    """The plan as indented JSON text ending in a newline."""
    return json.dumps(to_dict(plan), indent=2, ensure_ascii=False) + "\n"


def render_findings(
    findings: Sequence[Finding], prints: Sequence[PoolFingerprints] | None = None
) -> str:
    return json.dumps(findings_to_dict(findings, prints), indent=2, ensure_ascii=False) + "\n"


def _time(ts: float | None) -> dict[str, Any] | None:
    return None if ts is None else {"epoch": ts, "utc": iso(ts)}


def to_dict(plan: Plan) -> dict[str, Any]:
    steps, ready, waits = totals(plan)
    by_kind = dict.fromkeys(ACTION_KINDS, 0)
    for action in plan.actions():
        by_kind[action.kind] += 1
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": plan.id,
        "plannerVersion": plan.planner_version,
        "fleet": plan.fleet,
        "fleetRevision": plan.fleet_revision,
        "inventoryDigest": plan.inventory_digest,
        "now": _time(plan.now),
        "status": plan.status,
        "reason": plan.reason,
        "summary": {
            "actions": steps,
            "ready": ready,
            "waits": waits,
            "byKind": by_kind,
            "findings": len(plan.findings),
            "waves": len(plan.waves),
            "clusters": sum(len(w.clusters) for w in plan.waves),
        },
        "drift": {
            "driftedNodes": plan.drifted_nodes,
            "observedNodes": plan.observed_nodes,
            "fraction": round(plan.drifted_fraction, 6),
            "maxFraction": plan.max_drifted_fraction,
            "overridden": plan.override_drift_limit,
        },
        "waves": [_wave(w) for w in plan.waves],
        "findings": [finding_to_dict(f) for f in plan.findings],
    } | ({"override": plan.override} if plan.override else {})


def _wave(wave: WavePlan) -> dict[str, Any]:
    return {
        "index": wave.index,
        "name": wave.name,
        "status": wave.status,
        "reason": wave.reason,
        "soakUntil": _time(wave.soak_until),
        "maxClustersInParallel": wave.max_clusters_in_parallel,
        "clusters": [_cluster(c) for c in wave.clusters],
    } | ({"nextStart": _time(wave.next_start)} if wave.next_start is not None else {})


def _cluster(cluster: ClusterPlan) -> dict[str, Any]:
    return (
        {
            "name": cluster.name,
            "status": cluster.status,
            "reason": cluster.reason,
            "soakUntil": _time(cluster.soak_until),
            "pools": [_pool(p) for p in cluster.pools],
        }
        | (
            # Only when windows or freezes hold the cluster's new work back: plans of fleets that
            # declare none keep their exact shape.
            {"window": cluster.window, "nextStart": _time(cluster.next_start)}
            if cluster.window
            else {}
        )
        | ({"owner": cluster.owner} if cluster.owner else {})
    )  # sharded: planned from a summary


def _pool(pool: PoolPlan) -> dict[str, Any]:
    return {
        "name": pool.name,
        "status": pool.status,
        "reason": pool.reason,
        "image": pool.image,
        "replicas": pool.replicas,
        "maxSurge": pool.max_surge,
        "maxUnavailable": pool.max_unavailable,
        "machines": pool.machines,
        "available": pool.available,
        "outdated": pool.outdated,
        "drifted": pool.drifted,
        "fingerprints": pool.fingerprints,
        "oddNodes": list(pool.odd_nodes),
        "batches": [_batch(b) for b in pool.batches],
    }


def _batch(batch: Batch) -> dict[str, Any]:
    return {
        "index": batch.index,
        "projected": batch.projected,
        "note": batch.note,
        "actions": [action_to_dict(a) for a in batch.actions],
    }


def action_to_dict(action: AnyAction) -> dict[str, Any]:
    """One action: the common keys, then the kind's own keys (always all of them)."""
    out: dict[str, Any] = {
        "kind": action.kind,
        "key": action.key,
        "ready": action.ready,
        "cluster": action.cluster,
        "pool": action.pool,
    }
    if isinstance(action, ScaleUp):
        out.update(zone=action.zone, image=action.image)
    elif isinstance(action, CreateReplacement):
        out.update(
            zone=action.zone,
            image=action.image,
            replaces=action.replaces,
            replacesMachine=action.replaces_machine,
        )
    elif isinstance(action, RetireNode):
        out.update(node=action.node, machine=action.machine, replacement=action.replacement)
    elif isinstance(action, ScaleDown):
        out.update(node=action.node, machine=action.machine)
    elif isinstance(action, AbandonMachine):
        out.update(
            machine=action.machine,
            node=action.node,
            replaces=action.replaces,
            counted=action.counted,
        )
    elif isinstance(action, Uncordon):
        out.update(node=action.node)
    elif isinstance(action, RollMachineDeployment):
        out.update(
            deployment=action.deployment,
            topology=action.topology,
            template=action.template,
            image=action.image,
            replicas=action.replicas,
            maxSurge=action.max_surge,
            maxUnavailable=action.max_unavailable,
            minReadySeconds=action.min_ready_seconds,
            rollback=action.rollback,
        )
    elif isinstance(action, PauseMachineDeployment):
        out.update(deployment=action.deployment, topology=action.topology)
    else:
        assert isinstance(action, Wait)
        out.update(on=action.on, what=action.what, until=_time(action.until))
    out.update(reason=action.reason, budget=action.budget, finding=action.finding)
    return out


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "fingerprint": f.fingerprint,
        "kind": f.kind,
        "severity": f.severity,
        "remediation": f.remediation,
        "drift": f.is_drift,
        "cluster": f.cluster,
        "pool": f.pool,
        "node": f.node,
        "fact": f.fact,
        "expected": f.expected,
        "observed": f.observed,
        "image": f.image,
        "message": f.message,
    }


def fingerprints_to_list(prints: Sequence[PoolFingerprints]) -> list[dict[str, Any]]:
    """Each pool's fingerprints: how many distinct (the aim is 1) and the odd nodes out."""
    return [
        {
            "cluster": p.cluster,
            "pool": p.pool,
            "nodes": p.nodes,
            "distinct": p.distinct,
            "counts": dict(p.counts),
            "odd": [
                {
                    "node": o.node,
                    "fingerprint": o.fingerprint,
                    "differs": [
                        {"fact": fact, "common": common, "observed": seen}
                        for fact, common, seen in o.differs
                    ],
                }
                for o in p.odd
            ],
        }
        for p in prints
    ]


def findings_to_dict(
    findings: Sequence[Finding], prints: Sequence[PoolFingerprints] | None = None
) -> dict[str, Any]:
    """The findings document of ``gitops drift -o json`` (with the pools' fingerprints)."""
    by_kind: dict[str, int] = {}
    for f in findings:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    extra = {} if prints is None else {"fingerprints": fingerprints_to_list(prints)}
    return {
        "schemaVersion": FINDINGS_SCHEMA_VERSION,
        "summary": {
            "findings": len(findings),
            "drift": sum(1 for f in findings if f.is_drift),
            "byKind": {kind: by_kind.get(kind, 0) for kind in KINDS},
        },
        "findings": [finding_to_dict(f) for f in findings],
        **extra,
    }
