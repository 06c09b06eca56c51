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

``--windows`` measures instead the cost of maintenance windows: the same fleet planned without
and with windows at every level (a fleet window in Europe/Berlin, an hourly cron window on each
wave, a weekly window per cluster in one of three zones, a future freeze and a fleet rate), all
open at ``T0`` so that both plans lay out the same batches. Runs alternate, best of seven each.
Prints {nodes, plan_seconds, plan_seconds_windows, overhead_percent, actions, actions_windows,
calibration_loop_seconds}. Aim: overhead within 10%.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from gitops.fleet import Fleet, WaveMembers, load
from gitops.fleet.spec import Maintenance
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


def cluster_spec(name: str, ring: str, nodes_per_pool: int = NODES_PER_POOL) -> ClusterSpec:
    pools = tuple(
        PoolSpec(
            f"pool-{p}",
            nodes_per_pool,
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


def build_fleet(clusters: int, root: Path, nodes_per_pool: int = NODES_PER_POOL) -> Fleet:
    specs = [
        cluster_spec(
            f"c-{i:03d}",
            "canary" if i == 0 else "early" if i < max(2, clusters // 10) else "prod",
            nodes_per_pool,
        )
        for i in range(clusters)
    ]
    write_specs(root, specs, WAVES, name="bench", rollout={"maxDriftedFraction": 0.3})
    return load(root).with_revision("bench")


def build_inventory(fleet: Fleet, image: str = "os-1") -> Inventory:
    """Every declared node observed on ``image`` (the default, os-1: all outdated)."""
    old = fleet.images[image]
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
                        annotations={IMAGE_ANNOTATION: image},
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


ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")


def with_windows(fleet: Fleet) -> Fleet:
    """``fleet`` with windows, a freeze and a rate at every level, all open at T0 (a Sunday,
    15:06 UTC)."""
    fleet_level = Maintenance.model_validate(
        {
            "windows": [
                {
                    "name": "daytime",
                    "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                    "startTime": "06:00",
                    "endTime": "23:30",
                    "timeZone": "Europe/Berlin",
                }
            ],
            "freezes": [
                {
                    "name": "peak",
                    "reason": "peak season",
                    "owner": "sre",
                    "start": "2025-12-20T00:00:00+01:00",
                    "end": "2026-01-04T00:00:00+01:00",
                }
            ],
            "rate": {"maxReplacements": 1_000_000, "per": "1h"},
        }
    )
    wave_level = Maintenance.model_validate(
        {"windows": [{"name": "hourly", "schedule": "0 * * * *", "duration": "59m"}]}
    )
    spec = fleet.document.spec
    waves = tuple(w.model_copy(update={"maintenance": wave_level}) for w in spec.rollout.waves)
    rollout = spec.rollout.model_copy(update={"maintenance": fleet_level, "waves": waves})
    document = fleet.document.model_copy(
        update={"spec": spec.model_copy(update={"rollout": rollout})}
    )
    clusters = []
    for i, doc in enumerate(fleet.clusters):
        zone = ZONES[i % len(ZONES)]
        own = Maintenance.model_validate(
            {
                "windows": [
                    {"name": "own", "schedule": "0 0 * * *", "duration": "24h", "timeZone": zone}
                ]
            }
        )
        clusters.append(
            doc.model_copy(update={"spec": doc.spec.model_copy(update={"maintenance": own})})
        )
    members = tuple(
        WaveMembers(wave, m.clusters) for wave, m in zip(waves, fleet.waves, strict=True)
    )
    return dataclasses.replace(fleet, document=document, clusters=tuple(clusters), waves=members)


def measure_windows(clusters: int) -> dict[str, float | int]:
    """Plan seconds without and with windows, on the same fleet and inventory shape."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_fleet(clusters, Path(tmp))
    windowed = with_windows(plain)
    best = {"plain": float("inf"), "windows": float("inf")}
    actions = {"plain": 0, "windows": 0}
    nodes = 0
    for _ in range(7):  # alternating, best of seven: on a shared machine the noise is large
        for key, fleet in (("plain", plain), ("windows", windowed)):
            inventory = build_inventory(fleet)
            nodes = inventory.nodes
            gc.collect()
            start = time.perf_counter()
            plan = make(fleet, inventory, RolloutState(), T0)
            best[key] = min(best[key], time.perf_counter() - start)
            actions[key] = sum(1 for _ in plan.actions())
            del plan, inventory
    return {
        "nodes": nodes,
        "plan_seconds": round(best["plain"], 3),
        "plan_seconds_windows": round(best["windows"], 3),
        "overhead_percent": round(100 * (best["windows"] / best["plain"] - 1), 1),
        "actions": actions["plain"],
        "actions_windows": actions["windows"],
    }


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop: compare machines (about 0.008 on a 2023 laptop)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(range(1_000_000))
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--windows"]
    clusters = int(args[0]) if args else 100
    if "--windows" in sys.argv[1:]:
        result = measure_windows(clusters)
        result["calibration_loop_seconds"] = round(calibrate(), 4)
        print(json.dumps(result))
        return
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
