"""Seeding: the objects a simulated fleet starts with, built from the fleet declaration.

Tool layer (``gitops.sim.world``). ``build(fleet, ...)`` is pure: from the fleet, a seed
and a time it returns every object the world then creates in the store, in creation order
(namespaces first). Per Cluster document: its namespace in the management cluster, the Secret
``<cluster>-kubeconfig`` (key ``value``) as Cluster API writes it, a bootstrap data Secret and a
``SimMachineTemplate`` per pool, and per node a Cluster API Machine with its ``SimMachine`` and
the Node in the workload cluster. Drift (``drift.py``) and workloads (``workloads.py``) are
added to the same ``Seeding`` afterwards.

The object builders here (``node_object``, ``machine_object``...) are shared with physics, so
a node registered at run time looks exactly like a seeded one.

It must never touch the store, read a clock or use a random source other than the
``random.Random`` instances derived from the seed it is given.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

from gitops.fleet import ClusterDocument, Fleet, Image, NodePool
from gitops.fleet.wellknown import (
    CLUSTER_NAME_LABEL,
    IMAGE_ANNOTATION,
    MACHINE_ANNOTATION,
    POOL_ANNOTATION,
    POOL_LABEL,
    ZONE_LABEL,
)
from gitops.sim.world import capi

Obj = dict[str, Any]
Initial = Literal["declared", "previous"]

MANAGEMENT = ""
MACHINE_API_VERSION = "cluster.x-k8s.io/v1beta1"
MACHINE_FINALIZER = "machine.cluster.x-k8s.io"
SIM_API_VERSION = "infrastructure.cluster.x-k8s.io/v1alpha1"
SIM_MACHINE = "SimMachine"
SIM_TEMPLATE = "SimMachineTemplate"
DEFAULT_IMAGE_FIELD = "spec.template.spec.image"
PROVIDER_PREFIX = "sim://"
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
CLUSTER_NAMESPACE_ANNOTATION = "cluster.x-k8s.io/cluster-namespace"
CAPI_CLUSTER_ANNOTATION = "cluster.x-k8s.io/cluster-name"
WORKLOAD_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Resource keys (``gitops.sim.api.resources.RESOURCES``) of everything the world creates.
NAMESPACES = "namespaces"
SECRETS = "secrets"
NODES = "nodes"
PODS = "pods"
MACHINES = "machines.cluster.x-k8s.io"
SIM_MACHINES = "simmachines.infrastructure.cluster.x-k8s.io"
SIM_TEMPLATES = "simmachinetemplates.infrastructure.cluster.x-k8s.io"
DEPLOYMENTS = "deployments.apps"
REPLICASETS = "replicasets.apps"
DAEMONSETS = "daemonsets.apps"
PDBS = "poddisruptionbudgets.policy"
CAPI_CLUSTERS = "clusters.cluster.x-k8s.io"
CLUSTERCLASSES = "clusterclasses.cluster.x-k8s.io"
MACHINEDEPLOYMENTS = "machinedeployments.cluster.x-k8s.io"
MACHINESETS = "machinesets.cluster.x-k8s.io"


def rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def stream(seed: int, purpose: str) -> random.Random:
    """An independent, reproducible random stream per purpose (names, drift, workloads...).

    Separate streams keep, say, node names identical whatever drift is asked for.
    """
    return random.Random(f"{seed}/{purpose}")


@dataclass
class SeedObject:
    """One object to create: where, which resource, the object, and when it was "created"."""

    cluster: str
    resource: str
    obj: Obj
    created: float | None = None


@dataclass
class SeededNode:
    """Bookkeeping for drift and workloads: one seeded node, by reference into ``objects``."""

    cluster: str
    pool: str  # "" for an unmanaged node
    image: str  # catalog name it booted from
    node: Obj
    machine: Obj | None = None


@dataclass
class Seeding:
    """Everything the world creates at start, in creation order."""

    objects: list[SeedObject] = field(default_factory=list)
    nodes: list[SeededNode] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)  # workload clusters, fleet order

    def add(self, cluster: str, resource: str, obj: Obj, created: float | None = None) -> Obj:
        self.objects.append(SeedObject(cluster, resource, obj, created))
        return obj

    def nodes_of(self, cluster: str) -> list[SeededNode]:
        return [n for n in self.nodes if n.cluster == cluster]

    def count(self, resource: str, cluster: str | None = None) -> int:
        return sum(
            1
            for o in self.objects
            if o.resource == resource and (cluster is None or o.cluster == cluster)
        )


# -- images ---------------------------------------------------------------------------------


def image_for(fleet: Fleet, source: str = "", name: str = "") -> str | None:
    """The catalog name of the image a provider boots: matched by ``source`` first.

    A SimMachine cloned from a template carries the new ``source`` at the image field while the
    template's ``imageName`` may still name the old image, so the source wins; ``name`` only
    decides between images sharing a source, or when no source is given.
    """
    images = fleet.images
    by_source = [n for n, img in images.items() if source and img.source == source]
    if len(by_source) == 1:
        return by_source[0]
    if by_source:
        return name if name in by_source else by_source[0]
    if not source and name in images:
        return name
    return None


def node_info(image: Image, rng: random.Random) -> Obj:
    """``status.nodeInfo`` of a node booted from ``image`` (ids drawn from ``rng``)."""
    return {
        "architecture": "amd64",
        "bootID": _uuid(rng),
        "containerRuntimeVersion": image.container_runtime_version,
        "kernelVersion": image.kernel_version,
        "kubeProxyVersion": image.kubelet_version,
        "kubeletVersion": image.kubelet_version,
        "machineID": f"{rng.getrandbits(128):032x}",
        "operatingSystem": "linux",
        "osImage": image.os_image,
        "systemUUID": _uuid(rng),
    }


def _uuid(rng: random.Random) -> str:
    raw = f"{rng.getrandbits(128):032x}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


# -- object builders (shared with physics) --------------------------------------------------


def kubeconfig(server_url: str, cluster: str) -> str:
    """A kubeconfig for one workload cluster, as Cluster API stores it in ``<cluster>-kubeconfig``."""
    context = f"{cluster}-admin@{cluster}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": f"{server_url.rstrip('/')}/clusters/{cluster}"},
                }
            ],
            "users": [{"name": f"{cluster}-admin", "user": {"token": f"sim-{cluster}"}}],
            "contexts": [
                {"name": context, "context": {"cluster": cluster, "user": f"{cluster}-admin"}}
            ],
            "current-context": context,
            "preferences": {},
        },
        sort_keys=False,
    )


def secret(namespace: str, name: str, data: Mapping[str, str], *, cluster: str, kind: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster},
        },
        "type": kind,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
        },
    }


def template_name(pool: NodePool) -> str:
    ref = pool.machine_template.infrastructure_ref if pool.machine_template else None
    return ref.name if ref is not None else pool.name


def template_namespace(cluster: ClusterDocument, pool: NodePool) -> str:
    ref = pool.machine_template.infrastructure_ref if pool.machine_template else None
    return (ref.namespace if ref is not None else None) or cluster.namespace


def bootstrap_secret_name(cluster: ClusterDocument, pool: NodePool) -> str:
    """The bootstrap data Secret a pool's Machines name (as ``gitops.providers.clusterapi``)."""
    return f"{cluster.name}-{pool.name}-bootstrap"


