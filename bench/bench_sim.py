"""Measure the fleet simulator: start-up, LIST and WATCH through HTTP, memory.

Prints one JSON object:

* ``start_seconds``: ``Simulator.start()`` for a synthetic fleet of 10 clusters × 500 nodes
  (seeding 5,000 Machines, SimMachines, Nodes and their workloads, then serving);
* ``list_1000_nodes_seconds``: median of ``CoreV1Api.list_node()`` with the official client on a
  1,000-node cluster (HTTP, JSON and the client's model deserialisation included), and
  ``list_1000_nodes_raw_seconds`` the same without building models;
* ``watch_events_per_second``: node changes delivered to the official client's watch;
* ``peak_rss_mb``: the process's peak resident memory.

Usage: ``.venv/bin/python bench/bench_sim.py [CLUSTERS NODES_PER_CLUSTER]``.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from gitops.sim import Simulator
from gitops.sim.api.resources import NODES
from gitops.sim.world.synthetic import write_fleet

CLUSTERS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
NODES_PER_CLUSTER = int(sys.argv[2]) if len(sys.argv) > 2 else 500
WATCH_EVENTS = 5000


def measure_start(root: Path) -> tuple[float, int]:
    fleet = write_fleet(root / "fleet", CLUSTERS, NODES_PER_CLUSTER)
    started = time.perf_counter()
    sim = Simulator(fleet, kubeconfig_out=root / "kubeconfig")
    sim.start()
    elapsed = time.perf_counter() - started
    nodes = sum(sim.store.count(c, NODES) for c in sim.store.clusters())
    sim.stop()
    return elapsed, nodes


def measure_list_and_watch(root: Path) -> dict[str, Any]:
    fleet = write_fleet(root / "big", 1, 1000)
    with Simulator(fleet, kubeconfig_out=root / "big.kubeconfig") as sim:
        cluster = "cluster-000"
        api = client.CoreV1Api(config.new_client_from_config(sim.workload_kubeconfig(cluster)))
        assert len(api.list_node().items) == 1000
        models, raw = [], []
        for _ in range(5):
            t = time.perf_counter()
            api.list_node()
            models.append(time.perf_counter() - t)
            t = time.perf_counter()
            api.list_node(_preload_content=False).read()
            raw.append(time.perf_counter() - t)

        rv = api.list_node(limit=1).metadata.resource_version
        names = [n["metadata"]["name"] for n in sim.store.list(cluster, NODES)[0]]
        received = 0
        first: float | None = None
        last = 0.0
        done = threading.Event()

        def consume() -> None:
            nonlocal received, first, last
            w = watch.Watch()
            for _ in w.stream(api.list_node, resource_version=rv, timeout_seconds=120):
                received += 1
                now = time.perf_counter()
                first = first or now
                last = now
                if received >= WATCH_EVENTS:
                    w.stop()
                    break
            done.set()

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        time.sleep(0.2)
        for i in range(WATCH_EVENTS):
            name = names[i % len(names)]

            def touch(obj: dict[str, Any], i: int = i) -> dict[str, Any]:
                obj["metadata"].setdefault("labels", {})["bench.example.com/tick"] = str(i)
                return obj

            sim.store.mutate(cluster, NODES, None, name, touch)
        done.wait(120)
        rate = (received - 1) / (last - first) if first and last > first else 0.0
        return {
            "list_1000_nodes_seconds": round(statistics.median(models), 4),
            "list_1000_nodes_raw_seconds": round(statistics.median(raw), 4),
            "watch_events_per_second": round(rate),
            "watch_events_received": received,
        }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        root = Path(tmp)
        start, nodes = measure_start(root)
        out: dict[str, Any] = {
            "clusters": CLUSTERS,
            "nodes": nodes,
            "start_seconds": round(start, 3),
        }
        out.update(measure_list_and_watch(root))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
