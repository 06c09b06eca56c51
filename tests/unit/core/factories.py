"""Builders for fleets and inventories of the pure-core tests, all in memory.

A fleet is validated by the real pydantic models and assigned to waves by the same selector
rule as the loader; an inventory is built with ``ClusterInventory.build`` exactly as the kube
adapter builds it. ``declared(fleet)`` observes every pool as git declares it, and its options
put nodes on another image, drift them, or leave replacements in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gitops.fleet import ClusterDocument, Fleet, FleetDocument, NodePool, WaveMembers, load
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    FAILED_ANNOTATION,
    IMAGE_ANNOTATION,
    PHASE_ANNOTATION,
    PLAN_ID_ANNOTATION,
    POOL_LABEL,
    REPLACES_ANNOTATION,
    ZONE_LABEL,
)
from gitops.inventory import (
    ClusterInventory,
    Inventory,
    Machine,
    MachineDeployment,
    Node,
    NodeTaint,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"
T0 = 1_750_000_000.0  # a fixed "now" for tables: 2025-06-15T15:06:40Z

IMAGES: dict[str, dict[str, str]] = {
    "img-1": {
        "family": "base",
        "osImage": "OS (v1)",
        "kernelVersion": "6.6.1",
        "kubeletVersion": "v1.31.0",
        "containerRuntimeVersion": "containerd://2.0.0",
        "source": "registry/img:v1",
    },
    "img-2": {
        "family": "base",
        "osImage": "OS (v2)",
        "kernelVersion": "6.12.1",
        "kubeletVersion": "v1.31.4",
        "containerRuntimeVersion": "containerd://2.0.2",
        "source": "registry/img:v2",
    },
}


def pool(
    name: str = "workers",
    *,
    image: str = "img-2",
    replicas: int = 3,
    zones: Iterable[str] = ("a", "b"),
    surge: int | str = 1,
    unavailable: int | str = 0,
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Mapping[str, str]] = (),
    soak: str = "0",
    startup: str = "10m",
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "replicas": replicas,
        "zones": list(zones),
        "labels": dict(labels or {}),
        "taints": [dict(t) for t in taints],
        "update": {
            "maxSurge": surge,
            "maxUnavailable": unavailable,
            "soak": soak,
            "nodeStartupTimeout": startup,
        },
    }


def cluster(
    name: str, *, ring: str = "prod", pools: Iterable[dict[str, Any]] = (), paused: bool = False
) -> dict[str, Any]:
    return {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": {"ring": ring}},
        "spec": {
            "kubernetesVersion": "v1.31.4",
            "paused": paused,
            "nodePools": list(pools) or [pool()],
        },
    }


def fleet(
    clusters: Iterable[dict[str, Any]],
    *,
    waves: Iterable[dict[str, Any]] | None = None,
    remediate: str = "replace",
    max_drifted_fraction: float = 1.0,
    max_failed_nodes: int = 1,
    images: Mapping[str, Mapping[str, str]] | None = None,
    revision: str = "rev-1",
    rollout: Mapping[str, Any] | None = None,
) -> Fleet:
    """A validated Fleet from plain documents; waves default to canary then prod by ring."""
    wave_list = list(
        waves
        if waves is not None
        else [
            {"name": "canary", "clusters": {"matchLabels": {"ring": "canary"}}},
            {"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}},
        ]
    )
    document = FleetDocument.model_validate(
        {
            "apiVersion": "fleet.gitops.io/v1alpha1",
            "kind": "Fleet",
            "metadata": {"name": "test"},
            "spec": {
                "images": {k: dict(v) for k, v in (images or IMAGES).items()},
                "rollout": {
                    "waves": wave_list,
                    "maxFailedNodes": max_failed_nodes,
                    "maxDriftedFraction": max_drifted_fraction,
                    **(rollout or {}),
                },
                "drift": {"remediate": remediate},
            },
        }
    )
    docs = sorted((ClusterDocument.model_validate(c) for c in clusters), key=lambda c: c.name)
    members = []
    for wave in document.spec.rollout.waves:
        names = tuple(c.name for c in docs if wave.clusters.matches(c.metadata.labels))
        if names:  # the loader rejects a wave that selects no cluster
            members.append(WaveMembers(wave, names))
    return Fleet(document=document, clusters=tuple(docs), waves=tuple(members), revision=revision)


def example() -> Fleet:
    return load(EXAMPLE).with_revision("example-rev")


def facts(fleet_: Fleet, image: str) -> dict[str, str]:
    img = fleet_.images[image]
    return {
        "os_image": img.os_image,
        "kernel_version": img.kernel_version,
        "kubelet_version": img.kubelet_version,
        "container_runtime_version": img.container_runtime_version,
    }


def node(
    fleet_: Fleet,
    name: str,
    *,
    pool_: NodePool | None = None,
    pool_name: str = "",
    image: str = "",
    zone: str = "a",
    created: float = T0 - 86400,
    ready: bool = True,
    ready_since: float | None = None,
    unschedulable: bool = False,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Iterable[NodeTaint] | None = None,
    machine: str = "",
    **overrides: Any,
) -> Node:
    """A node that satisfies ``pool_`` (labels, taints, image) unless told otherwise."""
    image_name = image or (pool_.image if pool_ else "img-2")
    booted = fleet_.images.get(image_name)
    # what the image's labellers publish (GPU driver, extensions...), as on a real node
    all_labels: dict[str, str] = dict(booted.facts.labels) if booted else {}
    all_labels[ZONE_LABEL] = zone
    name_of_pool = pool_.name if pool_ is not None else pool_name
    if name_of_pool:
        all_labels[POOL_LABEL] = name_of_pool
    if pool_ is not None:
        all_labels.update(pool_.labels)
    all_labels.update(labels or {})
    declared_taints = (
        [NodeTaint(t.key, t.effect, t.value or "") for t in pool_.taints] if pool_ else []
    )
    fields: dict[str, Any] = facts(fleet_, image_name)
    fields.update(overrides)
    return Node(
        name=name,
        labels=all_labels,
        annotations={**(booted.facts.annotations if booted else {}), **(annotations or {})},
        taints=tuple(declared_taints if taints is None else taints),
        ready=ready,
        ready_since=created + 60 if ready_since is None else ready_since,
        unschedulable=unschedulable,
        created=created,
        machine=machine,
        **fields,
    )


def machine(
    name: str,
    pool_name: str,
    *,
    node_name: str = "",
    zone: str = "a",
    image: str = "",
    created: float = T0 - 86400,
    replaces: str = "",
    phase: str = "",
    failed: str = "",
    by_controller: bool = False,
    deleting: bool = False,
    namespace: str = "ns",
) -> Machine:
    annotations: dict[str, str] = {}
    if image:
        annotations[IMAGE_ANNOTATION] = image
    if replaces:
        annotations[REPLACES_ANNOTATION] = replaces
    if phase:
        annotations[PHASE_ANNOTATION] = phase
    if failed:
        annotations[FAILED_ANNOTATION] = failed
    if by_controller or replaces:
        annotations[PLAN_ID_ANNOTATION] = "p-0"
    return Machine(
        name=name,
        namespace=namespace,
        labels={POOL_LABEL: pool_name},
        annotations=annotations,
        node=node_name,
        zone=zone,
        created=created,
        deleting=deleting,
        phase="Running" if node_name else "Provisioning",
    )


NodeHook = Callable[[str, str, int, Node], Node | None]


def declared(
    fleet_: Fleet,
    *,
    image: Callable[[str, str], str] | str | None = None,
    count: Callable[[str, str], int] | None = None,
    hook: NodeHook | None = None,
    unreachable: Mapping[str, str] | None = None,
    created: float = T0 - 86400,
) -> Inventory:
    """Every pool observed with ``replicas`` nodes spread over its zones, each with a Machine.

    ``image`` picks the image nodes run (default: the declared one; a string for all pools);
    ``count`` overrides the node count per (cluster, pool); ``hook(cluster, pool, i, node)``
    may change a node or drop it (return None).
    """
    clusters = []
    for doc in fleet_.clusters:
        if unreachable and doc.name in unreachable:
            clusters.append(ClusterInventory.unreachable(doc.name, unreachable[doc.name]))
            continue
        nodes: list[Node] = []
        machines: list[Machine] = []
        for p in doc.spec.node_pools:
            n = count(doc.name, p.name) if count else p.replicas
            img = image(doc.name, p.name) if callable(image) else (image or p.image)
            for i in range(n):
                name = f"{doc.name}-{p.name}-{i:03d}"
                zone = p.zones[i % len(p.zones)]
                made: Node | None = node(
                    fleet_,
                    name,
                    pool_=p,
                    image=img,
                    zone=zone,
                    created=created + i,
                    machine=f"m-{name}",
                )
                if hook is not None and made is not None:
                    made = hook(doc.name, p.name, i, made)
                if made is None:
                    continue
                nodes.append(made)
                machines.append(
                    machine(
                        f"m-{name}",
                        p.name,
                        node_name=made.name,
                        zone=zone,
                        image=img,
                        created=made.created,
                    )
                )
        clusters.append(
            ClusterInventory.build(doc.name, nodes, machines, deployments=deployments(doc))
        )
    return Inventory(tuple(clusters))


def deployments(doc: ClusterDocument) -> tuple[MachineDeployment, ...]:
    """The MachineDeployments of the cluster's MachineDeployment-mode pools, as Cluster API
    left them after their last rollout (before gitops ever rolled them)."""
    out = []
    for p in doc.spec.node_pools:
        ref = p.machine_deployment
        if ref is None:
            continue
        out.append(
            MachineDeployment(
                name=ref.name or f"{doc.name}-{ref.topology}",
                namespace=doc.namespace,
                template=p.name,
                replicas=p.replicas,
                max_surge=str(p.update.max_surge),
                max_unavailable=str(p.update.max_unavailable),
                generation=1,
                observed_generation=1,
                status_replicas=p.replicas,
                up_to_date=p.replicas,
                available=p.replicas,
                topology_worker=ref.topology or "",
                min_ready_seconds=int(p.update.soak),  # rolled by gitops: the pool's soak
            )
        )
    return tuple(out)


def cordoned_by_us(n: Node, phase: str = "") -> dict[str, Any]:
    annotations = dict(n.annotations)
    annotations[CORDONED_BY_ANNOTATION] = "p-0"
    if phase:
        annotations[PHASE_ANNOTATION] = phase
    return {"annotations": annotations, "unschedulable": True}