def sim_machine_template(
    cluster: ClusterDocument, pool: NodePool, image_name: str, image: Image
) -> Obj:
    spec: Obj = {"image": image.source, "imageName": image_name}
    obj: Obj = {
        "apiVersion": SIM_API_VERSION,
        "kind": SIM_TEMPLATE,
        "metadata": {
            "name": template_name(pool),
            "namespace": template_namespace(cluster, pool),
            "labels": {CLUSTER_NAME_LABEL: cluster.name, POOL_LABEL: pool.name},
        },
        "spec": {"template": {"spec": spec}},
    }
    field_path = pool.machine_template.image_field if pool.machine_template else DEFAULT_IMAGE_FIELD
    if field_path != DEFAULT_IMAGE_FIELD:
        set_path(obj, field_path, image.source)
    return obj


def set_path(obj: Obj, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = obj[part] = {}
        obj = nxt
    obj[parts[-1]] = value


def infra_status(ready: bool, contract: str) -> Obj:
    """An infrastructure machine's readiness as its Cluster API contract says it: v1beta2
    providers set ``status.initialization.provisioned``, v1beta1 ones ``status.ready``."""
    if contract == "v1beta1":
        return {"ready": ready}
    return {"initialization": {"provisioned": ready}}


def sim_machine(
    *,
    namespace: str,
    name: str,
    cluster: str,
    pool: str,
    spec: Obj,
    template: str = "",
    provider_id: str | None = None,
    ready: bool = False,
    addresses: list[Obj] | None = None,
    contract: str = "v1beta2",
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": namespace,
        "labels": {CLUSTER_NAME_LABEL: cluster, **({POOL_LABEL: pool} if pool else {})},
    }
    if template:
        meta["annotations"] = {
            "cluster.x-k8s.io/cloned-from-name": template,
            "cluster.x-k8s.io/cloned-from-groupkind": f"{SIM_TEMPLATE}.infrastructure.cluster.x-k8s.io",
        }
    full_spec = dict(spec)
    if provider_id:
        full_spec["providerID"] = provider_id
    status: Obj = infra_status(ready, contract)
    if addresses:
        status["addresses"] = addresses
    return {
        "apiVersion": SIM_API_VERSION,
        "kind": SIM_MACHINE,
        "metadata": meta,
        "spec": full_spec,
        "status": status,
    }


def provider_id(cluster: str, machine: str) -> str:
    return f"{PROVIDER_PREFIX}{cluster}/{machine}"


def addresses(name: str, ip: str) -> list[Obj]:
    return [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]


def capi_conditions(when: str, *, ready: bool, node_healthy: bool) -> list[Obj]:
    def cond(kind: str, ok: bool, reason: str = "") -> Obj:
        out: Obj = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": when}
        if not ok:
            out["reason"] = reason
            out["severity"] = "Info"
        return out

    return [
        cond("Ready", ready, "WaitingForNodeRef"),
        cond("BootstrapReady", True),
        cond("InfrastructureReady", ready or node_healthy, "WaitingForInfrastructure"),
        cond("NodeHealthy", node_healthy, "WaitingForNodeRef"),
    ]


def machine_object(
    cluster: ClusterDocument,
    pool: NodePool,
    name: str,
    zone: str,
    image_name: str,
    *,
    when: float,
    node: Obj | None = None,
) -> Obj:
    """A Cluster API Machine of ``pool`` as a MachineSet would make it; Running when ``node``."""
    ref = pool.machine_template.infrastructure_ref if pool.machine_template else None
    infra_ns = (ref.namespace if ref is not None else None) or cluster.namespace
    obj: Obj = {
        "apiVersion": MACHINE_API_VERSION,
        "kind": "Machine",
        "metadata": {
            "name": name,
            "namespace": cluster.namespace,
            "labels": {CLUSTER_NAME_LABEL: cluster.name, POOL_LABEL: pool.name},
            "annotations": {POOL_ANNOTATION: pool.name, IMAGE_ANNOTATION: image_name},
            "finalizers": [MACHINE_FINALIZER],
        },
        "spec": {
            "clusterName": cluster.name,
            "version": cluster.spec.kubernetes_version,
            "bootstrap": {"dataSecretName": bootstrap_secret_name(cluster, pool)},
            "infrastructureRef": {
                "apiVersion": SIM_API_VERSION,
                "kind": SIM_MACHINE,
                "name": name,
                "namespace": infra_ns,
            },
            "providerID": provider_id(cluster.name, name),
            "failureDomain": zone,
            "nodeDeletionTimeout": "10s",
        },
    }
    if node is not None:
        stamp = rfc3339(when)
        obj["status"] = {
            "phase": "Running",
            "bootstrapReady": True,
            "infrastructureReady": True,
            "observedGeneration": 1,
            "lastUpdated": stamp,
            "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"]},
            "addresses": [dict(a) for a in node["status"]["addresses"]],
            "nodeInfo": dict(node["status"]["nodeInfo"]),
            "conditions": capi_conditions(stamp, ready=True, node_healthy=True),
        }
        obj["status"]["v1beta2"] = {
            "conditions": capi.machine_v1beta2_conditions(
                obj["status"], deleting=False, stamp=stamp
            )
        }
    return obj


