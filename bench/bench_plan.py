"""Measure planning a fully outdated fleet: 100 clusters × 5 pools × 100 nodes, and a tenth of it.

Every node runs the previous image of its family, so the plan replaces all of them: drift.find
sees 50,000 Outdated nodes and plan.make lays out every batch of every pool. The fleet is
written as YAML to a temporary directory and loaded with the real loader; the inventory is
built with ``ClusterInventory.build`` as the kube adapter builds it. Only ``plan.make`` (which
includes ``drift.find`` and the inventory digest) is timed, best of three runs.

Prints one JSON object: {nodes, plan_seconds, nodes_5k, plan_seconds_5k, ratio_50k_to_5k,
plan_seconds_gc_frozen, ratio_50k_to_5k_gc_frozen, actions, inventory_build_seconds,
calibration_loop_seconds, peak_rss_mb}. Aim: about a second at 50,000 nodes, and a ratio near
10 (linear). ``calibration_loop_seconds`` says how fast this machine runs plain Python, so that
numbers from different machines can be compared.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from gitops.fleet import Fleet, load
from gitops.fleet.wellknown import IMAGE_ANNOTATION, POOL_LABEL, ZONE_LABEL
from gitops.inventory import ClusterInventory, Inventory, Machine, Node, NodeTaint
from gitops.plan import RolloutState, make
from gitops.sim.world.synthetic import ClusterSpec, PoolSpec, WaveSpec, write_specs

POOLS = 5
NODES_PER_POOL = 100
T0 = 1_750_000_000.0

WAVES = (
    WaveSpec("canary", "10m"),
    WaveSpec("early", "30m"),
    WaveSpec("prod", parallel=10),
)


def cluster_spec(name: str, ring: str) -> ClusterSpec:
    pools = tuple(
        PoolSpec(
            f"pool-{p}",
            NODES_PER_POOL,
            labels={"example.com/pool": f"pool-{p}"},
            taints=(
                {"key": "example.com/dedicated", "value": f"pool-{p}", "effect": "NoSchedule"},
            ),
            update={"maxSurge": "10%", "maxUnavailable": 0, "soak": "2m"},
            template=False,
        )
        for p in range(POOLS)
    )
    return ClusterSpec(name, ring, pools)


def build_fleet(clusters: int, root: Path) -> Fleet:
    specs = [
        cluster_spec(
            f"c-{i:03d}", "canary" if i == 0 else "early" if i < max(2, clusters // 10) else "prod"
        )
        for i in range(clusters)
    ]
    write_specs(root, specs, WAVES, name="bench", rollout={"maxDriftedFraction": 0.3})
    return load(root).with_revision("bench")


def build_inventory(fleet: Fleet) -> Inventory:
    old = fleet.images["os-1"]
    out = []
    for doc in fleet.clusters:
        nodes, machines = [], []
        for pool in doc.spec.node_pools:
            taints = tuple(NodeTaint(t.key, t.effect, t.value or "") for t in pool.taints)
            for i in range(pool.replicas):
                name = f"{doc.name}-{pool.name}-{i:03d}"
                zone = pool.zones[i % len(pool.zones)]
                nodes.append(
                    Node(
                        name=name,
                        os_image=old.os_image,
                        kernel_version=old.kernel_version,
                        kubelet_version=old.kubelet_version,
                        container_runtime_version=old.container_runtime_version,
                        labels={POOL_LABEL: pool.name, ZONE_LABEL: zone, **pool.labels},
                        taints=taints,
                        ready=True,
                        ready_since=T0 - 86400 + i,
                        created=T0 - 86400 + i,
                        machine=f"m-{name}",
                    )
                )
                machines.append(
                    Machine(
                        name=f"m-{name}",
                        namespace=doc.name,
                        labels={POOL_LABEL: pool.name},
                        annotations={IMAGE_ANNOTATION: "os-1"},
                        node=name,
                        zone=zone,
                        created=T0 - 86400 + i,
                        phase="Running",
                    )
                )
        out.append(ClusterInventory.build(doc.name, nodes, machines))
    return Inventory(tuple(out))


def measure(clusters: int, *, frozen: bool = False) -> tuple[int, float, int, float]:
    """(nodes, best plan seconds, actions, inventory build seconds) over three runs.

    ``frozen``: move the inventory out of the cyclic GC's sight first (``gc.freeze()``), as a
    long-running controller can do with its watch caches; otherwise full collections rescan
    the whole inventory over and over and the cost grows faster than the fleet.
    """
    with tempfile.TemporaryDirectory() as tmp:
        fleet = build_fleet(clusters, Path(tmp))
    best = build = float("inf")
    actions = nodes = 0
    for _ in range(3):
        # A fresh inventory each run: its digest and pool index are cached on the object.
        start = time.perf_counter()
        inventory = build_inventory(fleet)
        build = min(build, time.perf_counter() - start)
        nodes = inventory.nodes
        gc.collect()
        if frozen:
            gc.freeze()
        start = time.perf_counter()
        plan = make(fleet, inventory, RolloutState(), T0)
        best = min(best, time.perf_counter() - start)
        actions = sum(1 for _ in plan.actions())
        del plan, inventory
        gc.unfreeze()
    return nodes, best, actions, build


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop: compare machines (about 0.008 on a 2023 laptop)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(range(1_000_000))
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    clusters = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    nodes_small, seconds_small, _, _ = measure(max(1, clusters // 10))
    nodes, seconds, actions, build = measure(clusters)
    _, frozen_small, _, _ = measure(max(1, clusters // 10), frozen=True)
    _, frozen, _, _ = measure(clusters, frozen=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps(
            {
                "nodes": nodes,
                "plan_seconds": round(seconds, 3),
                "nodes_5k": nodes_small,
                "plan_seconds_5k": round(seconds_small, 3),
                "ratio_50k_to_5k": round(seconds / seconds_small, 2),
                "plan_seconds_gc_frozen": round(frozen, 3),
                "ratio_50k_to_5k_gc_frozen": round(frozen / frozen_small, 2),
                "actions": actions,
                "inventory_build_seconds": round(build, 3),
                "calibration_loop_seconds": round(calibrate(), 4),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
