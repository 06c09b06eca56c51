"""Kubernetes objects (plain JSON dicts) into ``gitops.inventory`` types.

Adapter layer: the boundary past which no Kubernetes object travels. Pure functions. The watch
caches of ``gitops.kube.observe`` call them on every object as it arrives and keep only the
result (a compact, immutable record: what drift, plan and rollout read, and nothing else), so
the JSON of a Node or Machine is dropped as soon as it has been read. Strings that repeat from
object to object (label keys and values, condition reasons, nodeInfo) are interned, so a
thousand nodes share one copy of each.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from gitops.fleet.wellknown import CLUSTER_NAME_LABEL
from gitops.inventory import (
    ClusterInventory,
    Condition,
    Machine,
    MachineDeployment,
    MachineOwner,
    Node,
    NodeTaint,
    PodDisruptionBudget,
    Requirement,
)
from gitops.inventory import selector_matches as inventory_selector_matches
from gitops.kube import capi

Obj = Mapping[str, Any]
T = TypeVar("T")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Longer strings are seldom shared between objects (a Machine's name in an annotation, a
# condition's message with a pod count): interning them would only grow the table.
INTERN_MAX = 96


def _interned(text: object) -> str:
    value = str(text)
    return sys.intern(value) if len(value) <= INTERN_MAX else value


def _strings(mapping: Mapping[str, Any] | None) -> dict[str, str]:
    return {_interned(k): _interned(v) for k, v in (mapping or {}).items()}


def timestamp(text: str | None) -> float:
    """Seconds since the epoch of an RFC 3339 time ("" or None gives 0)."""
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def conditions_of(entries: Iterable[Obj] | None) -> tuple[Condition, ...]:
    """A ``status.conditions`` list (a Node's, or a ``metav1.Condition`` list) as values."""
    return tuple(
        Condition(
            type=_interned(c.get("type", "")),
            status=_interned(c.get("status", "Unknown")),
            reason=_interned(c.get("reason") or ""),
            message=_interned(c.get("message") or ""),
            last_transition=timestamp(c.get("lastTransitionTime")),
        )
        for c in entries or []
    )


def node(obj: Obj) -> Node:
    """A Node: its identity, nodeInfo facts, labels, annotations, taints, conditions (without
    the kubelet's heartbeat times, so a status report that changes nothing else compares
    equal), cordon, creation and deletion."""
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    conditions = conditions_of(status.get("conditions"))
    ready = next((c for c in conditions if c.type == "Ready"), None)
    return Node(
        name=str(meta.get("name", "")),
        os_image=_interned(info.get("osImage", "")),
        kernel_version=_interned(info.get("kernelVersion", "")),
        kubelet_version=_interned(info.get("kubeletVersion", "")),
        container_runtime_version=_interned(info.get("containerRuntimeVersion", "")),
        labels=_strings(meta.get("labels")),
        annotations=_strings(meta.get("annotations")),
        taints=tuple(
            NodeTaint(
                key=_interned(t.get("key", "")),
                effect=_interned(t.get("effect", "")),
                value=_interned(t.get("value") or ""),
            )
            for t in spec.get("taints") or []
        ),
        conditions=conditions,
        ready=ready is not None and ready.status == "True",
        ready_since=ready.last_transition if ready is not None and ready.status == "True" else 0.0,
        unschedulable=bool(spec.get("unschedulable")),
        created=timestamp(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
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
        version=_interned(spec.get("version") or ""),
        labels=_strings(meta.get("labels")),
        annotations=_strings(meta.get("annotations")),
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


@dataclass(frozen=True, slots=True)
class Managed(Generic[T]):
    """A management-cluster object's translation, with the workload cluster it belongs to
    (its ``cluster.x-k8s.io/cluster-name`` label, else ``spec.clusterName``)."""

    cluster: str
    value: T


def cluster_of(obj: Obj) -> str:
    labels = _meta(obj).get("labels") or {}
    return _interned(labels.get(CLUSTER_NAME_LABEL) or (obj.get("spec") or {}).get("clusterName"))


def managed_machine(obj: Obj) -> Managed[Machine]:
    return Managed(cluster_of(obj), machine(obj))


def managed_owner(obj: Obj) -> Managed[MachineOwner]:
    """A MachineSet's record: its selector, for the adoption guard."""
    return Managed(cluster_of(obj), machine_owner(obj))


def managed_deployment(obj: Obj) -> Managed[tuple[MachineOwner, MachineDeployment]]:
    """A MachineDeployment's record: its selector and its rollout's state."""
    return Managed(cluster_of(obj), (machine_owner(obj), machine_deployment(obj)))


def cluster(
    name: str,
    nodes: Iterable[Obj],
    machines: Iterable[Obj],
    pdbs: Iterable[Obj],
    deployments: Iterable[Obj] = (),
) -> ClusterInventory:
    """One cluster's inventory straight from its objects (machines already filtered to the
    cluster), as the watch caches would make it."""
    return ClusterInventory.build(
        name,
        nodes=[node(n) for n in nodes],
        machines=[machine(m) for m in machines],
        pdbs=[pdb(p) for p in pdbs],
        deployments=[machine_deployment(d) for d in deployments],
    )
