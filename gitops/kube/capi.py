"""Which Cluster API version the management cluster speaks, and both shapes read alike.

Adapter layer (``gitops.kube``), used by the observer, the translations and the provider.
Cluster API v1.11 made ``cluster.x-k8s.io/v1beta2`` the storage version; v1beta1 stays served
(deprecated) on current releases and is all an older management cluster serves. ``version``
asks the API server once (its discovery document of API groups) and answers v1beta2 when it is
served, else v1beta1. The readers below take an object of either version, as its
``apiVersion`` says it is shaped, to the same typed values; the writers build the fields that
differ between the versions for the version gitops writes.

The differences handled (upstream ``api/core/v1beta1/conversion.go``): references are
``{apiVersion, kind, name, namespace}`` in v1beta1 and ``{apiGroup, kind, name}`` in v1beta2;
drain timeouts are ``spec.nodeDrainTimeout`` (a duration) against
``spec.deletion.nodeDrainTimeoutSeconds``; conditions are Cluster API's own (``status.conditions``,
with the new ones in ``status.v1beta2.conditions``) against ``metav1.Condition`` in
``status.conditions`` (the old ones in ``status.deprecated.v1beta1``); failures are
``status.failureReason``/``failureMessage`` against ``status.deprecated.v1beta1``; readiness of
an infrastructure machine is ``status.ready`` (contract v1beta1) against
``status.initialization.provisioned`` (contract v1beta2).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client as k8s

from gitops.inventory import ObjectRef
from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import BadConfig, read_json

GROUP = "cluster.x-k8s.io"
V1BETA1, V1BETA2 = "v1beta1", "v1beta2"
SPOKEN = (V1BETA2, V1BETA1)  # in order of preference
Obj = Mapping[str, Any]

_lock = threading.Lock()


def choose(served: Iterable[str]) -> str:
    """The version to speak among those a server serves: v1beta2, else v1beta1."""
    offered = set(served)
    for version in SPOKEN:
        if version in offered:
            return version
    listed = ", ".join(sorted(offered)) or "none"
    raise BadConfig(
        f"the management cluster serves no Cluster API version gitops speaks ({GROUP} versions "
        f"served: {listed}; gitops speaks {' and '.join(SPOKEN)}): install Cluster API v1.0 or "
        "later, or point --kubeconfig/--context at the management cluster"
    )


def served(group_list: Obj) -> tuple[str, ...]:
    """The ``cluster.x-k8s.io`` versions an ``APIGroupList`` (``GET /apis``) names."""
    for group in group_list.get("groups") or []:
        if group.get("name") == GROUP:
            return tuple(str(v.get("version", "")) for v in group.get("versions") or [])
    return ()


def version(kube: Kube) -> str:
    """The Cluster API version to speak to ``kube``: discovered on first use, then remembered.

    Asked once per client (an API server does not stop serving a version under a running
    controller; a Cluster API upgrade that adds v1beta2 is picked up at the next start).
    """
    # Held across the request: the observer's caches start together, and one discovery
    # answers them all (it is one small request, once per client).
    with _lock:
        if not kube.capi_version:
            body = read_json(
                "discovering the API groups of the management cluster",
                k8s.ApisApi(kube.api).get_api_versions,
                _request_timeout=REQUEST_TIMEOUT,
            )
            kube.capi_version = choose(served(body))
        return kube.capi_version


def preferred(kube: Kube, group: str) -> str:
    """The preferred version the server serves of API ``group``: what an infrastructure
    template a v1beta2 reference names (by ``apiGroup`` only) is read and written in."""
    body = read_json(
        f"discovering the API group {group}",
        k8s.ApisApi(kube.api).get_api_versions,
        _request_timeout=REQUEST_TIMEOUT,
    )
    for found in body.get("groups") or []:
        if found.get("name") == group:
            return str((found.get("preferredVersion") or {}).get("version", ""))
    raise BadConfig(f"the management cluster serves no API group {group}")


def machines(kube: Kube) -> tuple[str, str, str]:
    """(group, version, plural) of Machines as ``kube`` is spoken to: the arguments the
    client's custom-object calls take."""
    return GROUP, version(kube), "machines"


def api_version(obj: Obj) -> str:
    """``v1beta1`` or ``v1beta2``: the shape ``obj`` (a Cluster API object) is in."""
    return str(obj.get("apiVersion") or "").rpartition("/")[2] or V1BETA2


# -- reading -------------------------------------------------------------------------------


