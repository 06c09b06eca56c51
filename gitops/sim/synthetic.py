"""Synthetic fleets of any size, for benchmarks and scale tests of the simulator.

Tool layer (``gitops.sim``), world side. ``write_fleet(path, clusters, nodes_per_cluster)``
writes a valid fleet repository (a ``fleet.yaml`` and one file per cluster) shaped like the
example fleet: a tainted system pool, a general pool holding most nodes and, when there is room,
a tainted GPU pool, each cluster in a canary, staging or prod wave.

It must never read or write anything but the directory it is given.
"""

from __future__ import annotations

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


def _pool(name: str, replicas: int, zones: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "talos-1.9.2",
        "replicas": replicas,
        "zones": zones,
        "machineTemplate": {
            "infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
                "kind": "SimMachineTemplate",
                "name": name,
            }
        },
        **extra,
    }


def write_fleet(path: str | Path, clusters: int = 10, nodes_per_cluster: int = 500) -> Path:
    """Write a fleet of ``clusters`` clusters of ``nodes_per_cluster`` nodes each; its root."""
    if clusters < 1 or nodes_per_cluster < 1:
        raise ValueError("a synthetic fleet needs at least one cluster of at least one node")
    root = Path(path)
    (root / "clusters").mkdir(parents=True, exist_ok=True)
    fleet = {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Fleet",
        "metadata": {"name": "synthetic"},
        "spec": {
            "images": IMAGES,
            "rollout": {
                "waves": [
                    {"name": ring, "clusters": {"matchLabels": {"ring": ring}}}
                    for ring in ("canary", "staging", "prod")[: min(clusters, 3)]
                ]
            },
        },
    }
    (root / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    zones = ["zone-a", "zone-b", "zone-c"]
    for i in range(clusters):
        ring = "canary" if i == 0 else "staging" if i == 1 else "prod"
        system = min(3, nodes_per_cluster)
        rest = nodes_per_cluster - system
        gpu = rest // 10 if rest >= 20 else 0
        pools = [
            _pool(
                "system",
                system,
                zones,
                labels={"node-role.example.com/system": "true"},
                taints=[{"key": "node-role.example.com/system", "effect": "NoSchedule"}],
            )
        ]
        if rest - gpu > 0:
            pools.append(
                _pool(
                    "general", rest - gpu, zones, labels={"node-role.example.com/general": "true"}
                )
            )
        if gpu:
            pools.append(
                _pool(
                    "gpu",
                    gpu,
                    zones[:2],
                    labels={"nvidia.com/gpu.present": "true"},
                    taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
                )
            )
        doc = {
            "apiVersion": "fleet.gitops.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": f"cluster-{i:03d}", "labels": {"ring": ring}},
            "spec": {"kubernetesVersion": "v1.31.4", "nodePools": pools},
        }
        (root / "clusters" / f"cluster-{i:03d}.yaml").write_text(
            yaml.safe_dump(doc, sort_keys=False)
        )
    return root
