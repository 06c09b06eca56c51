"""The status branch's content: ``status/<cluster>.yaml`` per cluster and a ``README.md``.

Shell layer, report phase; pure functions of (fleet, inventory, plan). They hold no clock and
no heartbeat: the same fleet state renders the same bytes, so the writer commits only when
something a reader cares about changed. ``render_yaml`` remembers each cluster's last file, so
an unchanged status costs a JSON encoding, not a YAML dump.

Conditions (one table, as Flux and Cluster API declare theirs):

| type | polarity | True when | False/Unknown when |
|---|---|---|---|
| ``Ready`` | normal | every pool runs its declared image with its replicas, no drift | work remains (reason ``Progressing``, ``Paused``, ``Drifted``), or the cluster could not be observed (``Unknown``) |
| ``Reconciling`` | abnormal-true | the controller is changing the cluster (a batch is in flight or queued) | nothing to do |
| ``Stalled`` | abnormal-true | progress needs a human: the rollout halted, the plan refused (drift limit) or a node is quarantined | otherwise |
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from ruamel.yaml import YAML

from gitops.drift import Finding, image_facts
from gitops.fleet import Fleet
from gitops.fleet.openings import next_window
from gitops.inventory import ClusterInventory, Inventory
from gitops.plan import Plan
from gitops.plan.model import ClusterPlan, PoolPlan, Wait

SCHEMA_VERSION = "gitops.status/v1"


# The shape of a cluster's status file, key by key as readers of the status branch see it.


class Condition(TypedDict):
    type: str
    status: str
    reason: str
    message: str


class RolloutReport(TypedDict):
    wave: str
    waveStatus: str
    phase: str
    reason: NotRequired[str]  # only when the plan gives one
    # Only where windows or freezes are declared: open now, closes, nextOpening, window.
    window: NotRequired[dict[str, str]]
    override: NotRequired[str]  # only while an emergency override of windows is in force


class PoolReport(TypedDict):
    name: str
    declaredImage: str
    observedImages: dict[str, int]  # catalog image -> nodes reporting its facts
    nodesOnTarget: int
    replicas: int
    status: str
    reason: NotRequired[str]  # only when the plan gives one
    fingerprints: int  # distinct node fingerprints (gitops.facts); the aim is 1
    oddNodes: NotRequired[list[str]]  # nodes outside the commonest fingerprint, when any


class FindingReport(TypedDict):
    kind: str
    node: str
    pool: str
    fact: str
    expected: str
    observed: str
    severity: str
    remediation: str
    fingerprint: str


class ClusterReport(TypedDict):
    schemaVersion: str
    cluster: str
    fleetRevision: str
    planId: str
    rollout: RolloutReport
    conditions: list[Condition]
    pools: list[PoolReport]
    findings: list[FindingReport]


def _image_of(fleet: Fleet, declared: str, facts: tuple[str, str, str, str]) -> str:
    """The catalog image whose facts a node reports, preferring the declared image's family."""
    family = fleet.images[declared].family if declared in fleet.images else ""
    matches = [name for name, image in fleet.images.items() if image_facts(image) == facts]
    same_family = [name for name in matches if fleet.images[name].family == family]
    return (same_family or matches or ["unknown"])[0]


def _pool_status(
    pool: PoolPlan, seen: ClusterInventory | None, fleet: Fleet, declared: str
) -> PoolReport:
    observed: Counter[str] = Counter()
    for member in seen.members(pool.name) if seen is not None else ():
        if member.node is not None:
            observed[_image_of(fleet, declared, member.node.facts)] += 1
    report: PoolReport = {
        "name": pool.name,
        "declaredImage": declared,
        "observedImages": dict(sorted(observed.items())),
        "nodesOnTarget": pool.on_target,
        "replicas": pool.replicas,
        "status": pool.status,
        "fingerprints": pool.fingerprints,
    }
    if pool.reason:
        report["reason"] = pool.reason
    if pool.odd_nodes:
        report["oddNodes"] = list(pool.odd_nodes)
    return report


def conditions(
    plan: Plan, cluster: ClusterPlan, findings: list[Finding], stalled: str = ""
) -> list[Condition]:
    """Ready, Reconciling and Stalled for one cluster, each with a reason and a message."""
    drift = [f for f in findings if f.is_drift]
    work = any(True for pool in cluster.pools for batch in pool.batches for _ in batch.actions)
    quarantined = any(
        isinstance(a, Wait) and a.on == "human"
        for pool in cluster.pools
        for batch in pool.batches
        for a in batch.actions
    )
    if cluster.status == "unknown":
        ready = ("Unknown", "Unknown", cluster.reason)
    elif cluster.status == "paused":
        ready = ("False", "Paused", cluster.reason or "paused in git")
    elif work:
        ready = ("False", "Progressing", cluster.reason or "replacing nodes")
    elif cluster.status == "stopped" and any(p.on_target < p.replicas for p in cluster.pools):
        # A stopped plan projects no batches, so "no work" does not mean converged here.
        on_target = sum(p.on_target for p in cluster.pools)
        replicas = sum(p.replicas for p in cluster.pools)
        ready = (
            "False",
            _stalled_reason(plan, ""),
            f"{on_target} of {replicas} nodes run their declared image; the rollout is "
            f"{plan.status}",
        )
    elif drift:
        ready = ("False", "Drifted", f"{len(drift)} findings of drift are only reported")
    else:
        ready = ("True", "Converged", "every pool runs its declared image")
    stalled_reason = ""
    if stalled:
        stalled_reason = stalled
    elif plan.status in ("halted", "refused"):
        stalled_reason = plan.reason
    elif quarantined:
        stalled_reason = "a node is quarantined after its drain timed out; a human must act"
    reconciling = cluster.status in ("active", "soaking") or (
        work and cluster.status not in ("paused", "unknown")
    )
    return [
        {"type": "Ready", "status": ready[0], "reason": ready[1], "message": ready[2]},
        {
            "type": "Reconciling",
            "status": "True" if reconciling else "False",
            "reason": cluster.status if reconciling else "Idle",
            "message": cluster.reason if reconciling else "",
        },
        {
            "type": "Stalled",
            "status": "True" if stalled_reason else "False",
            "reason": _stalled_reason(plan, stalled) if stalled_reason else "None",
            "message": stalled_reason,
        },
    ]