def object_ref(ref: Obj | None, namespace: str = "") -> ObjectRef | None:
    """A reference in either shape (v1beta1 ``apiVersion``, v1beta2 ``apiGroup``)."""
    if not ref or not ref.get("name"):
        return None
    group = str(ref.get("apiGroup") or "")
    if not group and ref.get("apiVersion"):
        group = str(ref["apiVersion"]).rpartition("/")[0]
    return ObjectRef(
        group=group,
        kind=str(ref.get("kind") or ""),
        name=str(ref["name"]),
        namespace=str(ref.get("namespace") or namespace),
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration(text: str) -> float | None:
    """A Go duration ("10m0s", "1h30m", "0s") in seconds; None when it is not one."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0 if text == "0" else None
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    return total if pos == len(text) else None


def go_duration(seconds: float) -> str:
    """Whole seconds as Go prints a duration ("30m0s", "1h0m0s", "45s"), as the server does."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def drain_timeout(obj: Obj) -> float | None:
    """How long Cluster API drains the node of a Machine (or a template's machine spec) before
    it deletes anyway; None when unset (Cluster API's default: drain forever)."""
    spec = obj.get("spec") or {}
    if api_version(obj) == V1BETA1:
        value = spec.get("nodeDrainTimeout")
        return duration(str(value)) if value is not None else None
    seconds = (spec.get("deletion") or {}).get("nodeDrainTimeoutSeconds")
    return float(seconds) if seconds is not None else None


def conditions(obj: Obj) -> list[Obj]:
    """The ``metav1.Condition`` entries (``Available``, ``Ready``, ``UpToDate``, ``Deleting``...):
    v1beta2's ``status.conditions``, v1beta1's ``status.v1beta2.conditions``."""
    status = obj.get("status") or {}
    if api_version(obj) == V1BETA1:
        return list((status.get("v1beta2") or {}).get("conditions") or [])
    return list(status.get("conditions") or [])


def v1beta1_conditions(obj: Obj) -> list[Obj]:
    """Cluster API's older conditions (``Ready``, ``InfrastructureReady``, ``NodeHealthy``...):
    v1beta1's ``status.conditions``, v1beta2's ``status.deprecated.v1beta1.conditions``."""
    status = obj.get("status") or {}
    if api_version(obj) == V1BETA1:
        return list(status.get("conditions") or [])
    deprecated = (status.get("deprecated") or {}).get("v1beta1") or {}
    return list(deprecated.get("conditions") or [])


def failure(obj: Obj) -> str:
    """A terminal failure Cluster API reported ("reason: message"), or ""."""
    status = obj.get("status") or {}
    if api_version(obj) != V1BETA1:
        status = (status.get("deprecated") or {}).get("v1beta1") or {}
    reason, message = status.get("failureReason") or "", status.get("failureMessage") or ""
    return f"{reason}: {message}" if reason and message else str(reason or message)


def infrastructure_ready(machine: Obj) -> bool:
    """Whether a Machine's infrastructure is provisioned (v1beta2
    ``status.initialization.infrastructureProvisioned``, v1beta1 ``status.infrastructureReady``)."""
    status = machine.get("status") or {}
    if api_version(machine) == V1BETA1:
        return bool(status.get("infrastructureReady"))
    return bool((status.get("initialization") or {}).get("infrastructureProvisioned"))


def infra_provisioned(infra: Obj) -> bool:
    """Whether an infrastructure machine (e.g. an AWSMachine) is provisioned, on either
    contract: v1beta2 ``status.initialization.provisioned``, v1beta1 ``status.ready``."""
    status = infra.get("status") or {}
    initialization = status.get("initialization") or {}
    if "provisioned" in initialization:
        return bool(initialization["provisioned"])
    return bool(status.get("ready"))


# -- writing -------------------------------------------------------------------------------


def write_ref(
    version_: str, api_version_: str, kind: str, name: str, namespace: str
) -> dict[str, Any]:
    """A reference to a (namespaced) object, as a Machine of ``version_`` spells it."""
    if version_ == V1BETA1:
        return {"apiVersion": api_version_, "kind": kind, "name": name, "namespace": namespace}
    return {"apiGroup": api_version_.rpartition("/")[0], "kind": kind, "name": name}


def write_drain_timeout(version_: str, seconds: float) -> dict[str, Any]:
    """The Machine spec fields that bound Cluster API's own drain, for ``version_``."""
    if version_ == V1BETA1:
        return {"nodeDrainTimeout": go_duration(seconds)}
    return {"deletion": {"nodeDrainTimeoutSeconds": int(seconds)}}
