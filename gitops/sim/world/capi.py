"""Cluster API objects of MachineDeployment mode, as upstream shapes them (v1beta2).

Tool layer (``gitops.sim.world``): pure builders shared by seeding (``seed.py``) and the
simulated controllers (``machinesets.py``, ``machinedeployments.py``, ``topology.py``), so that
a MachineSet the MachineDeployment controller makes at run time looks exactly like a seeded
one: the labels upstream puts on each object, the template hash, the Cluster and ClusterClass
of a topology-managed pool, and the v1beta2 conditions of a Machine. No store, no clock, no
randomness here: names that upstream draws at random are derived from stable hashes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from gitops.fleet import ClusterDocument, Image, NodePool
from gitops.fleet.wellknown import CLUSTER_NAME_LABEL, POOL_LABEL

Obj = dict[str, Any]

API_VERSION = "cluster.x-k8s.io/v1beta2"
INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
SET_NAME_LABEL = "cluster.x-k8s.io/set-name"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"
TEMPLATE_HASH_LABEL = "machine-template-hash"
TOPOLOGY_OWNED_LABEL = "topology.cluster.x-k8s.io/owned"
TOPOLOGY_DEPLOYMENT_LABEL = "topology.cluster.x-k8s.io/deployment-name"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
REVISION_ANNOTATION = "machinedeployment.clusters.x-k8s.io/revision"
DEFAULT_VARIABLE = "image"
TOPOLOGY_IMAGE_PATH = "/spec/template/spec/image"
# apimachinery's rand.SafeEncodeString alphabet: no vowels, no confusable digits.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """apimachinery's ``rand.SafeEncodeString``."""
    return "".join(_SAFE[b % len(_SAFE)] for b in text.encode())


def template_hash(template: Obj) -> str:
    """The ``machine-template-hash`` of a MachineDeployment's template: a 32-bit FNV-1a hash of
    its canonical JSON, in decimal as upstream writes it (upstream hashes a spew dump; any
    stable hash of the template's content serves the same purpose)."""
    spec = {k: v for k, v in template.items() if k != "metadata"}
    labels = dict(((template.get("metadata") or {}).get("labels")) or {})
    labels.pop(TEMPLATE_HASH_LABEL, None)
    canonical = json.dumps({"labels": labels, **spec}, sort_keys=True, separators=(",", ":"))
    return str(fnv32a(canonical.encode()))


def short_suffix(*parts: str) -> str:
    """A 5-character name suffix where upstream draws a random one, stable per ``parts``."""
    return safe_encode(str(fnv32a("/".join(parts).encode())))[:5]


