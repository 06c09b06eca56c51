"""Conversion between the ``cluster.x-k8s.io`` versions the simulator serves: v1beta1 and v1beta2.

Tool layer (``gitops.sim.api``): pure functions on wire dicts, called by the store at its edge
(objects are stored in the storage version, ``v1beta2``; every read, write, watch event and
patch in another version passes through here), the way the API server calls Cluster API's
conversion webhook. It never touches the store and does no I/O.

What is converted follows upstream (``api/core/v1beta1/conversion.go`` and
``core/webhooks/conversion/``) for the fields the simulator and gitops use:

* references: v1beta1 ``ObjectReference`` (``apiVersion``, ``kind``, ``name``, ``namespace``) to
  v1beta2 ``ContractVersionedObjectReference`` (``apiGroup``, ``kind``, ``name``) and back, the
  version found by what the server serves for that group and kind (upstream's
  ``apiVersionGetter``), the namespace being the object's own;
* Machine spec timeouts: v1beta1 ``nodeDrainTimeout`` (a duration) to v1beta2
  ``deletion.nodeDrainTimeoutSeconds`` (and the volume-detach and node-deletion ones);
* status: v1beta1 ``conditions``/``failureReason``/replica counters to v1beta2
  ``deprecated.v1beta1``; v1beta1 ``status.v1beta2`` (conditions, ``upToDateReplicas``...) to the
  v1beta2 top level; ``bootstrapReady``/``infrastructureReady`` to ``initialization``;
  ``nodeRef`` to a name-only reference;
* MachineDeployment ``spec.strategy`` (with ``rollingUpdate.deletePolicy``) to
  ``spec.rollout.strategy`` and ``spec.deletion.order``, ``spec.minReadySeconds`` to
  ``spec.template.spec.minReadySeconds``; MachineSet ``deletePolicy`` to ``deletion.order``;
* Cluster ``spec.topology.class``/``classNamespace`` to ``classRef``, a topology worker's
  ``strategy`` to ``rollout.strategy`` and its timeouts to ``deletion``;
* what one version cannot say survives a round trip through the other in the annotation
  ``cluster.x-k8s.io/conversion-data``, as upstream's ``MarshalData``/``UnmarshalData`` keep it:
  written when converting down to v1beta1, read back and removed when converting up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

Obj = dict[str, Any]

GROUP = "cluster.x-k8s.io"
V1BETA1 = f"{GROUP}/v1beta1"
V1BETA2 = f"{GROUP}/v1beta2"
STORAGE_VERSION = "v1beta2"
CONVERSION_DATA = "cluster.x-k8s.io/conversion-data"
# Resource keys of the kinds served in both versions (ClusterClass is served as v1beta2 only).
CONVERTED = frozenset(
    {
        "machines.cluster.x-k8s.io",
        "machinesets.cluster.x-k8s.io",
        "machinedeployments.cluster.x-k8s.io",
        "clusters.cluster.x-k8s.io",
    }
)
# What v1beta2 can hold and v1beta1 cannot, per kind: restored from the conversion data.
_HUB_ONLY: dict[str, tuple[tuple[str, ...], ...]] = {
    "Machine": (("spec", "minReadySeconds"), ("status", "failureDomain")),
    "MachineSet": (),
    "MachineDeployment": (),
    "Cluster": (),
}

ApiVersionGetter = Callable[[str, str], str]
T = TypeVar("T")


def _copy(value: T) -> T:
    """A deep copy of a JSON-shaped value (as ``store.copy_obj``, far quicker than deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_copy(v) for v in value]  # type: ignore[return-value]
    return value


def default_api_version(group: str, kind: str) -> str:
    """The version of a referenced group used when the server serves no such kind."""
    del kind
    return f"{group}/v1beta1" if group else "v1"


# ------------------------------------------------------------------------------------ helpers


def _group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def ref_up(ref: Obj | None) -> Obj | None:
    """v1beta1 ObjectReference -> v1beta2 ContractVersionedObjectReference."""
    if not isinstance(ref, dict) or not ref:
        return None
    return {
        "apiGroup": _group_of(str(ref.get("apiVersion") or "")),
        "kind": ref.get("kind", ""),
        "name": ref.get("name", ""),
    }