def node_taints(pool: NodePool | None) -> list[Obj]:
    out: list[Obj] = []
    for taint in pool.taints if pool is not None else ():
        t: Obj = {"key": taint.key, "effect": taint.effect}
        if taint.value is not None:
            t["value"] = taint.value
        out.append(t)
    return out


def node_object(
    *,
    name: str,
    cluster: str,
    cluster_namespace: str,
    zone: str,
    image: Image,
    rng: random.Random,
    ip: str,
    when: float,
    pool: NodePool | None,
    machine: str | None,
    extra_labels: Mapping[str, str] | None = None,
    ready: bool = True,
) -> Obj:
    """A workload cluster's Node as its kubelet registers it (Ready, or NotReady while booting).

    Labels: the kubelet's well-known ones, the zone, the pool's labels and, copied from the
    Machine by Cluster API, those of the ``node.cluster.x-k8s.io`` domain (``extra_labels``).
    """
    labels: dict[str, str] = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        ZONE_LABEL: zone,
    }
    if pool is not None:
        labels.update(pool.labels)
        labels[POOL_LABEL] = pool.name
    labels.update(extra_labels or {})
    annotations: dict[str, str] = {"node.alpha.kubernetes.io/ttl": "0"}
    if machine:
        annotations.update(
            {
                MACHINE_ANNOTATION: machine,
                CAPI_CLUSTER_ANNOTATION: cluster,
                CLUSTER_NAMESPACE_ANNOTATION: cluster_namespace,
            }
        )
    taints = node_taints(pool)
    if not ready:
        taints.append(dict(NOT_READY_TAINT))
    gpu = pool is not None and pool.labels.get("nvidia.com/gpu.present") == "true"
    capacity = {
        "cpu": "16",
        "ephemeral-storage": "209702892Ki",
        "hugepages-2Mi": "0",
        "memory": "65843272Ki",
        "pods": "110",
        **({"nvidia.com/gpu": "8"} if gpu else {}),
    }
    allocatable = {
        **capacity,
        "cpu": "15800m",
        "ephemeral-storage": "193262184Ki",
        "memory": "64716872Ki",
    }
    stamp = rfc3339(when)
    spec: Obj = {"providerID": provider_id(cluster, machine or name)}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": node_conditions(stamp, ready=ready),
            "addresses": addresses(name, ip),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": node_info(image, rng),
            "phase": "Running",
        },
    }


