"""Kubernetes objects (plain JSON dicts) into ``gitops.inventory`` types.

Adapter layer: the boundary past which no Kubernetes object travels. Pure functions; the
caches in ``gitops.kube.cache`` supply the dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gitops.inventory import (
    ClusterInventory,
    Condition,
    Machine,
    MachineDeployment,
    MachineOwner,
    Node,
    NodeTaint,
    PdbCover,
    PodDisruptionBudget,
    Requirement,
)
from gitops.inventory import selector_matches as inventory_selector_matches
from gitops.kube import capi

Obj = Mapping[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def timestamp(text: str | None) -> float:
    """Seconds since the epoch of an RFC 3339 time ("" or None gives 0)."""
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def heartbeat_only(old: Obj, new: Obj) -> bool:
    """Whether a Node changed only in what its kubelet's periodic status report stamps: its
    conditions' ``lastHeartbeatTime`` (with the resourceVersion and managedFields of any
    write). The inventory keeps no heartbeat time, so such a change decides nothing."""

    def stripped(obj: Obj) -> dict[str, Any]:
        meta = {
            k: v for k, v in _meta(obj).items() if k not in ("resourceVersion", "managedFields")
        }
        status = dict(obj.get("status") or {})
        status["conditions"] = [
            {k: v for k, v in c.items() if k != "lastHeartbeatTime"}
            for c in status.get("conditions") or []
        ]
        return {**obj, "metadata": meta, "status": status}

    return stripped(old) == stripped(new)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def conditions_of(entries: Iterable[Obj] | None) -> tuple[Condition, ...]:
    """A ``status.conditions`` list (a Node's, or a ``metav1.Condition`` list) as values."""
    return tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
            last_transition=timestamp(c.get("lastTransitionTime")),
        )
        for c in entries or []
    )