def ref_down(ref: Obj | None, namespace: str | None, versions: ApiVersionGetter) -> Obj | None:
    """v1beta2 ContractVersionedObjectReference -> v1beta1 ObjectReference."""
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    out: Obj = {
        "apiVersion": versions(str(ref.get("apiGroup") or ""), str(ref.get("kind") or "")),
        "kind": ref.get("kind", ""),
        "name": ref["name"],
    }
    if namespace:
        out["namespace"] = namespace
    return out


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_of(duration: Any) -> int | None:
    """A metav1.Duration string ("10m0s") as whole seconds (truncated, as upstream)."""
    if not isinstance(duration, str) or not duration:
        return None
    total = sum(float(n) * _UNIT[u] for n, u in _GO_DURATION.findall(duration))
    return int(total)


def duration_of(seconds: Any) -> str | None:
    """Whole seconds as Go prints a time.Duration ("10m0s", "1h0m0s", "30s", "0s")."""
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return None
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


_TIMEOUTS = (
    ("nodeDrainTimeout", "nodeDrainTimeoutSeconds"),
    ("nodeVolumeDetachTimeout", "nodeVolumeDetachTimeoutSeconds"),
    ("nodeDeletionTimeout", "nodeDeletionTimeoutSeconds"),
)


def _timeouts_up(src: Obj, dst: Obj) -> None:
    deletion = dict(dst.get("deletion") or {})
    for old, new in _TIMEOUTS:
        value = seconds_of(src.pop(old, None))
        if value is not None:
            deletion[new] = value
    if deletion:
        dst["deletion"] = deletion


def _timeouts_down(src: Obj, dst: Obj) -> None:
    deletion = src.pop("deletion", None) or {}
    for old, new in _TIMEOUTS:
        value = duration_of(deletion.get(new))
        if value is not None:
            dst[old] = value


def machine_spec_up(spec: Obj) -> Obj:
    out = dict(spec)
    infra = ref_up(out.pop("infrastructureRef", None))
    if infra is not None:
        out["infrastructureRef"] = infra
    boot = out.get("bootstrap")
    if isinstance(boot, dict) and "configRef" in boot:
        boot = dict(boot)
        ref = ref_up(boot.pop("configRef"))
        if ref is not None:
            boot["configRef"] = ref
        out["bootstrap"] = boot
    _timeouts_up(out, out)
    return out


def machine_spec_down(spec: Obj, namespace: str | None, versions: ApiVersionGetter) -> Obj:
    out = dict(spec)
    infra = ref_down(out.pop("infrastructureRef", None), namespace, versions)
    if infra is not None:
        out["infrastructureRef"] = infra
    boot = out.get("bootstrap")
    if isinstance(boot, dict) and "configRef" in boot:
        boot = dict(boot)
        ref = ref_down(boot.pop("configRef"), namespace, versions)
        if ref is not None:
            boot["configRef"] = ref
        out["bootstrap"] = boot
    _timeouts_down(out, out)
    out.pop("minReadySeconds", None)
    for key in ("version", "providerID", "failureDomain"):
        if out.get(key) == "":
            del out[key]  # upstream's dropEmptyStringsMachineSpec
    return out


def _deprecated(status: Obj) -> Obj:
    return dict(((status.get("deprecated") or {}).get("v1beta1")) or {})


_V1BETA1_STATUS_ONLY: dict[str, tuple[str, ...]] = {
    "Machine": ("conditions", "failureReason", "failureMessage"),
    "MachineSet": (
        "conditions",
        "availableReplicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "failureReason",
        "failureMessage",
    ),
    "MachineDeployment": (
        "conditions",
        "availableReplicas",
        "unavailableReplicas",
        "updatedReplicas",
        "readyReplicas",
    ),
    "Cluster": ("conditions", "failureReason", "failureMessage"),
}
_V1BETA2_IN_V1BETA1: dict[str, tuple[str, ...]] = {
    "Machine": ("conditions",),
    "MachineSet": ("conditions", "readyReplicas", "availableReplicas", "upToDateReplicas"),
    "MachineDeployment": ("conditions", "readyReplicas", "availableReplicas", "upToDateReplicas"),
    "Cluster": ("conditions",),
}


def status_up(kind: str, status: Obj) -> Obj:
    """A v1beta1 status in v1beta2 form (the common part; per kind fields done by callers)."""
    src = dict(status)
    nested = src.pop("v1beta2", None) or {}
    old = {k: src.pop(k) for k in _V1BETA1_STATUS_ONLY[kind] if k in src}
    out = src
    for key in _V1BETA2_IN_V1BETA1[kind]:
        if key in nested:
            out[key] = nested[key]
    if old:
        out["deprecated"] = {"v1beta1": old}
    return out