def owner_ref(obj: Obj, *, controller: bool = True) -> Obj:
    meta = obj["metadata"]
    ref: Obj = {
        "apiVersion": API_VERSION,
        "kind": obj["kind"],
        "name": meta["name"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    return ref


def controller_of(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def rollout_strategy(pool: NodePool) -> Obj:
    """The v1beta2 ``rollout.strategy`` a pool's ``update`` asks for."""
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {
            "maxSurge": pool.update.max_surge,
            "maxUnavailable": pool.update.max_unavailable,
        },
    }


def machine_template_spec(cluster: ClusterDocument, template: str, bootstrap_secret: str) -> Obj:
    return {
        "clusterName": cluster.name,
        "version": cluster.spec.kubernetes_version,
        "bootstrap": {"dataSecretName": bootstrap_secret},
        "infrastructureRef": {
            "apiGroup": INFRA_GROUP,
            "kind": "SimMachineTemplate",
            "name": template,
        },
        "deletion": {"nodeDeletionTimeoutSeconds": 10},
    }


def machine_deployment(
    cluster: ClusterDocument,
    pool: NodePool,
    name: str,
    template: str,
    bootstrap_secret: str,
    *,
    extra_labels: dict[str, str] | None = None,
) -> Obj:
    """A MachineDeployment rolling ``pool`` from infrastructure template ``template``."""
    selector = {CLUSTER_NAME_LABEL: cluster.name, DEPLOYMENT_NAME_LABEL: name}
    labels = {CLUSTER_NAME_LABEL: cluster.name, **(extra_labels or {})}
    return {
        "apiVersion": API_VERSION,
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": {
            "clusterName": cluster.name,
            "replicas": pool.replicas,
            "selector": {"matchLabels": selector},
            "rollout": {"strategy": rollout_strategy(pool)},
            "template": {
                "metadata": {"labels": {**selector, POOL_LABEL: pool.name}},
                "spec": machine_template_spec(cluster, template, bootstrap_secret),
            },
        },
    }


def machine_set(md: Obj, replicas: int, revision: int) -> Obj:
    """The MachineSet a MachineDeployment makes for its current template."""
    meta = md["metadata"]
    digest = template_hash(md["spec"]["template"])
    template = copy.deepcopy(md["spec"]["template"])
    labels = {**(template.get("metadata") or {}).get("labels", {}), TEMPLATE_HASH_LABEL: digest}
    template.setdefault("metadata", {})["labels"] = labels
    selector = {**md["spec"]["selector"].get("matchLabels", {}), TEMPLATE_HASH_LABEL: digest}
    spec: Obj = {
        "clusterName": md["spec"]["clusterName"],
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "template": template,
    }
    order = (md["spec"].get("deletion") or {}).get("order")
    if order:
        spec["deletion"] = {"order": order}
    return {
        "apiVersion": API_VERSION,
        "kind": "MachineSet",
        "metadata": {
            "name": f"{meta['name']}-{safe_encode(digest)[:5]}",
            "namespace": meta["namespace"],
            "labels": {**(meta.get("labels") or {}), **labels},
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [owner_ref(md)],
        },
        "spec": spec,
    }


def machine_labels(ms: Obj) -> dict[str, str]:
    """What a MachineSet puts on the Machines it makes: its template's labels and its name."""
    labels = dict(((ms["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {})
    labels[SET_NAME_LABEL] = ms["metadata"]["name"]
    deployment = (ms["metadata"].get("labels") or {}).get(DEPLOYMENT_NAME_LABEL)
    if deployment:
        labels[DEPLOYMENT_NAME_LABEL] = deployment
    return labels


def cluster_object(cluster: ClusterDocument, topology: Obj | None = None) -> Obj:
    """The Cluster API Cluster of a fleet cluster (provisioned), with ``spec.topology``.

    Its control plane endpoint names the workload cluster's API (the simulator serves it under
    ``/clusters/<name>``; the endpoint is informative only)."""
    spec: Obj = {"controlPlaneEndpoint": {"host": f"{cluster.name}.sim.local", "port": 6443}}
    if topology is not None:
        spec["topology"] = topology
    return {
        "apiVersion": API_VERSION,
        "kind": "Cluster",
        "metadata": {
            "name": cluster.name,
            "namespace": cluster.namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster.name},
        },
        "spec": spec,
    }


def cluster_status(stamp: str) -> Obj:
    return {
        "phase": "Provisioned",
        "observedGeneration": 1,
        "initialization": {"infrastructureProvisioned": True, "controlPlaneInitialized": True},
        "conditions": [condition("Available", True, "Available", stamp)],
    }


def class_name(cluster: ClusterDocument) -> str:
    return f"{cluster.name}-class"


def topology_worker(pool: NodePool, image: Image) -> Obj:
    """The ``spec.topology.workers.machineDeployments[]`` entry of a topology pool."""
    ref = pool.machine_deployment
    assert ref is not None and ref.topology is not None
    return {
        "class": pool.name,
        "name": ref.topology,
        "replicas": pool.replicas,
        "metadata": {"labels": {POOL_LABEL: pool.name}},
        "rollout": {"strategy": rollout_strategy(pool)},
        "variables": {
            "overrides": [{"name": ref.image_variable or DEFAULT_VARIABLE, "value": image.source}]
        },
    }


def topology(cluster: ClusterDocument, workers: list[Obj]) -> Obj:
    return {
        "classRef": {"name": class_name(cluster)},
        "version": cluster.spec.kubernetes_version,
        "workers": {"machineDeployments": workers},
    }


def cluster_class(
    cluster: ClusterDocument, pools: Iterable[tuple[NodePool, str]], infra_api_version: str
) -> Obj:
    """A ClusterClass with one worker class per topology pool (named after the pool), whose
    image reaches the worker's infrastructure template through a variable and an inline patch
    (``definitions[].jsonPatches[]`` with ``valueFrom.variable``), as upstream writes them."""
    workers, variables, patches = [], [], []
    seen: set[str] = set()
    for pool, template in pools:
        ref = pool.machine_deployment
        variable = (ref.image_variable if ref else None) or DEFAULT_VARIABLE
        workers.append(
            {
                "class": pool.name,
                "infrastructure": {
                    "templateRef": {
                        "apiVersion": infra_api_version,
                        "kind": "SimMachineTemplate",
                        "name": template,
                    }
                },
            }
        )
        if variable not in seen:
            seen.add(variable)
            variables.append(
                {
                    "name": variable,
                    "required": False,
                    "schema": {"openAPIV3Schema": {"type": "string"}},
                }
            )
        patches.append(
            {
                "name": f"{pool.name}-image",
                "definitions": [
                    {
                        "selector": {
                            "apiVersion": infra_api_version,
                            "kind": "SimMachineTemplate",
                            "matchResources": {"machineDeploymentClass": {"names": [pool.name]}},
                        },
                        "jsonPatches": [
                            {
                                "op": "replace",
                                "path": TOPOLOGY_IMAGE_PATH,
                                "valueFrom": {"variable": variable},
                            }
                        ],
                    }
                ],
            }
        )
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterClass",
        "metadata": {"name": class_name(cluster), "namespace": cluster.namespace},
        "spec": {
            "workers": {"machineDeployments": workers},
            "variables": variables,
            "patches": patches,
        },
    }


def managed_deployment_name(cluster: str, worker: str) -> str:
    """``{{ .cluster.name }}-{{ .machineDeployment.topologyName }}-{{ .random }}``, upstream's
    default name of a topology-managed MachineDeployment (the suffix made stable here)."""
    return f"{cluster}-{worker}-{short_suffix(cluster, worker)}"


def condition(kind: str, ok: bool | None, reason: str, stamp: str, message: str = "") -> Obj:
    """A metav1.Condition (v1beta2 conditions; ``ok`` None is Unknown)."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
    }


def machine_v1beta2_conditions(status: Obj, *, deleting: bool, stamp: str) -> list[Obj]:
    """A Machine's v1beta2 conditions (Ready, Available, UpToDate, Deleting, ...), derived from
    the v1beta1 status the simulated machine controller writes, as Cluster API v1.11 keeps
    both. A condition keeps its lastTransitionTime while its status does not change."""
    old = {c.get("type"): c for c in (status.get("v1beta2") or {}).get("conditions") or []}
    v1 = {c.get("type"): c for c in status.get("conditions") or []}
    node_ready = (v1.get("Ready") or {}).get("status") == "True" and bool(status.get("nodeRef"))
    infra = bool(status.get("infrastructureReady"))
    failed = status.get("phase") == "Failed"
    ready = node_ready and not deleting and not failed
    wanted = [
        ("BootstrapConfigReady", bool(status.get("bootstrapReady")), "DataSecretAvailable"),
        ("InfrastructureReady", infra, "Ready" if infra else "NotReady"),
        ("NodeReady", node_ready, "NodeReady" if node_ready else "NodeNotReady"),
        ("NodeHealthy", node_ready, "NodeHealthy" if node_ready else "NodeNotHealthy"),
        ("Ready", ready, "Ready" if ready else ("Deleting" if deleting else "NotReady")),
        ("Available", ready, "Available" if ready else "NotAvailable"),
        ("UpToDate", True, "UpToDate"),
        ("Deleting", deleting, "Deleting" if deleting else "NotDeleting"),
        ("Paused", False, "NotPaused"),
    ]
    out = []
    for kind, ok, reason in wanted:
        new = condition(kind, ok, reason, stamp)
        prev = old.get(kind)
        if kind == "UpToDate" and prev is not None:
            new = dict(prev)  # the MachineSet controller's to say (machinesets.py)
        elif prev is not None and prev.get("status") == new["status"]:
            new["lastTransitionTime"] = prev.get("lastTransitionTime", stamp)
        out.append(new)
    return out
