"""Server-side ``Table`` output (meta.k8s.io/v1), so ``kubectl get`` prints the usual columns.

Tool layer (``gitops.sim.api``), called by the HTTP server when a request's Accept header asks for
``as=Table;g=meta.k8s.io;v=v1``. Columns and cell formats follow the API server's printers
(``pkg/printers/internalversion``) for built-in kinds, the Machine CRD's
``additionalPrinterColumns`` for Machines, and a NAME/AGE table for everything else. Pure
functions of (objects, now); they must never touch the store or do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gitops.sim.api.kinds import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, str, int]  # name, type, description, priority (1 = wide only)
Cells = Callable[[Obj, float], list[Any]]

TABLE_MEDIA = "as=Table"


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration`` from apimachinery: 45s, 3m20s, 15m, 5h10m, 3d4h, 400d, 2y3d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age(obj: Obj, now: float) -> str:
    created = _epoch((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration(now - created)


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _or_none(value: Any) -> Any:
    return "<none>" if value in (None, "") else value


# ----------------------------------------------------------------------------- per kind


def _node_status(node: Obj) -> str:
    ready = next(
        (c for c in _get(node, "status", "conditions") or [] if c.get("type") == "Ready"), None
    )
    status = "Unknown"
    if ready is not None:
        status = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
    if _get(node, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _address(node: Obj, kind: str) -> str:
    for a in _get(node, "status", "addresses") or []:
        if a.get("type") == kind:
            return str(a.get("address"))
    return "<none>"


def _node_cells(node: Obj, now: float) -> list[Any]:
    info = _get(node, "status", "nodeInfo") or {}
    return [
        _name(node),
        _node_status(node),
        _node_roles(node),
        age(node, now),
        info.get("kubeletVersion", ""),
        _address(node, "InternalIP"),
        _address(node, "ExternalIP"),
        _or_none(info.get("osImage")),
        _or_none(info.get("kernelVersion")),
        _or_none(info.get("containerRuntimeVersion")),
    ]


def _pod_cells(pod: Obj, now: float) -> list[Any]:
    containers = _get(pod, "spec", "containers") or []
    statuses = _get(pod, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    reason = _get(pod, "status", "reason") or _get(pod, "status", "phase") or "Pending"
    for s in statuses:
        waiting = _get(s, "state", "waiting", "reason")
        terminated = _get(s, "state", "terminated", "reason")
        if waiting or terminated:
            reason = waiting or terminated
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if _get(pod, "status", "reason") == "NodeLost" else "Terminating"
    gates = _get(pod, "spec", "readinessGates") or []
    return [
        _name(pod),
        f"{ready}/{len(containers)}",
        reason,
        str(restarts),
        age(pod, now),
        _or_none(_get(pod, "status", "podIP")),
        _or_none(_get(pod, "spec", "nodeName")),
        _or_none(_get(pod, "status", "nominatedNodeName")),
        f"0/{len(gates)}" if gates else "<none>",
    ]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _deployment_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas', 1))}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        age(obj, now),
    ]


def _replicaset_cells(obj: Obj, now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        _int(spec.get("replicas", 1)),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        age(obj, now),
    ]


def _daemonset_cells(obj: Obj, now: float) -> list[Any]:
    status = obj.get("status") or {}
    selector = _get(obj, "spec", "template", "spec", "nodeSelector") or {}
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
        age(obj, now),
    ]


def _pdb_cells(obj: Obj, now: float) -> list[Any]:
    spec = obj.get("spec") or {}
    return [
        _name(obj),
        "N/A" if spec.get("minAvailable") is None else str(spec["minAvailable"]),
        "N/A" if spec.get("maxUnavailable") is None else str(spec["maxUnavailable"]),
        _int(_get(obj, "status", "disruptionsAllowed")),
        age(obj, now),
    ]


def _namespace_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), _get(obj, "status", "phase") or "Active", age(obj, now)]


def _secret_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), age(obj, now)]


def _configmap_cells(obj: Obj, now: float) -> list[Any]:
    return [
        _name(obj),
        len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
        age(obj, now),
    ]


def _lease_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), _or_none(_get(obj, "spec", "holderIdentity")), age(obj, now)]


def _event_cells(obj: Obj, now: float) -> list[Any]:
    last = (
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or _get(obj, "metadata", "creationTimestamp")
    )
    seen = _epoch(last)
    involved = obj.get("involvedObject") or {}
    return [
        "<unknown>" if seen is None else human_duration(now - seen),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message", ""),
    ]


def _generic_cells(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), age(obj, now)]


NAME: Column = ("Name", "string", "Name must be unique within a namespace.", 0)
AGE: Column = (
    "Age",
    "string",
    "CreationTimestamp is a timestamp of when the object was created.",
    0,
)

PRINTERS: dict[str, tuple[list[Column], Cells]] = {
    "nodes": (
        [
            NAME,
            ("Status", "string", "The status of the node", 0),
            ("Roles", "string", "The roles of the node", 0),
            AGE,
            ("Version", "string", "Kubelet Version reported by the node.", 0),
            ("Internal-IP", "string", "List of internal IPs for the node.", 1),
            ("External-IP", "string", "List of external IPs for the node.", 1),
            ("OS-Image", "string", "OS Image reported by the node from /etc/os-release.", 1),
            ("Kernel-Version", "string", "Kernel Version reported by the node.", 1),
            ("Container-Runtime", "string", "Container Runtime Version reported by the node.", 1),
        ],
        _node_cells,
    ),
    "pods": (
        [
            NAME,
            (
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            ("Status", "string", "The aggregate status of the containers in this pod.", 0),
            (
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted.",
                0,
            ),
            AGE,
            ("IP", "string", "IP address allocated to the pod.", 1),
            ("Node", "string", "Name of the node this pod is assigned to.", 1),
            ("Nominated Node", "string", "Name of the node this pod is nominated to.", 1),
            ("Readiness Gates", "string", "Pod readiness gates.", 1),
        ],
        _pod_cells,
    ),
    "deployments.apps": (
        [
            NAME,
            ("Ready", "string", "Number of the pod with ready state", 0),
            (
                "Up-to-date",
                "string",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            (
                "Available",
                "string",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            AGE,
        ],
        _deployment_cells,
    ),
    "replicasets.apps": (
        [
            NAME,
            ("Desired", "integer", "Replicas is the number of desired replicas.", 0),
            ("Current", "integer", "Replicas is the most recently observed number of replicas.", 0),
            ("Ready", "integer", "The number of ready replicas for this replica set.", 0),
            AGE,
        ],
        _replicaset_cells,
    ),
    "daemonsets.apps": (
        [
            NAME,
            (
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod.",
                0,
            ),
            (
                "Current",
                "integer",
                "The number of nodes that are running at least 1 daemon pod.",
                0,
            ),
            (
                "Ready",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more running and ready.",
                0,
            ),
            (
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
                0,
            ),
            (
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more available.",
                0,
            ),
            (
                "Node Selector",
                "string",
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
                0,
            ),
            AGE,
        ],
        _daemonset_cells,
    ),
    "poddisruptionbudgets.policy": (
        [
            NAME,
            ("Min Available", "string", "The minimum number of pods that must be available.", 0),
            ("Max Unavailable", "string", "The maximum number of pods that may be unavailable.", 0),
            (
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
                0,
            ),
            AGE,
        ],
        _pdb_cells,
    ),
    "namespaces": (
        [NAME, ("Status", "string", "The status of the namespace", 0), AGE],
        _namespace_cells,
    ),
    "secrets": (
        [
            NAME,
            ("Type", "string", "The type of the secret", 0),
            ("Data", "string", "The number of entries in the secret", 0),
            AGE,
        ],
        _secret_cells,
    ),
    "configmaps": (
        [NAME, ("Data", "string", "Number of entries in the config map", 0), AGE],
        _configmap_cells,
    ),
    "leases.coordination.k8s.io": (
        [NAME, ("Holder", "string", "The holder of the lease.", 0), AGE],
        _lease_cells,
    ),
    "events": (
        [
            ("Last Seen", "string", "The last time the event was seen.", 0),
            ("Type", "string", "The type of the event.", 0),
            ("Reason", "string", "The reason of the event.", 0),
            ("Object", "string", "The object the event is about.", 0),
            ("Message", "string", "The message of the event.", 0),
        ],
        _event_cells,
    ),
}


# The additionalPrinterColumns of the upstream Cluster API CRDs, per served version:
# (name, type, jsonPath, priority); "date" columns print as an age, as the API server's CRD
# table convertor prints them.
_D = "date"
CRD_COLUMNS: dict[tuple[str, str], list[tuple[str, str, str, int]]] = {
    ("Machine", "v1beta1"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("NodeName", "string", ".status.nodeRef.name", 0),
        ("ProviderID", "string", ".spec.providerID", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.version", 0),
    ],
    ("Machine", "v1beta2"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("Node Name", "string", ".status.nodeRef.name", 0),
        ("Provider ID", "string", ".spec.providerID", 10),
        ("Failure domain", "string", ".status.failureDomain", 0),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Available", "string", '.status.conditions[?(@.type=="Available")].status', 0),
        ("Up-to-date", "string", '.status.conditions[?(@.type=="UpToDate")].status', 0),
        ("Internal-IP", "string", '.status.addresses[?(@.type=="InternalIP")].address', 10),
        ("External-IP", "string", '.status.addresses[?(@.type=="ExternalIP")].address', 10),
        ("OS-Image", "string", ".status.nodeInfo.osImage", 10),
        ("Paused", "string", '.status.conditions[?(@.type=="Paused")].status', 10),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.version", 0),
    ],
    ("MachineSet", "v1beta1"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("Desired", "integer", ".spec.replicas", 10),
        ("Replicas", "integer", ".status.replicas", 0),
        ("Ready", "integer", ".status.readyReplicas", 0),
        ("Available", "integer", ".status.availableReplicas", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.template.spec.version", 0),
    ],
    ("MachineSet", "v1beta2"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("Desired", "integer", ".spec.replicas", 0),
        ("Current", "integer", ".status.replicas", 0),
        ("Ready", "integer", ".status.readyReplicas", 0),
        ("Available", "integer", ".status.availableReplicas", 0),
        ("Up-to-date", "integer", ".status.upToDateReplicas", 0),
        ("Paused", "string", '.status.conditions[?(@.type=="Paused")].status', 10),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.template.spec.version", 0),
    ],
    ("MachineDeployment", "v1beta1"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("Desired", "integer", ".spec.replicas", 10),
        ("Replicas", "integer", ".status.replicas", 0),
        ("Ready", "integer", ".status.readyReplicas", 0),
        ("Updated", "integer", ".status.updatedReplicas", 0),
        ("Unavailable", "integer", ".status.unavailableReplicas", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.template.spec.version", 0),
    ],
    ("MachineDeployment", "v1beta2"): [
        ("Cluster", "string", ".spec.clusterName", 0),
        ("Available", "string", '.status.conditions[?(@.type=="Available")].status', 0),
        ("Desired", "integer", ".spec.replicas", 0),
        ("Current", "integer", ".status.replicas", 0),
        ("Ready", "integer", ".status.readyReplicas", 0),
        ("Available", "integer", ".status.availableReplicas", 0),
        ("Up-to-date", "integer", ".status.upToDateReplicas", 0),
        ("Paused", "string", '.status.conditions[?(@.type=="Paused")].status', 10),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.template.spec.version", 0),
    ],
    ("Cluster", "v1beta1"): [
        ("ClusterClass", "string", ".spec.topology.class", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.topology.version", 0),
    ],
    ("Cluster", "v1beta2"): [
        ("ClusterClass", "string", ".spec.topology.classRef.name", 0),
        ("Available", "string", '.status.conditions[?(@.type=="Available")].status', 0),
        ("W Desired", "integer", ".status.workers.desiredReplicas", 0),
        ("W Available", "integer", ".status.workers.availableReplicas", 0),
        ("W Up-to-date", "integer", ".status.workers.upToDateReplicas", 0),
        ("Phase", "string", ".status.phase", 0),
        ("Age", _D, ".metadata.creationTimestamp", 0),
        ("Version", "string", ".spec.topology.version", 0),
    ],
}
_FILTER = re.compile(r'^(\w+)\[\?\(@\.(\w+)=="([^"]*)"\)\]$')


# One step of a path: a field, optionally with a filter (whose own dots do not split it).
_STEP = re.compile(r'\w+(?:\[\?\(@\.\w+=="[^"]*"\)\])?')


def json_path(obj: Any, path: str) -> Any:
    """The value at a printer column's JSONPath (dotted fields and one ``[?(@.k=="v")]``
    filter per step, all the CRDs use); None when absent."""
    node = obj
    for step in _STEP.findall(path):
        match = _FILTER.match(step)
        if match:
            items = node.get(match.group(1)) if isinstance(node, dict) else None
            hits = [
                i
                for i in items or []
                if isinstance(i, dict) and str(i.get(match.group(2))) == match.group(3)
            ]
            node = hits[0] if hits else None
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _crd_printer(rtype: ResourceType) -> tuple[list[Column], Any]:
    spec = CRD_COLUMNS[(rtype.kind, rtype.version)]
    columns: list[Column] = [NAME] + [(n, t, n, p) for n, t, _, p in spec]

    def cells(obj: Obj, now: float) -> list[Any]:
        out: list[Any] = [_name(obj)]
        for _, kind, path, _ in spec:
            out.append(age(obj, now) if kind == _D else json_path(obj, path))
        return out

    return columns, cells


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rtype: ResourceType,
    objects: list[Obj],
    now: float,
    *,
    resource_version: str = "",
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    """A meta.k8s.io/v1 Table of ``objects``; ``include_object`` is None, Metadata or Object."""
    columns, cells = PRINTERS.get(rtype.key, ([NAME, AGE], _generic_cells))
    if (rtype.kind, rtype.version) in CRD_COLUMNS:
        columns, cells = _crd_printer(rtype)
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    out: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "rows": rows,
    }
    if with_columns:
        out["columnDefinitions"] = [
            {
                "name": name,
                "type": kind,
                "format": "name" if (name, kind) == ("Name", "string") and n == 0 else "",
                "description": description,
                "priority": priority,
            }
            for n, (name, kind, description, priority) in enumerate(columns)
        ]
    else:
        out["columnDefinitions"] = None
    return out


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for meta.k8s.io/v1 (or v1beta1) Table output first."""
    for media in accept.split(","):
        params = {p.strip() for p in media.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
        if media.split(";")[0].strip() in ("application/json", "*/*", "application/yaml"):
            return False
    return False