def status_down(kind: str, status: Obj) -> Obj:
    src = dict(status)
    old = _deprecated(src)
    src.pop("deprecated", None)
    nested = {k: src.pop(k) for k in _V1BETA2_IN_V1BETA1[kind] if k in src}
    out = src
    for key in _V1BETA1_STATUS_ONLY[kind]:
        if key in old:
            out[key] = old[key]
    if kind in ("MachineSet", "MachineDeployment"):
        for key in ("readyReplicas", "availableReplicas"):
            out.setdefault(key, 0)  # non-pointer ints in v1beta1
    if nested:
        out["v1beta2"] = nested
    return out


# ------------------------------------------------------------------------------ kinds


def _machine_up(obj: Obj) -> None:
    if isinstance(obj.get("spec"), dict):
        obj["spec"] = machine_spec_up(obj["spec"])
    status = obj.get("status")
    if isinstance(status, dict):
        boot = status.pop("bootstrapReady", None)
        infra = status.pop("infrastructureReady", None)
        out = status_up("Machine", status)
        init = {}
        if boot is not None:
            init["bootstrapDataSecretCreated"] = bool(boot)
        if infra is not None:
            init["infrastructureProvisioned"] = bool(infra)
        if init:
            out["initialization"] = init
        node = out.get("nodeRef")
        if isinstance(node, dict):
            out["nodeRef"] = {"name": node.get("name", "")}
        obj["status"] = out


def _machine_down(obj: Obj, versions: ApiVersionGetter) -> None:
    ns = (obj.get("metadata") or {}).get("namespace")
    if isinstance(obj.get("spec"), dict):
        obj["spec"] = machine_spec_down(obj["spec"], ns, versions)
    status = obj.get("status")
    if isinstance(status, dict):
        init = status.pop("initialization", None) or {}
        out = status_down("Machine", status)
        out.pop("failureDomain", None)
        if out.get("phase") == "Updating":
            out["phase"] = "Running"
        out["bootstrapReady"] = bool(init.get("bootstrapDataSecretCreated", False))
        out["infrastructureReady"] = bool(init.get("infrastructureProvisioned", False))
        node = out.get("nodeRef")
        if isinstance(node, dict) and node.get("name"):
            out["nodeRef"] = {"apiVersion": "v1", "kind": "Node", "name": node["name"]}
        obj["status"] = out


