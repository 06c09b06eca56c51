"""Synthetic fleets of any size, for benchmarks and scale tests of the simulator.

Tool layer (``gitops.sim.world``). The one writer of synthetic fleet repositories: the
benches and the test fleets describe clusters, pools and waves as ``ClusterSpec``,
``PoolSpec`` and ``WaveSpec`` and ``write_specs`` writes the ``fleet.yaml`` and one file per
cluster. ``write_fleet(path, clusters, nodes_per_cluster)`` is the ready-made large fleet
shaped like the example fleet: a tainted system pool, a general pool holding most nodes and,
when there is room, a tainted GPU pool, each cluster in a canary, staging or prod wave.

It must never read or write anything but the directory it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

IMAGES: dict[str, dict[str, str]] = {
    "talos-1.8.4": {
        "family": "talos",
        "osImage": "Talos (v1.8.4)",
        "kernelVersion": "6.6.64-talos",
        "kubeletVersion": "v1.31.2",
        "containerRuntimeVersion": "containerd://2.0.0",
        "source": "ghcr.io/siderolabs/installer:v1.8.4",
    },
    "talos-1.9.2": {
        "family": "talos",
        "osImage": "Talos (v1.9.2)",
        "kernelVersion": "6.12.9-talos",
        "kubeletVersion": "v1.31.4",
        "containerRuntimeVersion": "containerd://2.0.2",
        "source": "ghcr.io/siderolabs/installer:v1.9.2",
    },
}


#: The two-image catalogue of the benches and rollout tests: pools run ``os-2``; a node
#: still on ``os-1`` is outdated.
OS_IMAGES: dict[str, dict[str, str]] = {
    "os-1": {
        "family": "os",
        "osImage": "OS (v1)",
        "kernelVersion": "6.6.1",
        "kubeletVersion": "v1.31.2",
        "containerRuntimeVersion": "containerd://2.0.0",
        "source": "registry/os:v1",
    },
    "os-2": {
        "family": "os",
        "osImage": "OS (v2)",
        "kernelVersion": "6.12.1",
        "kubeletVersion": "v1.31.4",
        "containerRuntimeVersion": "containerd://2.0.2",
        "source": "registry/os:v2",
    },
}
KUBERNETES_VERSION = "v1.31.4"


@dataclass(frozen=True)
class PoolSpec:
    """One node pool; ``update`` is the pool's update policy as written (None: none written)."""

    name: str
    replicas: int
    image: str = "os-2"
    zones: tuple[str, ...] = ("z-a", "z-b", "z-c")
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    update: Mapping[str, Any] | None = None
    #: a ``SimMachineTemplate`` named after the pool (False: no machine template written)
    template: bool = True
    #: the pool's ``machineDeployment`` (``{"name": ...}`` or ``{"topology": ...}``), if any
    machine_deployment: Mapping[str, str] | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "replicas": self.replicas,
            "zones": list(self.zones),
        }
        if self.template:
            doc["machineTemplate"] = {
                "infrastructureRef": {
                    "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
                    "kind": "SimMachineTemplate",
                    "name": self.name,
                }
            }
        if self.labels:
            doc["labels"] = dict(self.labels)
        if self.taints:
            doc["taints"] = [dict(t) for t in self.taints]
        if self.update is not None:
            doc["update"] = dict(self.update)
        if self.machine_deployment is not None:
            doc["machineDeployment"] = dict(self.machine_deployment)
        return doc


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster, in the wave named by its ``ring`` label (``labels`` adds others)."""

    name: str
    ring: str
    pools: tuple[PoolSpec, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    paused: bool | None = None  # None: not written

    def document(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"kubernetesVersion": KUBERNETES_VERSION}
        if self.paused is not None:
            spec["paused"] = self.paused
        spec["nodePools"] = [p.document() for p in self.pools]
        return {
            "apiVersion": "fleet.gitops.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": self.name, "labels": {"ring": self.ring, **self.labels}},
            "spec": spec,
        }


@dataclass(frozen=True)
class WaveSpec:
    """A wave selecting the clusters whose ``ring`` label is its name."""

    name: str
    soak: str | None = None
    parallel: int | None = None  # maxClustersInParallel

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "clusters": {"matchLabels": {"ring": self.name}}}
        if self.soak is not None:
            doc["soak"] = self.soak
        if self.parallel is not None:
            doc["maxClustersInParallel"] = self.parallel
        return doc


def write_specs(
    path: str | Path,
    clusters: Sequence[ClusterSpec],
    waves: Sequence[WaveSpec],
    *,
    name: str = "synthetic",
    images: Mapping[str, Mapping[str, str]] = OS_IMAGES,
    rollout: Mapping[str, Any] | None = None,
    cluster_dir: str = "clusters",
) -> Path:
    """Write a fleet repository: ``fleet.yaml`` and ``{cluster_dir}/{cluster}.yaml``; its root.

    ``rollout`` adds fleet-wide rollout settings (``maxFailedNodes``...) after the waves;
    ``cluster_dir=""`` puts the cluster files beside ``fleet.yaml``.
    """
    root = Path(path)
    folder = root / cluster_dir if cluster_dir else root
    folder.mkdir(parents=True, exist_ok=True)
    fleet = {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Fleet",
        "metadata": {"name": name},
        "spec": {
            "images": {k: dict(v) for k, v in images.items()},
            "rollout": {"waves": [w.document() for w in waves], **(rollout or {})},
        },
    }
    (root / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    for cluster in clusters:
        (folder / f"{cluster.name}.yaml").write_text(
            yaml.safe_dump(cluster.document(), sort_keys=False)
        )
    return root


def write_fleet(path: str | Path, clusters: int = 10, nodes_per_cluster: int = 500) -> Path:
    """Write a fleet of ``clusters`` clusters of ``nodes_per_cluster`` nodes each; its root."""
    if clusters < 1 or nodes_per_cluster < 1:
        raise ValueError("a synthetic fleet needs at least one cluster of at least one node")
    zones = ("zone-a", "zone-b", "zone-c")
    specs = []
    for i in range(clusters):
        ring = "canary" if i == 0 else "staging" if i == 1 else "prod"
        system = min(3, nodes_per_cluster)
        rest = nodes_per_cluster - system
        gpu = rest // 10 if rest >= 20 else 0
        pools = [
            PoolSpec(
                "system",
                system,
                image="talos-1.9.2",
                zones=zones,
                labels={"node-role.example.com/system": "true"},
                taints=({"key": "node-role.example.com/system", "effect": "NoSchedule"},),
            )
        ]
        if rest - gpu > 0:
            pools.append(
                PoolSpec(
                    "general",
                    rest - gpu,
                    image="talos-1.9.2",
                    zones=zones,
                    labels={"node-role.example.com/general": "true"},
                )
            )
        if gpu:
            pools.append(
                PoolSpec(
                    "gpu",
                    gpu,
                    image="talos-1.9.2",
                    zones=zones[:2],
                    labels={"nvidia.com/gpu.present": "true"},
                    taints=({"key": "nvidia.com/gpu", "effect": "NoSchedule"},),
                )
            )
        specs.append(ClusterSpec(f"cluster-{i:03d}", ring, tuple(pools)))
    rings = ("canary", "staging", "prod")[: min(clusters, 3)]
    return write_specs(path, specs, [WaveSpec(r) for r in rings], images=IMAGES)
