"""Writes to workload clusters the executor needs: cordon, annotate, evict, delete pods.

Adapter layer. Each function is one idempotent request (or a small read of the pods on one
node), with failures translated to typed errors; the decisions of when to call them belong to
``gitops.rollout``. What they hand back are the typed references of ``gitops.kube.refs``, never
raw objects. An eviction refused by a PodDisruptionBudget comes back from ``evict`` as
``TooManyRequests`` whose message names the budget, as the API server words it; ``try_evict``
turns that into a ``Refused`` naming it.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from kubernetes import client as k8s

from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    call,
    call_json,
    read_json,
    write,
)
from gitops.kube.refs import ConfigMap, PodRef, Refused
from gitops.kube.translate import evictable


def patch_node(
    kube: Kube,
    node: str,
    *,
    unschedulable: bool | None = None,
    annotations: dict[str, str | None] | None = None,
    labels: dict[str, str | None] | None = None,
) -> None:
    """Merge-patch a Node's spec.unschedulable, annotations and labels (None removes a key)."""
    body: dict[str, Any] = {}
    if unschedulable is not None:
        body["spec"] = {"unschedulable": unschedulable or None}
    meta: dict[str, Any] = {}
    if annotations:
        meta["annotations"] = annotations
    if labels:
        meta["labels"] = labels
    if meta:
        body["metadata"] = meta
    if body:
        write(
            f"patching Node {node} in {kube.label()}",
            kube.core.patch_node,
            node,
            body,
            _request_timeout=REQUEST_TIMEOUT,
        )


def pods_on_node(kube: Kube, node: str) -> tuple[PodRef, ...]:
    """The pods bound to ``node``, listed afresh (a drain re-lists them on every pass)."""
    body = call_json(
        f"listing pods on {node} in {kube.label()}",
        kube.core.list_pod_for_all_namespaces,
        field_selector=f"spec.nodeName={node}",
        _request_timeout=REQUEST_TIMEOUT,
    )
    return tuple(_pod_ref(pod) for pod in body.get("items") or [])


def _pod_ref(pod: dict[str, Any]) -> PodRef:
    meta: dict[str, Any] = pod.get("metadata") or {}
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return PodRef(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        grace_period=int(grace) if grace is not None else None,
        deleting=bool(meta.get("deletionTimestamp")),
        evictable=evictable(pod),
    )


def evict(kube: Kube, namespace: str, name: str, grace_period: int | None = None) -> None:
    """Ask the Eviction API to evict a pod; PDBs are honoured by the API server."""
    body = k8s.V1Eviction(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
        delete_options=k8s.V1DeleteOptions(grace_period_seconds=grace_period)
        if grace_period is not None
        else None,
    )
    write(
        f"evicting pod {namespace}/{name} in {kube.label()}",
        kube.core.create_namespaced_pod_eviction,
        name,
        namespace,
        body,
        _request_timeout=REQUEST_TIMEOUT,
    )


def try_evict(kube: Kube, pod: PodRef) -> Refused | None:
    """Evict ``pod`` with its own grace period: None when it is evicted or already gone, the
    refusing budget when a PodDisruptionBudget said no (429)."""
    try:
        evict(kube, pod.namespace, pod.name, pod.grace_period)
    except TooManyRequests as err:
        return Refused(_blocking_pdb(err, pod.namespace))
    except NotFound:
        return None
    return None


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


def delete_pod(kube: Kube, pod: PodRef, grace_period: int | None = None) -> None:
    """Delete a pod outright (onDrainTimeout: force), bypassing its disruption budget."""
    write(
        f"deleting pod {pod} in {kube.label()}",
        kube.core.delete_namespaced_pod,
        pod.name,
        pod.namespace,
        grace_period_seconds=grace_period,
        _request_timeout=REQUEST_TIMEOUT,
    )


def read_config_map(kube: Kube, namespace: str, name: str) -> ConfigMap:
    obj = read_json(
        f"reading ConfigMap {namespace}/{name}",
        kube.core.read_namespaced_config_map,
        name,
        namespace,
        _request_timeout=REQUEST_TIMEOUT,
    )
    meta = obj.get("metadata") or {}
    return ConfigMap(
        namespace=namespace,
        name=name,
        resource_version=str(meta.get("resourceVersion") or ""),
        data={str(k): str(v) for k, v in (obj.get("data") or {}).items()},
    )


def write_config_map(
    kube: Kube,
    namespace: str,
    name: str,
    data: dict[str, str],
    resource_version: str | None,
    labels: dict[str, str] | None = None,
) -> str:
    """Create the ConfigMap, or replace it if ``resource_version`` still matches (else 409).

    Returns the new resourceVersion. Optimistic concurrency keeps two writers from losing each
    other's progress.
    """
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "data": data,
    }
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
        written = call_json(
            f"writing ConfigMap {namespace}/{name}",
            kube.core.replace_namespaced_config_map,
            name,
            namespace,
            body,
            _request_timeout=REQUEST_TIMEOUT,
        )
    else:
        written = call_json(
            f"creating ConfigMap {namespace}/{name}",
            kube.core.create_namespaced_config_map,
            namespace,
            body,
            _request_timeout=REQUEST_TIMEOUT,
        )
    return str(written["metadata"]["resourceVersion"])


def ensure_namespace(kube: Kube, name: str) -> str:
    """Make sure namespace ``name`` exists: "exists", "created", or "unknown".

    "unknown" when this identity may not read namespaces (a controller confined to its own
    namespace, which its deployment created): the requests in it will tell. ``Forbidden`` when
    the namespace is missing and this identity may not create it.
    """
    try:
        call(
            f"reading Namespace {name}",
            kube.core.read_namespace,
            name,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return "exists"
    except Forbidden:
        return "unknown"
    except NotFound:
        pass
    create_namespace(kube, name)
    return "created"


def create_namespace(kube: Kube, name: str) -> None:
    """Create a namespace (AlreadyExists is fine)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    with contextlib.suppress(Conflict):
        write(
            f"creating Namespace {name}",
            kube.core.create_namespace,
            body,
            _request_timeout=REQUEST_TIMEOUT,
        )