def _template_up(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        template["spec"] = machine_spec_up(template["spec"])


def _template_down(spec: Obj, namespace: str | None, versions: ApiVersionGetter) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        template["spec"] = machine_spec_down(template["spec"], namespace, versions)


def _naming_up(spec: Obj) -> None:
    naming = spec.pop("machineNamingStrategy", None)
    if isinstance(naming, dict) and naming.get("template"):
        spec["machineNaming"] = {"template": naming["template"]}


def _naming_down(spec: Obj) -> None:
    naming = spec.pop("machineNaming", None)
    if isinstance(naming, dict) and naming.get("template"):
        spec["machineNamingStrategy"] = {"template": naming["template"]}


def _min_ready_up(spec: Obj) -> None:
    if "minReadySeconds" in spec:
        seconds = spec.pop("minReadySeconds")
        template = spec.setdefault("template", {})
        if isinstance(template, dict):
            template.setdefault("spec", {})["minReadySeconds"] = seconds


def _min_ready_down(spec: Obj) -> None:
    template = spec.get("template")
    inner = template.get("spec") if isinstance(template, dict) else None
    if isinstance(inner, dict) and "minReadySeconds" in inner:
        spec["minReadySeconds"] = inner.pop("minReadySeconds")


def _machineset_up(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _min_ready_up(spec)
        _template_up(spec)
        policy = spec.pop("deletePolicy", None)
        if policy:
            spec.setdefault("deletion", {})["order"] = policy
        _naming_up(spec)
    if isinstance(obj.get("status"), dict):
        obj["status"] = status_up("MachineSet", obj["status"])


def _machineset_down(obj: Obj, versions: ApiVersionGetter) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _min_ready_down(spec)
        _template_down(spec, (obj.get("metadata") or {}).get("namespace"), versions)
        deletion = spec.pop("deletion", None) or {}
        if deletion.get("order"):
            spec["deletePolicy"] = deletion["order"]
        _naming_down(spec)
    if isinstance(obj.get("status"), dict):
        obj["status"] = status_down("MachineSet", obj["status"])


def strategy_up(strategy: Obj) -> tuple[Obj, str | None]:
    """v1beta1 MachineDeploymentStrategy -> (v1beta2 rollout.strategy, deletion order)."""
    out: Obj = {}
    if strategy.get("type"):
        out["type"] = strategy["type"]
    rolling = strategy.get("rollingUpdate") or {}
    order = rolling.get("deletePolicy")
    bounds = {k: rolling[k] for k in ("maxSurge", "maxUnavailable") if k in rolling}
    if bounds:
        out["rollingUpdate"] = bounds
    return out, order


def strategy_down(strategy: Obj, order: str | None) -> Obj:
    out: Obj = {}
    if strategy.get("type"):
        out["type"] = strategy["type"]
    rolling = dict(strategy.get("rollingUpdate") or {})
    if order:
        rolling["deletePolicy"] = order
    if rolling:
        out["rollingUpdate"] = rolling
    return out


def _machinedeployment_up(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _min_ready_up(spec)
        _template_up(spec)
        strategy = spec.pop("strategy", None)
        if isinstance(strategy, dict):
            rollout, order = strategy_up(strategy)
            remediation = strategy.get("remediation")
            if rollout:
                spec.setdefault("rollout", {})["strategy"] = rollout
            if order:
                spec.setdefault("deletion", {})["order"] = order
            if isinstance(remediation, dict) and "maxInFlight" in remediation:
                spec["remediation"] = {"maxInFlight": remediation["maxInFlight"]}
        after = spec.pop("rolloutAfter", None)
        if after:
            spec.setdefault("rollout", {})["after"] = after
        _naming_up(spec)
    if isinstance(obj.get("status"), dict):
        obj["status"] = status_up("MachineDeployment", obj["status"])


def _machinedeployment_down(obj: Obj, versions: ApiVersionGetter) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _min_ready_down(spec)
        _template_down(spec, (obj.get("metadata") or {}).get("namespace"), versions)
        rollout = spec.pop("rollout", None) or {}
        order = (spec.pop("deletion", None) or {}).get("order")
        strategy = strategy_down(rollout.get("strategy") or {}, order)
        remediation = spec.pop("remediation", None)
        if isinstance(remediation, dict) and "maxInFlight" in remediation:
            strategy["remediation"] = {"maxInFlight": remediation["maxInFlight"]}
        if strategy:
            spec["strategy"] = strategy
        if rollout.get("after"):
            spec["rolloutAfter"] = rollout["after"]
        _naming_down(spec)
    if isinstance(obj.get("status"), dict):
        obj["status"] = status_down("MachineDeployment", obj["status"])


def _worker_up(worker: Obj) -> None:
    strategy = worker.pop("strategy", None)
    if isinstance(strategy, dict):
        rollout, order = strategy_up(strategy)
        if rollout:
            worker.setdefault("rollout", {})["strategy"] = rollout
        if order:
            worker.setdefault("deletion", {})["order"] = order
    _timeouts_up(worker, worker)
    if "machineHealthCheck" in worker:
        worker["healthCheck"] = worker.pop("machineHealthCheck")


def _worker_down(worker: Obj) -> None:
    rollout = worker.get("rollout")
    order = (worker.get("deletion") or {}).get("order")
    strategy = strategy_down((rollout or {}).get("strategy") or {}, order)
    if isinstance(rollout, dict):
        rollout.pop("strategy", None)
        if not rollout:
            worker.pop("rollout")
    if strategy:
        worker["strategy"] = strategy
    _timeouts_down(worker, worker)
    if "healthCheck" in worker:
        worker["machineHealthCheck"] = worker.pop("healthCheck")


def _workers(spec: Obj) -> list[Obj]:
    topology = spec.get("topology")
    workers = topology.get("workers") if isinstance(topology, dict) else None
    mds = workers.get("machineDeployments") if isinstance(workers, dict) else None
    return [w for w in mds if isinstance(w, dict)] if isinstance(mds, list) else []


def _cluster_up(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        for key in ("infrastructureRef", "controlPlaneRef"):
            if key in spec:
                ref = ref_up(spec.pop(key))
                if ref is not None:
                    spec[key] = ref
        topology = spec.get("topology")
        if isinstance(topology, dict) and "class" in topology:
            ref = {"name": topology.pop("class")}
            if topology.get("classNamespace"):
                ref["namespace"] = topology.pop("classNamespace")
            topology.pop("classNamespace", None)
            topology["classRef"] = ref
        for worker in _workers(spec):
            _worker_up(worker)
    status = obj.get("status")
    if isinstance(status, dict):
        infra = status.pop("infrastructureReady", None)
        cp = status.pop("controlPlaneReady", None)
        out = status_up("Cluster", status)
        init = {}
        if infra is not None:
            init["infrastructureProvisioned"] = bool(infra)
        if cp is not None:
            init["controlPlaneInitialized"] = bool(cp)
        if init:
            out["initialization"] = init
        obj["status"] = out


def _cluster_down(obj: Obj, versions: ApiVersionGetter) -> None:
    spec = obj.get("spec")
    ns = (obj.get("metadata") or {}).get("namespace")
    if isinstance(spec, dict):
        for key in ("infrastructureRef", "controlPlaneRef"):
            if key in spec:
                ref = ref_down(spec.pop(key), ns, versions)
                if ref is not None:
                    spec[key] = ref
        topology = spec.get("topology")
        if isinstance(topology, dict) and "classRef" in topology:
            ref = topology.pop("classRef") or {}
            topology["class"] = ref.get("name", "")
            if ref.get("namespace"):
                topology["classNamespace"] = ref["namespace"]
        for worker in _workers(spec):
            _worker_down(worker)
    status = obj.get("status")
    if isinstance(status, dict):
        init = status.pop("initialization", None) or {}
        for key in ("controlPlane", "workers"):
            status.pop(key, None)
        out = status_down("Cluster", status)
        out["infrastructureReady"] = bool(init.get("infrastructureProvisioned", False))
        out["controlPlaneReady"] = bool(init.get("controlPlaneInitialized", False))
        obj["status"] = out


_UP: dict[str, Callable[[Obj], None]] = {
    "Machine": _machine_up,
    "MachineSet": _machineset_up,
    "MachineDeployment": _machinedeployment_up,
    "Cluster": _cluster_up,
}
_DOWN: dict[str, Callable[[Obj, ApiVersionGetter], None]] = {
    "Machine": _machine_down,
    "MachineSet": _machineset_down,
    "MachineDeployment": _machinedeployment_down,
    "Cluster": _cluster_down,
}


# ------------------------------------------------------------------------------ entry points


def to_v1beta2(obj: Obj) -> Obj:
    """A v1beta1 object in v1beta2 form, restoring what the conversion data kept."""
    kind = str(obj.get("kind") or "")
    out = _copy(obj)
    out["apiVersion"] = V1BETA2
    if kind not in _UP:
        return out
    _UP[kind](out)
    meta = out.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(meta, dict) and isinstance(annotations, dict) and CONVERSION_DATA in annotations:
        raw = annotations.pop(CONVERSION_DATA)
        if not annotations:
            del meta["annotations"]
        try:
            restored = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError:
            restored = {}
        if isinstance(restored, dict):
            _restore(out, restored, _HUB_ONLY[kind])
    return out


def to_v1beta1(obj: Obj, versions: ApiVersionGetter = default_api_version) -> Obj:
    """A v1beta2 object in v1beta1 form, keeping what v1beta1 cannot say in the conversion data."""
    kind = str(obj.get("kind") or "")
    out = _copy(obj)
    out["apiVersion"] = V1BETA1
    if kind not in _DOWN:
        return out
    _DOWN[kind](out, versions)
    kept = {path: value for path in _HUB_ONLY[kind] if (value := _dig(obj, path)) is not None}
    if kept:
        data: dict[str, Obj] = {part: {} for part in ("spec", "status")}
        for path, value in kept.items():
            data[path[0]][path[1]] = value
        meta = out.setdefault("metadata", {})
        meta.setdefault("annotations", {})[CONVERSION_DATA] = json.dumps(
            {k: v for k, v in data.items() if v}, sort_keys=True, separators=(",", ":")
        )
    return out


def convert(obj: Obj, version: str, versions: ApiVersionGetter = default_api_version) -> Obj:
    """``obj`` (either version, told by its apiVersion) in ``version`` ("v1beta1"/"v1beta2")."""
    have = str(obj.get("apiVersion") or "")
    want = f"{GROUP}/{version}"
    if have == want:
        return obj
    if version == "v1beta2":
        return to_v1beta2(obj)
    return to_v1beta1(obj if have == V1BETA2 else to_v1beta2(obj), versions)


def _dig(obj: Obj, path: tuple[str, ...]) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _restore(obj: Obj, restored: Obj, paths: tuple[tuple[str, ...], ...]) -> None:
    for path in paths:
        value = _dig(restored, path)
        if value is None:
            continue
        node = obj
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(path[-1], value)
