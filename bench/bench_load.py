"""Measure loading a large fleet repository: 1,000 clusters × 5 pools in 1,001 files.

Prints one JSON object: {files, clusters, pools, load_seconds, peak_rss_mb}. Aim: well under 2 s.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from gitops.fleet import load

CLUSTERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
POOLS = 5

FLEET = """\
apiVersion: fleet.gitops.io/v1alpha1
kind: Fleet
metadata: {name: bench}
spec:
  images:
    os-1:
      family: os
      osImage: OS (v1)
      kernelVersion: 6.6.1
      kubeletVersion: v1.31.2
      containerRuntimeVersion: containerd://2.0.0
      source: registry/os:v1
    os-2:
      family: os
      osImage: OS (v2)
      kernelVersion: 6.12.1
      kubeletVersion: v1.31.4
      containerRuntimeVersion: containerd://2.0.2
      source: registry/os:v2
  rollout:
    waves:
      - {name: canary, clusters: {matchLabels: {ring: canary}}, soak: 10m}
      - {name: prod, clusters: {matchLabels: {ring: prod}}, maxClustersInParallel: 10}
    maxFailedNodes: 5
"""


def cluster(index: int) -> str:
    ring = "canary" if index < 10 else "prod"
    pools = "".join(
        f"""\
    - name: pool-{p}
      image: os-2
      replicas: {10 + p * 10}
      zones: [zone-a, zone-b, zone-c]
      labels: {{pool.example.com/name: pool-{p}, tier: t{p}}}
      taints: [{{key: dedicated, value: pool-{p}, effect: NoSchedule}}]
      machineTemplate:
        infrastructureRef: {{apiVersion: infrastructure.cluster.x-k8s.io/v1alpha1, kind: SimMachineTemplate, name: pool-{p}}}
      update: {{maxSurge: 25%, maxUnavailable: 10%, drainTimeout: 15m, soak: 2m}}
"""
        for p in range(POOLS)
    )
    return f"""\
# cluster number {index}
apiVersion: fleet.gitops.io/v1alpha1
kind: Cluster
metadata:
  name: cluster-{index:04d}
  labels: {{ring: {ring}, region: r{index % 7}}}
spec:
  kubernetesVersion: v1.31.4
  nodePools:
{pools}"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "clusters").mkdir()
        (root / "fleet.yaml").write_text(FLEET)
        for i in range(CLUSTERS):
            (root / "clusters" / f"cluster-{i:04d}.yaml").write_text(cluster(i))
        start = time.perf_counter()
        fleet = load(root)
        elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "files": CLUSTERS + 1,
                "clusters": len(fleet.clusters),
                "pools": len(fleet.pools()),
                "load_seconds": round(elapsed, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