def node_conditions(stamp: str, *, ready: bool) -> list[Obj]:
    def pressure(kind: str, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": "False",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }

    return [
        pressure(
            "MemoryPressure",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ready_condition(stamp, ready=ready),
    ]


def ready_condition(stamp: str, *, ready: bool) -> Obj:
    if ready:
        return {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    return {
        "type": "Ready",
        "status": "False",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
        "reason": "KubeletNotReady",
        "message": "container runtime network not ready: NetworkReady=false "
        "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
    }


def node_name(cluster: str, pool: str, rng: random.Random, taken: set[str]) -> str:
    """``<cluster>-<pool>-<5 hex>``, at most 63 characters (a hostname label), unique; with
    ``pool`` empty, ``<cluster>-<5 hex>`` (a MachineSet's Machines: ``<set>-<5 hex>``)."""
    base = (f"{cluster}-{pool}" if pool else cluster)[: 63 - 6].rstrip("-")
    while True:
        name = f"{base}-{rng.getrandbits(20):05x}"
        if name not in taken:
            taken.add(name)
            return name


def node_ip(cluster_index: int, n: int) -> str:
    return f"10.{cluster_index % 256}.{(n // 250) % 256}.{n % 250 + 2}"


# -- the seeding ----------------------------------------------------------------------------


def build(
    fleet: Fleet,
    *,
    seed: int = 0,
    initial: Initial = "declared",
    server_url: str = "http://127.0.0.1",
    now: float,
    infra_contract: str = "v1beta2",
) -> Seeding:
    """Namespaces, Secrets, templates, Machines, SimMachines and Nodes for every cluster.

    ``infra_contract`` is the Cluster API contract the SimMachines follow (``infra_status``)."""
    if initial not in ("declared", "previous"):
        raise ValueError(f"--initial must be declared or previous, not {initial!r}")
    names = stream(seed, "names")
    ids = stream(seed, "node-ids")
    ages = stream(seed, "ages")
    out = Seeding()
    namespaces: set[str] = set()

    def ensure_ns(name: str) -> None:
        if name not in namespaces:
            namespaces.add(name)
            out.add(MANAGEMENT, NAMESPACES, namespace(name), now - 60 * 86400.0)

    ensure_ns("default")
    ensure_ns("kube-system")
    for index, cluster in enumerate(fleet.clusters):
        out.clusters.append(cluster.name)
        ns = cluster.namespace
        ensure_ns(ns)
        for wl_ns in WORKLOAD_NAMESPACES:
            out.add(cluster.name, NAMESPACES, namespace(wl_ns), now - 60 * 86400.0)
        out.add(
            MANAGEMENT,
            SECRETS,
            secret(
                ns,
                f"{cluster.name}-kubeconfig",
                {"value": kubeconfig(server_url, cluster.name)},
                cluster=cluster.name,
                kind="cluster.x-k8s.io/secret",
            ),
        )
        taken: set[str] = set()
        counter = 0
        _seed_cluster_objects(out, fleet, cluster, initial, now)
        for pool in cluster.spec.node_pools:
            image_name = pool.image if initial == "declared" else fleet.previous_image(pool.image)
            image = fleet.images[image_name]
            ensure_ns(template_namespace(cluster, pool))
            template = sim_machine_template(cluster, pool, image_name, image)
            out.add(MANAGEMENT, SIM_TEMPLATES, template)
            out.add(
                MANAGEMENT,
                SECRETS,
                secret(
                    ns,
                    bootstrap_secret_name(cluster, pool),
                    {"value": f"#sim-bootstrap\ncluster: {cluster.name}\npool: {pool.name}\n"},
                    cluster=cluster.name,
                    kind="cluster.x-k8s.io/secret",
                ),
            )
            infra_ns = template_namespace(cluster, pool)
            machine_set = None
            if pool.machine_deployment is not None:
                machine_set = _seed_deployment(out, cluster, pool, template, image, now)
            for i in range(pool.replicas):
                if machine_set is None:
                    name = node_name(cluster.name, pool.name, names, taken)
                else:
                    name = node_name(machine_set["metadata"]["name"], "", names, taken)
                zone = pool.zones[i % len(pool.zones)]
                created = now - 3600.0 - ages.uniform(0, 30 * 86400.0)
                counter += 1
                ip = node_ip(index, counter)
                node = node_object(
                    name=name,
                    cluster=cluster.name,
                    cluster_namespace=ns,
                    zone=zone,
                    image=image,
                    rng=ids,
                    ip=ip,
                    when=created,
                    pool=pool,
                    machine=name,
                )
                machine = machine_object(
                    cluster, pool, name, zone, image_name, when=created, node=node
                )
                if machine_set is not None:
                    _owned_by_set(machine, machine_set)
                infra = sim_machine(
                    namespace=infra_ns,
                    name=name,
                    cluster=cluster.name,
                    pool=pool.name,
                    spec={"image": image.source, "imageName": image_name},
                    template=template_name(pool),
                    provider_id=provider_id(cluster.name, name),
                    ready=True,
                    addresses=addresses(name, ip),
                    contract=infra_contract,
                )
                out.add(MANAGEMENT, SIM_MACHINES, infra, created - 60.0)
                out.add(MANAGEMENT, MACHINES, machine, created - 60.0)
                out.add(cluster.name, NODES, node, created)
                out.nodes.append(SeededNode(cluster.name, pool.name, image_name, node, machine))
    return out


# -- MachineDeployment mode -----------------------------------------------------------------


def _seed_cluster_objects(
    out: Seeding, fleet: Fleet, cluster: ClusterDocument, initial: Initial, now: float
) -> None:
    """The Cluster API Cluster of a fleet cluster, and for topology pools its ClusterClass and
    ``spec.topology`` (one worker per topology pool, the image's source as its override)."""
    stamp = rfc3339(now - 60 * 86400.0)
    topology_pools = [
        p for p in cluster.spec.node_pools if p.machine_deployment and p.machine_deployment.topology
    ]
    topology = None
    if topology_pools:
        workers = []
        for pool in topology_pools:
            image_name = pool.image if initial == "declared" else fleet.previous_image(pool.image)
            workers.append(capi.topology_worker(pool, fleet.images[image_name]))
        pools = [(p, template_name(p)) for p in topology_pools]
        cls = capi.cluster_class(cluster, pools, SIM_API_VERSION)
        out.add(MANAGEMENT, CLUSTERCLASSES, cls, now - 60 * 86400.0)
        topology = capi.topology(cluster, workers)
    obj = capi.cluster_object(cluster, topology)
    obj["status"] = capi.cluster_status(stamp)
    out.add(MANAGEMENT, CAPI_CLUSTERS, obj, now - 60 * 86400.0)


def _seed_deployment(
    out: Seeding, cluster: ClusterDocument, pool: NodePool, template: Obj, image: Image, now: float
) -> Obj:
    """A pool's MachineDeployment and its one MachineSet (returned); for a topology pool, the
    managed MachineDeployment and the template clone the topology controller would have made."""
    ref = pool.machine_deployment
    assert ref is not None
    boot = bootstrap_secret_name(cluster, pool)
    if ref.topology is not None:
        clone = _topology_clone(cluster, ref.topology, template, image)
        out.add(MANAGEMENT, SIM_TEMPLATES, clone)
        labels = {capi.TOPOLOGY_OWNED_LABEL: "", capi.TOPOLOGY_DEPLOYMENT_LABEL: ref.topology}
        name = capi.managed_deployment_name(cluster.name, ref.topology)
        md = capi.machine_deployment(
            cluster, pool, name, clone["metadata"]["name"], boot, extra_labels=labels
        )
        md["spec"]["template"]["metadata"]["labels"].update(labels)
        md["metadata"]["ownerReferences"] = [
            {"apiVersion": capi.API_VERSION, "kind": "Cluster", "name": cluster.name}
        ]
    else:
        assert ref.name is not None
        md = capi.machine_deployment(cluster, pool, ref.name, template["metadata"]["name"], boot)
    md["metadata"]["annotations"] = {capi.REVISION_ANNOTATION: "1"}
    created = now - 30 * 86400.0
    out.add(MANAGEMENT, MACHINEDEPLOYMENTS, md, created)
    machine_set = capi.machine_set(md, pool.replicas, revision=1)
    out.add(MANAGEMENT, MACHINESETS, machine_set, created)
    return machine_set


def _topology_clone(cluster: ClusterDocument, worker: str, template: Obj, image: Image) -> Obj:
    """The worker's infrastructure template with the image patched in (``TOPOLOGY_IMAGE_PATH``),
    under a content-hashed name as the topology controller rotates templates."""
    clone = {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "metadata": {
            "namespace": template["metadata"]["namespace"],
            "labels": {
                CLUSTER_NAME_LABEL: cluster.name,
                capi.TOPOLOGY_OWNED_LABEL: "",
                capi.TOPOLOGY_DEPLOYMENT_LABEL: worker,
            },
            "annotations": {
                "cluster.x-k8s.io/cloned-from-name": template["metadata"]["name"],
                "cluster.x-k8s.io/cloned-from-groupkind": f"{SIM_TEMPLATE}.{capi.INFRA_GROUP}",
            },
        },
        "spec": {"template": {"spec": dict(template["spec"]["template"]["spec"])}},
    }
    clone["spec"]["template"]["spec"]["image"] = image.source
    clone["metadata"]["name"] = topology_template_name(cluster.name, worker, clone["spec"])
    return clone


def topology_template_name(cluster: str, worker: str, spec: Obj) -> str:
    digest = capi.fnv32a(repr(sorted(spec["template"]["spec"].items())).encode())
    return f"{cluster}-{worker}-{capi.safe_encode(str(digest))[:5]}"


def _owned_by_set(machine: Obj, machine_set: Obj) -> None:
    """A seeded Machine as its MachineSet made it: the set's labels, owned by the set."""
    meta = machine["metadata"]
    meta["labels"] = {**meta["labels"], **capi.machine_labels(machine_set)}
    # gitops' own annotations are for the Machines it creates; a MachineSet copies only
    # its template's.
    meta.pop("annotations", None)
    meta["ownerReferences"] = [
        {
            "apiVersion": capi.API_VERSION,
            "kind": "MachineSet",
            "name": machine_set["metadata"]["name"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