def _stalled_reason(plan: Plan, stalled: str) -> str:
    if stalled:
        return "RevisionNotApplied"
    return {"halted": "Halted", "refused": "Refused"}.get(plan.status, "Quarantined")


def cluster_status(
    fleet: Fleet, inventory: Inventory, plan: Plan, cluster: str, stalled: str = ""
) -> ClusterReport:
    """The status document of one cluster."""
    wave = next(w for w in plan.waves if any(c.name == cluster for c in w.clusters))
    cplan = next(c for c in wave.clusters if c.name == cluster)
    doc = fleet.cluster(cluster)
    assert doc is not None
    seen = inventory.cluster(cluster)
    findings = [f for f in plan.findings if f.cluster == cluster]
    declared = {p.name: p.image for p in doc.spec.node_pools}
    rollout: RolloutReport = {"wave": wave.name, "waveStatus": wave.status, "phase": cplan.status}
    if cplan.reason:
        rollout["reason"] = cplan.reason
    window = next_window(fleet, cluster, plan.now)
    if window is not None:
        rollout["window"] = window
    if plan.override:
        rollout["override"] = plan.override
    return {
        "schemaVersion": SCHEMA_VERSION,
        "cluster": cluster,
        "fleetRevision": plan.fleet_revision,
        "planId": plan.id,
        "rollout": rollout,
        "conditions": conditions(plan, cplan, findings, stalled),
        "pools": [_pool_status(p, seen, fleet, declared.get(p.name, p.image)) for p in cplan.pools],
        "findings": [
            {
                "kind": f.kind,
                "node": f.node,
                "pool": f.pool,
                "fact": f.fact,
                "expected": f.expected,
                "observed": f.observed,
                "severity": f.severity,
                "remediation": f.remediation,
                "fingerprint": f.fingerprint,
            }
            for f in findings
        ],
    }


#: The last rendering of each cluster's status: (its document as compact JSON, its YAML). The
#: controller renders every cluster's status after every pass, and between two passes most
#: clusters' documents are equal; ruamel's dumper costs about a hundred times the C JSON
#: encoder, so an equal document is answered from here. One entry per cluster name.
_RENDERED: dict[str, tuple[str, str]] = {}


def render_yaml(document: ClusterReport) -> str:
    """The status file of one cluster: a comment line, then the document as block YAML."""
    key = json.dumps(document, separators=(",", ":"))
    last = _RENDERED.get(document["cluster"])
    if last is not None and last[0] == key:
        return last[1]
    text = _dump(document)
    _RENDERED[document["cluster"]] = (key, text)
    return text


def _dump(document: ClusterReport) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    out.write(
        "# Written by the gitops controller; do not edit (the next status commit replaces it).\n"
    )
    yaml.dump(document, out)
    return out.getvalue()


def summary_markdown(fleet: Fleet, statuses: list[ClusterReport], plan: Plan) -> str:
    lines = [
        f"# Fleet {fleet.name}: status",
        "",
        f"Fleet revision `{plan.fleet_revision}`, plan `{plan.id}`: **{plan.status}**"
        + (f" — {plan.reason}" if plan.reason else ""),
        "",
        "| wave | cluster | pool | image | nodes on target | ready |",
        "|---|---|---|---|---|---|",
    ]
    for status in statuses:
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        for pool in status["pools"]:
            lines.append(
                f"| {status['rollout']['wave']} | {status['cluster']} | {pool['name']} | "
                f"`{pool['declaredImage']}` | {pool['nodesOnTarget']}/{pool['replicas']} | "
                f"{ready['status']} ({ready['reason']}) |"
            )
    drift = sum(1 for s in statuses for f in s["findings"] if f["kind"] != "Outdated")
    lines += ["", f"{drift} drift findings; per-cluster detail in `status/<cluster>.yaml`.", ""]
    return "\n".join(lines)


def files(
    fleet: Fleet,
    inventory: Inventory,
    plan: Plan,
    stalled: str = "",
    reports: Mapping[str, ClusterReport] | None = None,
) -> dict[str, str]:
    """Every file of the status branch, path → content.

    ``stalled`` says why the newest fetched revision is not the one in force (invalid,
    unsigned); it shows as each cluster's Stalled condition and at the top of the README.
    ``reports``: sharded, the status documents the other replicas wrote of the clusters they
    own (in their cluster records), used as they are for those clusters.
    """
    theirs = reports or {}
    statuses = [
        theirs.get(c.name) or cluster_status(fleet, inventory, plan, c.name, stalled)
        for c in fleet.clusters
    ]
    out = {f"status/{s['cluster']}.yaml": render_yaml(s) for s in statuses}
    readme = summary_markdown(fleet, statuses, plan)
    if stalled:
        title, _, rest = readme.partition("\n")
        readme = f"{title}\n\n> **Stalled:** {stalled}\n{rest}"
    out["README.md"] = readme
    return out
