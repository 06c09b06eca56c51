"""Check a rollout's invariants from the simulator's audit log, from outside the controller.

Replays the log's state changes over a snapshot of the fleet taken before the rollout and
reports every instant at which, in some pool:

* machines > replicas + maxSurge (counting machines being deleted, until they are gone);
* the controller made a node unavailable (cordoned or removed it) while available nodes were
  at or below replicas - maxUnavailable;
* a node was cordoned for replacement before its replacement's node was Ready (pools with
  maxSurge > 0, where replacement is make-before-break);
* two live replacement machines replaced the same node at once;
* a pod was deleted outright (bypassing its PodDisruptionBudget) by anyone but the simulator.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.fleet import Fleet
from gitops.fleet.wellknown import POOL_LABEL
from gitops.sim import Simulator


@dataclass
class _Pool:
    replicas: int
    surge: int
    unavailable: int
    machines: set[str] = field(default_factory=set)
    ready: set[str] = field(default_factory=set)  # nodes Ready
    cordoned: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)

    @property
    def available(self) -> int:
        return len((self.ready & self.nodes) - self.cordoned)


@dataclass
class Snapshot:
    """Machines and nodes per (cluster, pool) before the rollout, read from the simulator."""

    pools: dict[tuple[str, str], _Pool]
    node_pool: dict[tuple[str, str], str]
    machine_pool: dict[tuple[str, str], str]


def snapshot(sim: Simulator, fleet: Fleet) -> Snapshot:
    from gitops.sim.api.resources import RESOURCES  # the simulator's own registry

    pools: dict[tuple[str, str], _Pool] = {}
    for cluster, pool in fleet.pools():
        pools[(cluster.name, pool.name)] = _Pool(pool.replicas, pool.surge, pool.unavailable)
    node_pool: dict[tuple[str, str], str] = {}
    machine_pool: dict[tuple[str, str], str] = {}
    machines, _ = sim.store.list("", RESOURCES["machines.cluster.x-k8s.io"])
    for m in machines:
        cluster = m["spec"]["clusterName"]
        pool = (m["metadata"].get("labels") or {}).get(POOL_LABEL, "")
        if (cluster, pool) in pools:
            pools[(cluster, pool)].machines.add(m["metadata"]["name"])
            machine_pool[(cluster, m["metadata"]["name"])] = pool
    for cluster, _ in fleet.pools():
        nodes, _ = sim.store.list(cluster.name, RESOURCES["nodes"])
        for n in nodes:
            pool = (n["metadata"].get("labels") or {}).get(POOL_LABEL, "")
            if (cluster.name, pool) not in pools:
                continue
            state = pools[(cluster.name, pool)]
            name = n["metadata"]["name"]
            node_pool[(cluster.name, name)] = pool
            state.nodes.add(name)
            conditions = (n.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                state.ready.add(name)
            if (n.get("spec") or {}).get("unschedulable"):
                state.cordoned.add(name)
    return Snapshot(pools, node_pool, machine_pool)


def check(audit: Path, snap: Snapshot, fleet: Fleet) -> list[str]:
    """Every violation found, as sentences naming the time, pool and objects."""
    pools = {
        k: _Pool(
            p.replicas,
            p.surge,
            p.unavailable,
            set(p.machines),
            set(p.ready),
            set(p.cordoned),
            set(p.nodes),
        )
        for k, p in snap.pools.items()
    }
    node_pool = dict(snap.node_pool)
    machine_pool = dict(snap.machine_pool)
    replaces: dict[tuple[str, str], str] = {}  # (cluster, machine) -> node it replaces
    live_replacements: dict[tuple[str, str], set[str]] = defaultdict(set)
    violations: list[str] = []
    lines = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    for e in lines:
        if e["kind"] == "request":
            if (
                e["verb"] == "delete"
                and e["resource"] == "pods"
                and not e["userAgent"].startswith("gitops-sim")
            ):
                violations.append(
                    f"{e['time']:.3f} pod {e['namespace']}/{e['name']} deleted outright "
                    f"by {e['userAgent']} (PodDisruptionBudgets bypassed)"
                )
            continue
        cluster, event = e["cluster"], e["event"]
        if event == "machine-created":
            pool = e.get("pool", "")
            key = (cluster, pool)
            if key not in pools:
                continue
            p = pools[key]
            machine_pool[(cluster, e["machine"])] = pool
            p.machines.add(e["machine"])
            if len(p.machines) > p.replicas + p.surge:
                violations.append(
                    f"{e['time']:.3f} {cluster}/{pool}: {len(p.machines)} machines, more "
                    f"than replicas {p.replicas} + maxSurge {p.surge}"
                )
            target = e.get("replaces", "")
            if target:
                replaces[(cluster, e["machine"])] = target
                live = live_replacements[(cluster, target)]
                live.add(e["machine"])
                if len(live) > 1:
                    violations.append(
                        f"{e['time']:.3f} {cluster}: node {target} has two live "
                        f"replacements {sorted(live)}"
                    )
        elif event == "machine-deleted":
            pool = machine_pool.get((cluster, e["machine"]))
            if pool is not None:
                pools[(cluster, pool)].machines.discard(e["machine"])
            target = replaces.get((cluster, e["machine"]))
            if target:
                live_replacements[(cluster, target)].discard(e["machine"])
        elif event == "node-registered":
            pool = e.get("pool", "")
            if (cluster, pool) in pools:
                node_pool[(cluster, e["node"])] = pool
                pools[(cluster, pool)].nodes.add(e["node"])
        elif event == "node-ready":
            pool = node_pool.get((cluster, e["node"]))
            if pool is not None:
                pools[(cluster, pool)].ready.add(e["node"])
        elif event in ("node-cordoned", "node-removed"):
            pool = node_pool.get((cluster, e["node"]))
            if pool is None:
                continue
            p = pools[(cluster, pool)]
            was_available = (
                e["node"] in p.ready and e["node"] not in p.cordoned and e["node"] in p.nodes
            )
            floor = p.replicas - p.unavailable
            if was_available and p.available - 1 < floor:
                violations.append(
                    f"{e['time']:.3f} {cluster}/{pool}: {event} {e['node']} left "
                    f"{p.available - 1} available, fewer than {floor}"
                )
            if event == "node-cordoned" and p.surge > 0:
                mine = [m for (c, m), t in replaces.items() if c == cluster and t == e["node"]]
                if mine and not any(m in p.ready for m in mine):
                    violations.append(
                        f"{e['time']:.3f} {cluster}/{pool}: {e['node']} cordoned before "
                        f"its replacement {mine} was Ready"
                    )
            if event == "node-cordoned":
                p.cordoned.add(e["node"])
            else:
                p.nodes.discard(e["node"])
                p.ready.discard(e["node"])
        elif event == "node-uncordoned":
            pool = node_pool.get((cluster, e["node"]))
            if pool is not None:
                pools[(cluster, pool)].cordoned.discard(e["node"])
    return violations


def load_events(audit: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
