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
from gitops.sim.world.synthetic import ClusterSpec, PoolSpec, WaveSpec, write_specs

CLUSTERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
POOLS = 5

WAVES = (WaveSpec("canary", "10m"), WaveSpec("prod", parallel=10))


def cluster(index: int) -> ClusterSpec:
    pools = tuple(
        PoolSpec(
            f"pool-{p}",
            10 + p * 10,
            zones=("zone-a", "zone-b", "zone-c"),
            labels={"pool.example.com/name": f"pool-{p}", "tier": f"t{p}"},
            taints=({"key": "dedicated", "value": f"pool-{p}", "effect": "NoSchedule"},),
            update={
                "maxSurge": "25%",
                "maxUnavailable": "10%",
                "drainTimeout": "15m",
                "soak": "2m",
            },
        )
        for p in range(POOLS)
    )
    ring = "canary" if index < 10 else "prod"
    return ClusterSpec(f"cluster-{index:04d}", ring, pools, labels={"region": f"r{index % 7}"})


def write(root: Path, clusters: int) -> Path:
    """The fleet repository this bench loads: ``clusters`` cluster files and ``fleet.yaml``."""
    specs = [cluster(i) for i in range(clusters)]
    return write_specs(root, specs, WAVES, name="bench", rollout={"maxFailedNodes": 5})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write(Path(tmp), CLUSTERS)
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