def node(obj: Obj, pdbs: tuple[PdbCover, ...] = ()) -> Node:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    conditions = conditions_of(status.get("conditions"))
    ready = next((c for c in conditions if c.type == "Ready"), None)
    return Node(
        name=str(meta.get("name", "")),
        os_image=str(info.get("osImage", "")),
        kernel_version=str(info.get("kernelVersion", "")),
        kubelet_version=str(info.get("kubeletVersion", "")),
        container_runtime_version=str(info.get("containerRuntimeVersion", "")),
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
        taints=tuple(
            NodeTaint(
                key=str(t.get("key", "")),
                effect=str(t.get("effect", "")),
                value=str(t.get("value") or ""),
            )
            for t in spec.get("taints") or []
        ),
        conditions=conditions,
        ready=ready is not None and ready.status == "True",
        ready_since=ready.last_transition if ready is not None and ready.status == "True" else 0.0,
        unschedulable=bool(spec.get("unschedulable")),
        created=timestamp(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        pdbs=pdbs,
    )


def machine(obj: Obj) -> Machine:
    """A Machine of either Cluster API version (``gitops.kube.capi`` reads what differs)."""
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    namespace = str(meta.get("namespace", ""))
    return Machine(
        name=str(meta.get("name", "")),
        namespace=namespace,
        phase=str(status.get("phase", "")),
        node=str((status.get("nodeRef") or {}).get("name", "")),
        zone=str(spec.get("failureDomain") or ""),
        version=str(spec.get("version") or ""),
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
        created=timestamp(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        infrastructure=capi.object_ref(spec.get("infrastructureRef"), namespace),
        bootstrap=capi.object_ref((spec.get("bootstrap") or {}).get("configRef"), namespace),
        drain_timeout=capi.drain_timeout(obj),
        conditions=conditions_of(capi.conditions(obj)),
        infrastructure_ready=capi.infrastructure_ready(obj),
        failure=capi.failure(obj),
    )


TOPOLOGY_WORKER_LABEL = "topology.cluster.x-k8s.io/deployment-name"


def machine_deployment(obj: Obj) -> MachineDeployment:
    """A MachineDeployment in either served version, read the same way.

    v1beta2 keeps the rolling update under ``spec.rollout.strategy`` and its counters at the top
    of ``status``; v1beta1 under ``spec.strategy``, with ``status.updatedReplicas`` and the
    v1beta2 counters (when the server has them) under ``status.v1beta2``.
    """
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    strategy = (spec.get("rollout") or {}).get("strategy") or spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    infra = template_spec.get("infrastructureRef") or {}
    v1beta1 = str(obj.get("apiVersion", "")).endswith("/v1beta1")
    counters = (status.get("v1beta2") or {}) if v1beta1 else status
    up_to_date = counters.get("upToDateReplicas")
    if up_to_date is None:
        up_to_date = status.get("updatedReplicas", 0)
    available = counters.get("availableReplicas")
    if available is None:
        available = status.get("availableReplicas", 0)
    return MachineDeployment(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        template=str(infra.get("name", "")),
        replicas=int(spec.get("replicas", 1)),
        max_surge=str(rolling.get("maxSurge", "")),
        max_unavailable=str(rolling.get("maxUnavailable", "")),
        paused=bool(spec.get("paused", False)),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        status_replicas=int(status.get("replicas") or 0),
        up_to_date=int(up_to_date or 0),
        available=int(available or 0),
        topology_worker=str((meta.get("labels") or {}).get(TOPOLOGY_WORKER_LABEL, "")),
        # v1beta2 under the template's spec, v1beta1 at the top of spec
        min_ready_seconds=int(
            template_spec.get("minReadySeconds") or spec.get("minReadySeconds") or 0
        ),
        annotations=meta.get("annotations") or {},
    )


def pdb(obj: Obj) -> PodDisruptionBudget:
    meta, status = _meta(obj), obj.get("status") or {}
    return PodDisruptionBudget(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
        current_healthy=int(status.get("currentHealthy") or 0),
        desired_healthy=int(status.get("desiredHealthy") or 0),
        expected_pods=int(status.get("expectedPods") or 0),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def requirements(selector: Obj) -> tuple[Requirement, ...]:
    """A label selector's ``matchExpressions`` as values."""
    return tuple(
        Requirement(
            key=str(req.get("key", "")),
            operator=str(req.get("operator", "")),
            values=tuple(str(v) for v in req.get("values") or []),
        )
        for req in selector.get("matchExpressions") or []
    )


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; a PDB with a null selector selects nothing, an empty one all."""
    if selector is None:
        return False
    return inventory_selector_matches(
        selector.get("matchLabels") or {}, requirements(selector), labels
    )


def machine_owner(obj: Obj) -> MachineOwner:
    """A MachineSet or MachineDeployment of either Cluster API version, for its selector."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    selector = spec.get("selector") or {}
    return MachineOwner(
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        cluster=str(spec.get("clusterName", "")),
        match_labels={str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()},
        match_expressions=requirements(selector),
    )


def evictable(pod: Obj) -> bool:
    """Pods a drain must evict: not DaemonSet pods, not mirror pods, not finished."""
    meta = _meta(pod)
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    if any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pdb_covers(pods: Iterable[Obj], pdbs: Iterable[Obj]) -> dict[str, tuple[PdbCover, ...]]:
    """For each node name, the PDBs covering its evictable pods and how many pods each covers."""
    by_namespace: dict[str, list[Obj]] = {}
    for budget in pdbs:
        by_namespace.setdefault(str(_meta(budget).get("namespace", "")), []).append(budget)
    counts: dict[str, dict[str, int]] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or not evictable(pod):
            continue
        meta = _meta(pod)
        namespace = str(meta.get("namespace", ""))
        labels = meta.get("labels") or {}
        for budget in by_namespace.get(namespace, ()):
            if selector_matches((budget.get("spec") or {}).get("selector"), labels):
                key = f"{namespace}/{_meta(budget).get('name')}"
                per_node = counts.setdefault(node_name, {})
                per_node[key] = per_node.get(key, 0) + 1
    return {
        name: tuple(PdbCover(pdb=k, pods=v) for k, v in sorted(per.items()))
        for name, per in counts.items()
    }


class Memo:
    """Translations of objects that have not changed since the last time, for reuse.

    A watch cache replaces an object's dict whenever the object changes and never mutates one,
    so the same dict (by identity) means the same object: its translation can be reused. A
    memo lives as long as the cache it serves; each ``cluster`` call keeps only what it used.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[Obj, tuple[PdbCover, ...], Node]] = {}
        self.machines: dict[tuple[str, str], tuple[Obj, Machine]] = {}


def cluster(
    name: str,
    nodes: Iterable[Obj],
    machines: Iterable[Obj],
    pods: Iterable[Obj],
    pdbs: Iterable[Obj],
    memo: Memo | None = None,
    deployments: Iterable[Obj] = (),
) -> ClusterInventory:
    """One cluster's inventory from its raw objects (machines already filtered to the cluster).

    With a ``memo``, objects unchanged since the last call with it are not translated again.
    """
    pdb_list = list(pdbs)
    covers = pdb_covers(pods, pdb_list)
    if memo is None:
        memo = Memo()
    seen_nodes: dict[str, tuple[Obj, tuple[PdbCover, ...], Node]] = {}
    for obj in nodes:
        node_name = str(_meta(obj).get("name"))
        cover = covers.get(node_name, ())
        entry = memo.nodes.get(node_name)
        if entry is None or entry[0] is not obj or entry[1] != cover:
            entry = (obj, cover, node(obj, cover))
        seen_nodes[node_name] = entry
    seen_machines: dict[tuple[str, str], tuple[Obj, Machine]] = {}
    for obj in machines:
        meta = _meta(obj)
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        known = memo.machines.get(key)
        seen_machines[key] = known if known is not None and known[0] is obj else (obj, machine(obj))
    memo.nodes, memo.machines = seen_nodes, seen_machines
    return ClusterInventory.build(
        name,
        nodes=[entry[2] for entry in seen_nodes.values()],
        machines=[entry[1] for entry in seen_machines.values()],
        pdbs=[pdb(p) for p in pdb_list],
        deployments=[machine_deployment(d) for d in deployments],
    )
