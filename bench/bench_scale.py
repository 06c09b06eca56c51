"""Measure a sharded controller at scale: replicas on Leases, their memory, hand-offs and fencing.

Set-up: a synthetic fleet of ``--clusters`` clusters of unequal sizes (a tainted system pool of
3 and a general pool; ``--nodes-per-cluster`` is the mean, sizes spread from 0.4x to 1.6x so
that placement by node count has something to balance), committed to a bare repository served
over ``file://``; the simulator (``gitops.sim.Simulator``) in a child process of its own, every
node on its declared image, node heartbeats off (they only cost the simulator CPU here: the
Nodes cache keeps heartbeat-only changes quiet), writing its audit log; ``--replicas`` real
``gitops run --sharding --replica-id rN`` child processes with ``--time-scale`` (default 0.05:
member Leases of 7.5 s renewed every 1 s, ``lease_seconds`` in the output; at scale 1 they are
client-go's 15 s and 2 s). A thread of this bench lists the gitops Leases through the API every
0.2 s for the whole run.

Method, in order:

1. ``plan_seconds_fleet``: in-process, before anything else runs, ``gitops.plan.make`` on
   ``bench_plan``'s fully outdated fleet at 500 clusters x 200 nodes (100,000 nodes), best of
   two (200,000 actions); ``plan_objects_seconds``: building that plan's 100,000 findings and
   200,000 actions again from their final field values, the floor under any plan that holds
   them; ``plan_seconds_fleet_converged``: the same fleet at rest, every
   node on its declared image (no finding, no action); ``plan_seconds_shard``: one replica of three planning the clusters ``place`` gives it
   in full and the others from ``ClusterSummary``s (``gitops.plan.shard.Shard``);
   ``plan_seconds_fleet_next_pass``: the whole fleet planned again 30 s later with one
   cluster's inventory new and the others the same objects, as the observer hands them back
   when their caches did not move (the per-cluster analyses kept on them are reused).
2. ``initial_sync_seconds``: from starting the replicas until every cluster's owner Lease names
   a live replica, every replica's ``/metrics`` says its plan phase is ok and the coordinator
   committed the status branch.
3. ``bytes_per_cached_node``: in this process, tracemalloc around ``gitops.kube.cache.WatchCache``
   Nodes caches (``translate.node`` records, as the observer builds them) of the clusters
   replica r1 owns, listed from the live simulator, divided by their node count (includes the
   clients and watch buffers: an upper bound).
4. Idle ``--idle`` seconds (at least 30): ``idle_list_requests_per_minute`` counts LIST requests
   with a ``gitops/`` user agent in the audit log of that window; then
   ``rss_mb_per_replica_max`` (VmHWM from ``/proc``) and ``balance_max_over_mean`` (node count
   per replica from the owner Leases, ``gitops.placement.balance``).
5. Scale 3 -> 4 -> 3: start r4, wait until the owner Leases settle, SIGTERM r4, wait again.
   ``clusters_moved_on_scale_change`` counts owner Leases that changed holder over both steps;
   ``fair_share`` is clusters / 4 (the least a fourth replica can be given), and
   ``matches_place`` says whether each settled assignment is ``place``'s.
   ``graceful_handoff_seconds``: SIGTERM of r4 until none of its clusters' owner Leases names it.
6. ``failover_seconds_p99``: SIGKILL the replica owning most clusters; per cluster it owned, the
   time until the audit log shows the first accepted write concerning that cluster (its owner
   Lease, its ``gitops-cluster-`` ConfigMap, anything in the workload cluster) by another
   replica; p99 (and max) over those clusters. The replica is restarted under the same id.
7. ``stale_owner_writes``: SIGSTOP a replica that is not the coordinator and owns clusters,
   past its Lease, until the others hold all its clusters; SIGCONT; after two Lease durations
   count the writes (create/update/patch/delete, code < 400) the audit log shows from its user
   agent after the SIGCONT, other than to its own member Lease and other than those concerning
   a cluster after it legitimately re-took that cluster's fence (an accepted write of the
   cluster's ConfigMap); ``writes_refused`` in its detail counts those the API refused.
8. ``max_unowned_seconds``: from the Lease polls after the initial sync, the longest stretch any
   cluster had no live owner (its owner Lease's holder has no unexpired member Lease).

Prints one JSON object. Usage: ``.venv/bin/python bench/bench_scale.py [--clusters 60]
[--nodes-per-cluster 100] [--replicas 3] [--idle 30] [--time-scale 0.05] [--keep DIR]``.
Takes about three minutes here.

Measured here (2 vCPUs shared with other engineers' test runs; two runs), 60 clusters of
40-160 nodes (6,000 live nodes), 3 replicas, --time-scale 0.05 (lease 7.5 s): initial sync
7.4-10.6 s (every cluster owned at 5.1-6.5 s); 1,702-1,706 bytes per cached Node; 0 LIST
requests a minute idle; peak RSS 123-128 MB per replica (about 2,000 nodes each); balance 1.04
(1,925-2,080 nodes per replica); 3 -> 4 -> 3 moved 15 + 15 clusters (fair share 15, every
assignment ``place``'s); graceful hand-off of 15 clusters 1.8-2.4 s; SIGKILL of an owner of 21
clusters (the coordinator in one run): first write by another replica 7.2-8.2 s after (p99
8.2 s, 1.09 lease durations: about 16 s with 15 s Leases); SIGSTOP of an owner of 21 clusters
for about 9 s, SIGCONT: 0 writes accepted, 0 refused, all 21 legitimately re-taken later;
longest stretch of a cluster without a live owner 1.5-2.0 s. Planning 100,000 nodes / 500
clusters in-process (every node outdated, 200,000 actions): 2.7-2.8 s whole (the aim of 1 s is
not met), 0.61-0.66 s as one replica of three (35,000 nodes in full, the rest from summaries).

``--clusters 100`` (10,000 live nodes, one run): initial sync 15.0 s; peak RSS 135-146 MB per
replica (3,045-3,894 nodes each, balance 1.17); 1,702 bytes per cached Node; 0 idle LISTs;
3 -> 4 -> 3 moved 25 + 25 (fair share 25); graceful hand-off 0.4 s; SIGKILL of an owner of 38
clusters: median 7.7 s, p99 13.5 s (1.8 lease durations: the last clusters were claimed
later); 0 stale writes; longest stretch without a live owner 6.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_controller import git, metrics, peak_rss_mb, serve, wait_for
from bench_plan import build_fleet, build_inventory
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gitops.controller.command import _lease_timing
from gitops.fleet import load
from gitops.gcpause import collector_paused
from gitops.inventory import Inventory
from gitops.kube.cache import WatchCache
from gitops.kube.client import connect, connect_workload
from gitops.kube.lease import parse_time
from gitops.kube.translate import node as node_record
from gitops.placement import balance, moved, place
from gitops.plan import Plan, RolloutState, make
from gitops.plan.shard import ClusterSummary, Shard
from gitops.sim.api.audit import read as read_audit
from gitops.sim.world.synthetic import IMAGES, ClusterSpec, PoolSpec, WaveSpec, write_specs

WRITES = ("create", "update", "patch", "delete")
NAMESPACE = "default"
T0 = 1_750_000_000.0
ZONES = ("zone-a", "zone-b", "zone-c")


# -- the fleet and the processes ------------------------------------------------------------


def write_varied_fleet(path: Path, clusters: int, mean: int) -> Path:
    """``clusters`` clusters whose node counts spread from 0.4x to 1.6x ``mean``."""
    specs = []
    for i in range(clusters):
        size = max(4, round(mean * (0.4 + 1.2 * ((i * 37) % clusters) / max(1, clusters - 1))))
        ring = "canary" if i == 0 else "staging" if i == 1 else "prod"
        pools = (
            PoolSpec(
                "system",
                3,
                image="talos-1.9.2",
                zones=ZONES,
                taints=({"key": "node-role.example.com/system", "effect": "NoSchedule"},),
            ),
            PoolSpec("general", size - 3, image="talos-1.9.2", zones=ZONES),
        )
        specs.append(ClusterSpec(f"cluster-{i:03d}", ring, pools))
    rings = ("canary", "staging", "prod")[: min(clusters, 3)]
    return write_specs(path, specs, [WaveSpec(r) for r in rings], images=IMAGES)


class Replica:
    """One ``gitops run --sharding`` child process."""

    def __init__(self, workdir: Path, identity: str, repo: str, time_scale: float) -> None:
        self.identity, self.repo, self.time_scale = identity, repo, time_scale
        self.log = workdir / f"{identity}-{time.time_ns()}.log"
        with self.log.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gitops.cli",
                    "run",
                    "--repo",
                    repo,
                    "--kubeconfig",
                    str(workdir / "kubeconfig"),
                    "--http-addr",
                    "127.0.0.1:0",
                    "--cache-dir",
                    str(workdir / f"cache-{identity}"),
                    "--lease-namespace",
                    NAMESPACE,
                    "--state-namespace",
                    NAMESPACE,
                    "--time-scale",
                    str(time_scale),
                    "--sharding",
                    "--replica-id",
                    identity,
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._address = ""

    @property
    def address(self) -> str:
        if not self._address:
            found = wait_for(
                lambda: re.search(r"; http (\S+);", self.log.read_text(errors="replace")),
                120,
                f"{self.identity} to start",
            )
            self._address = found.group(1)
        return self._address

    def plan_ok(self) -> bool:
        return metrics(self.address).get('gitops_phase_result{phase="plan",result="ok"}') == 1

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- watching the Leases ---------------------------------------------------------------------


class LeaseWatch:
    """Lists the gitops Leases every 0.2 s through the API; keeps (time, owners, live members)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = k8s.CoordinationV1Api(k8s_config.new_client_from_config(str(kubeconfig)))
        self.samples: list[tuple[float, dict[str, str], set[str]]] = []
        self.coordinator = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LeaseWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def read(self) -> tuple[float, dict[str, str], set[str], str]:
        # the raw answer (urllib3), parsed here: the client's models are slow and not needed
        response: Any = self.api.list_namespaced_lease(NAMESPACE, _preload_content=False)
        items = json.loads(response.data)["items"]
        now = time.time()
        owners: dict[str, str] = {}
        live: set[str] = set()
        coordinator = ""
        for lease in items:
            name, spec = lease["metadata"]["name"], lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
            if name.startswith("gitops-owner-"):
                owners[name.removeprefix("gitops-owner-")] = holder
            elif name.startswith("gitops-member-"):
                if holder and renewed + float(spec.get("leaseDurationSeconds") or 0) > now:
                    live.add(holder)
            elif name == "gitops-controller":
                coordinator = holder
        return now, owners, live, coordinator

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a poll lost to a busy machine is skipped
                now, owners, live, coordinator = self.read()
                self.samples.append((now, owners, live))
                self.coordinator = coordinator
            self._stop.wait(0.2)

    def owners(self) -> dict[str, str]:
        return self.samples[-1][1] if self.samples else {}

    def live(self) -> set[str]:
        return self.samples[-1][2] if self.samples else set()

    def owned_by(self, cluster: str, when: float) -> str:
        """The holder of ``cluster``'s owner Lease at ``when``: the first poll within 1 s after
        it that names one (a poll lags the write it sees by up to its 0.2 s period)."""
        for now, owners, _ in self.samples:
            if when <= now <= when + 1.0 and owners.get(cluster):
                return owners[cluster]
        return ""

    def max_unowned(self, since: float, clusters: list[str]) -> float:
        """The longest stretch after ``since`` that any cluster had no live owner."""
        longest = 0.0
        start: dict[str, float] = {}
        for now, owners, live in self.samples:
            if now < since:
                continue
            for cluster in clusters:
                if owners.get(cluster, "") in live:
                    if cluster in start:
                        longest = max(longest, now - start.pop(cluster))
                else:
                    start.setdefault(cluster, now)
        if self.samples:
            end = self.samples[-1][0]
            longest = max([longest, *(end - t for t in start.values())])
        return longest


def settled(
    watch: LeaseWatch, clusters: list[str], members: set[str], timeout: float
) -> dict[str, str]:
    """Wait until every cluster is owned by one of ``members`` and nothing moved for 3 s."""
    last: dict[str, str] = {}
    since = time.monotonic()

    def stable() -> dict[str, str] | None:
        nonlocal last, since
        owners = watch.owners()
        if owners != last:
            last, since = owners, time.monotonic()
            return None
        if all(owners.get(c) in members for c in clusters) and time.monotonic() - since > 3:
            return owners
        return None

    return dict(wait_for(stable, timeout, f"the owner Leases to settle on {sorted(members)}"))


# -- the audit log ---------------------------------------------------------------------------


def replica_of(event: dict[str, Any]) -> str:
    return str(event.get("userAgent", "")).partition(" replica/")[2]


def cluster_of(event: dict[str, Any], by_namespace: dict[str, str]) -> str:
    """The workload cluster a request concerns ("" when it concerns none)."""
    if event.get("cluster"):
        return str(event["cluster"])
    name = str(event.get("name") or "")
    for prefix in ("gitops-owner-", "gitops-cluster-"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    if event.get("resource") in ("machines", "machinesets", "machinedeployments"):
        return by_namespace.get(str(event.get("namespace") or ""), "")
    return ""


def accepted_writes(audit: Path, after: float) -> list[dict[str, Any]]:
    return [
        e
        for e in read_audit(audit)
        if e["kind"] == "request"
        and e["time"] >= after
        and e["verb"] in WRITES
        and e["code"] < 400
        and replica_of(e)
    ]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# -- the in-process parts --------------------------------------------------------------------


def objects_seconds(plan: Plan) -> float:
    """How long building the plan's findings and actions takes from their final field values
    alone (no decision, no hashing): a floor under any plan that holds them."""
    objects = [*plan.findings, *plan.actions()]
    fields = [
        (type(o), {f.name: getattr(o, f.name) for f in dataclasses.fields(o) if f.init})
        for o in objects
    ]
    gc.collect()
    with collector_paused():
        start = time.perf_counter()
        for cls, values in fields:
            cls(**values)
        return time.perf_counter() - start


def plan_at_fleet_scale(clusters: int) -> dict[str, Any]:
    """``plan.make`` at ``clusters`` x 200 nodes (500: 100,000 nodes), whole and as one
    replica of three."""
    with tempfile.TemporaryDirectory() as tmp:
        fleet = build_fleet(clusters, Path(tmp), nodes_per_pool=40)
    whole = shard = floor = float("inf")
    actions = 0
    for _ in range(2):
        # A fresh inventory each run: its digest and pool index are cached on the object.
        inventory = build_inventory(fleet)
        gc.collect()
        start = time.perf_counter()
        plan = make(fleet, inventory, RolloutState(), T0)
        whole = min(whole, time.perf_counter() - start)
        actions = sum(1 for _ in plan.actions())
        floor = min(floor, objects_seconds(plan))
        del plan
    # The same fleet at rest (every node on its declared image): no findings, no actions.
    target = fleet.clusters[0].spec.node_pools[0].image
    converged = float("inf")
    for _ in range(2):
        rest = build_inventory(fleet, target)
        gc.collect()
        start = time.perf_counter()
        at_rest = make(fleet, rest, RolloutState(), T0)
        converged = min(converged, time.perf_counter() - start)
        assert at_rest.status == "converged", at_rest.reason
        del rest, at_rest
    # The controller's next pass: the observer hands back the same ClusterInventory objects
    # for clusters whose caches did not move (their per-cluster analyses are kept on them),
    # and a new one for a cluster that changed; time has moved on.
    changed = build_inventory(fleet).clusters[0]
    passes = Inventory((changed, *inventory.clusters[1:]))
    gc.collect()
    start = time.perf_counter()
    make(fleet, passes, RolloutState(), T0 + 30)
    incremental = time.perf_counter() - start
    weights = {c.name: len(c.nodes) for c in inventory.clusters}
    mine = {c for c, m in place(weights, ["r1", "r2", "r3"]).items() if m == "r1"}
    remote = {
        name: ClusterSummary(
            cluster=name,
            revision=fleet.revision,
            owner="r2",
            has_work=True,
            nodes=weights[name],
            drifted=weights[name],
        )
        for name in weights
        if name not in mine
    }
    for _ in range(2):
        own = Inventory(tuple(c for c in build_inventory(fleet).clusters if c.name in mine))
        gc.collect()
        start = time.perf_counter()
        make(fleet, own, RolloutState(), T0, shard=Shard(remote=remote))
        shard = min(shard, time.perf_counter() - start)
    return {
        "plan_nodes": inventory.nodes,
        "plan_clusters": len(fleet.clusters),
        "plan_seconds_fleet": round(whole, 3),
        "plan_actions": actions,
        "plan_objects_seconds": round(floor, 3),
        "plan_seconds_fleet_converged": round(converged, 3),
        "plan_seconds_fleet_next_pass": round(incremental, 3),
        "plan_seconds_shard": round(shard, 3),
        "plan_shard_nodes": own.nodes,
    }


def bytes_per_cached_node(kubeconfig: Path, clusters: dict[str, str]) -> float:
    """Traced memory the Nodes caches of ``clusters`` (name -> namespace) keep, per node.

    The clients are made before tracing starts and the caches' watches are stopped before the
    memory is read, so what is left is the records kept (and the caches' own small state).
    """
    management = connect(str(kubeconfig))
    kubes = {name: connect_workload(management, name, ns) for name, ns in sorted(clusters.items())}
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    caches: list[WatchCache[Any]] = [
        WatchCache(f"Nodes of {name}", kube.core.list_node, project=node_record, quiet=True)
        for name, kube in kubes.items()
    ]
    for cache in caches:
        cache.start()
    for cache in caches:
        cache.wait_synced(120)
    for cache in caches:
        cache.stop()
        cache.join(10)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    nodes = sum(len(c.objects()) for c in caches)
    return round(traced / max(1, nodes), 1)


# -- the live run ----------------------------------------------------------------------------


@dataclass
class Bench:
    """What every phase of the live run reads: the fleet, the processes, the Lease watch, and
    the JSON being filled in."""

    workdir: Path
    args: argparse.Namespace
    clusters: list[str]
    weights: dict[str, int]  # cluster -> declared nodes
    namespaces: dict[str, str]  # cluster -> namespace
    lease: float
    out: dict[str, Any]
    watch: LeaseWatch
    replicas: dict[str, Replica] = field(default_factory=dict)

    @property
    def by_namespace(self) -> dict[str, str]:
        return {n: c for c, n in self.namespaces.items()}


def run(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = plan_at_fleet_scale(args.plan_clusters)
    srv, work = workdir / "srv", workdir / "work"
    srv.mkdir()
    write_varied_fleet(work, args.clusters, args.nodes_per_cluster)
    bare = srv / "fleet.git"
    git(workdir, "init", "-q", "--bare", "-b", "main", str(bare))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "Synthetic fleet")
    git(work, "push", "-q", str(bare), "main")
    fleet = load(work)
    clusters = sorted(c.name for c in fleet.clusters)
    weights = {c.name: sum(p.replicas for p in c.spec.node_pools) for c in fleet.clusters}
    lease, _ = _lease_timing(args.time_scale)
    out.update(
        nodes=sum(weights.values()),
        clusters=len(clusters),
        replicas=args.replicas,
        live_nodes=sum(weights.values()),
        live_clusters=len(clusters),
        nodes_per_cluster_min=min(weights.values()),
        nodes_per_cluster_max=max(weights.values()),
        time_scale=args.time_scale,
        lease_seconds=lease,
    )

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    # node heartbeats off (see the module docstring)
    server = context.Process(target=serve, args=(str(work), str(workdir), ready, stop, False))
    server.start()
    bench: Bench | None = None
    try:
        started = time.monotonic()
        if not ready.wait(600):
            raise SystemExit("the simulator did not start in 600 s")
        out["simulator_start_seconds"] = round(time.monotonic() - started, 1)
        bench = Bench(
            workdir,
            args,
            clusters,
            weights,
            {c.name: c.namespace for c in fleet.clusters},
            lease,
            out,
            LeaseWatch(workdir / "kubeconfig").start(),
        )
        live(bench, bare)
        scale(bench)
        failover(bench)
        stale(bench)
        out["max_unowned_seconds"] = round(
            bench.watch.max_unowned(out.pop("_synced_at"), clusters), 2
        )
        out["lease_polls"] = len(bench.watch.samples)
    finally:
        if bench is not None:
            bench.watch.stop()
            for replica in bench.replicas.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(replica.proc.pid, signal.SIGCONT)
                replica.stop()
        stop.set()
        server.join(60)
    return out


def live(b: Bench, bare: Path) -> None:
    """Start the replicas; initial sync, cache bytes per node, the idle window, RSS, balance."""
    repo = f"file://{bare}"
    started = time.monotonic()
    for i in range(1, b.args.replicas + 1):
        name = f"r{i}"
        b.replicas[name] = Replica(b.workdir, name, repo, b.args.time_scale)
    names = set(b.replicas)
    wait_for(
        lambda: all(b.watch.owners().get(c) in b.watch.live() & names for c in b.clusters),
        600,
        "every cluster owned",
    )
    owned_at = time.monotonic() - started
    wait_for(lambda: all(r.plan_ok() for r in b.replicas.values()), 600, "every plan phase ok")
    planned_at = time.monotonic() - started
    wait_for(
        lambda: "gitops/status" in git(bare, "for-each-ref", "--format=%(refname:short)"),
        600,
        "the coordinator's first status commit",
    )
    b.out["initial_sync_seconds"] = round(time.monotonic() - started, 2)
    b.out["initial_sync_detail"] = {
        "every_cluster_owned": round(owned_at, 2),
        "every_plan_ok": round(planned_at, 2),
    }
    b.out["_synced_at"] = time.time()
    owners = settled(b.watch, b.clusters, names, 120)
    mine = {c: n for c, n in b.namespaces.items() if owners.get(c) == "r1"}
    b.out["bytes_per_cached_node"] = bytes_per_cached_node(b.workdir / "kubeconfig", mine)

    idle = max(30.0, b.args.idle)
    idle_from = time.time()
    time.sleep(idle)  # the measurement itself: idle replicas, left alone
    idle_to = time.time()
    lists = [
        e
        for e in read_audit(b.workdir / "audit.jsonl")
        if e["kind"] == "request"
        and e["verb"] == "list"
        and str(e["userAgent"]).startswith("gitops/")
        and idle_from <= e["time"] < idle_to
    ]
    b.out["idle_seconds"] = idle
    b.out["idle_list_requests_per_minute"] = round(len(lists) * 60 / (idle_to - idle_from), 2)
    b.out["rss_mb_per_replica"] = {
        n: peak_rss_mb(r.proc.pid) for n, r in sorted(b.replicas.items())
    }
    b.out["rss_mb_per_replica_max"] = max(b.out["rss_mb_per_replica"].values())
    owners = b.watch.owners()
    b.out["balance_max_over_mean"] = round(balance(owners, b.weights, sorted(names)), 3)
    b.out["nodes_per_replica"] = {
        n: sum(b.weights[c] for c, o in owners.items() if o == n) for n in sorted(names)
    }
    b.out["placement_matches_place"] = owners == place(b.weights, sorted(names))


def scale(b: Bench) -> None:
    """3 -> 4 -> 3 replicas: what moved, and the graceful hand-off of the fourth."""
    names = sorted(b.replicas)
    extra = f"r{len(names) + 1}"
    before = settled(b.watch, b.clusters, set(names), 120)
    b.replicas[extra] = Replica(b.workdir, extra, b.replicas[names[0]].repo, b.args.time_scale)
    grown = settled(b.watch, b.clusters, {*names, extra}, 180)
    given = sorted(c for c, o in grown.items() if o == extra)
    terminated = time.monotonic()
    b.replicas[extra].proc.send_signal(signal.SIGTERM)
    wait_for(
        lambda: all(b.watch.owners().get(c) in set(names) for c in given),
        120,
        "the fourth replica's clusters held by the others",
    )
    b.out["graceful_handoff_seconds"] = round(time.monotonic() - terminated, 2)
    b.replicas[extra].proc.wait(60)
    del b.replicas[extra]
    after = settled(b.watch, b.clusters, set(names), 120)
    b.out["clusters_moved_on_scale_change"] = moved(before, grown) + moved(grown, after)
    b.out["scale_change_detail"] = {
        "moved_up": moved(before, grown),
        "moved_down": moved(grown, after),
        "fair_share": round(len(b.clusters) / (len(names) + 1), 2),
        "aim_at_most": round(2 * len(b.clusters) / (len(names) + 1), 2),
        "matches_place": [
            before == place(b.weights, names),
            grown == place(b.weights, [*names, extra]),
            after == place(b.weights, names),
        ],
        "handed_off_gracefully": len(given),
    }


def failover(b: Bench) -> None:
    """SIGKILL the replica owning most clusters: time to the first write on each by another."""
    owners = settled(b.watch, b.clusters, set(b.replicas), 120)
    victim = max(sorted(b.replicas), key=lambda n: sum(1 for o in owners.values() if o == n))
    lost = sorted(c for c, o in owners.items() if o == victim)
    killed = time.time()
    b.replicas[victim].proc.send_signal(signal.SIGKILL)
    b.replicas[victim].proc.wait(10)

    def first_writes() -> dict[str, float] | None:
        seen: dict[str, float] = {}
        for e in accepted_writes(b.workdir / "audit.jsonl", killed):
            cluster = cluster_of(e, b.by_namespace)
            if cluster in lost and replica_of(e) != victim and cluster not in seen:
                seen[cluster] = float(e["time"]) - killed
        return seen if len(seen) == len(lost) else None

    seconds = sorted(
        wait_for(first_writes, 300, "another replica's write on every lost cluster").values()
    )
    b.out["failover_seconds_p99"] = round(p99(seconds), 2)
    b.out["failover_p99_in_lease_durations"] = round(p99(seconds) / b.lease, 2)
    b.out["failover_detail"] = {
        "clusters": len(seconds),
        "min": round(seconds[0], 2),
        "median": round(seconds[len(seconds) // 2], 2),
        "max": round(seconds[-1], 2),
        "killed_was_coordinator": victim == b.watch.coordinator,
    }
    b.replicas[victim] = Replica(
        b.workdir, victim, b.replicas[victim].repo, b.args.time_scale
    )  # restarted
    settled(b.watch, b.clusters, set(b.replicas), 180)


def stale(b: Bench) -> None:
    """SIGSTOP an owner past its Lease, SIGCONT: what the API accepted from it afterwards."""
    owners = settled(b.watch, b.clusters, set(b.replicas), 120)
    candidates = [
        n for n in sorted(b.replicas) if n != b.watch.coordinator and n in owners.values()
    ]
    victim = candidates[0]
    held = sorted(c for c, o in owners.items() if o == victim)
    proc = b.replicas[victim].proc
    paused = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: all(b.watch.owners().get(c) not in ("", victim) for c in held),
            300,
            "the others to take the paused replica's clusters",
        )
        time.sleep(max(0.0, b.lease - (time.monotonic() - paused)))  # past its Lease, surely
    finally:
        woke = time.time()
        os.kill(proc.pid, signal.SIGCONT)
    time.sleep(2 * b.lease)  # let it wake, find itself fenced out, and rejoin
    retaken: set[str] = set()
    accepted: list[dict[str, Any]] = []
    refused = 0
    member = f"gitops-member-{victim}"
    for e in read_audit(b.workdir / "audit.jsonl"):
        if e["kind"] != "request" or e["time"] < woke or replica_of(e) != victim:
            continue
        if e["verb"] not in WRITES or e.get("name") == member:
            continue
        if e["code"] >= 400:
            refused += 1
            continue
        cluster = cluster_of(e, b.by_namespace)
        if (
            e["resource"] == "configmaps"
            and cluster
            and b.watch.owned_by(cluster, e["time"]) == victim
        ):
            retaken.add(cluster)  # an accepted fenced write: it legitimately took the cluster
        elif not (cluster and cluster in retaken):
            accepted.append(e)
    b.out["stale_owner_writes"] = len(accepted)
    b.out["stale_owner_detail"] = {
        "paused_clusters": len(held),
        "paused_seconds": round(time.monotonic() - paused - 2 * b.lease, 2),
        "writes_refused": refused,
        "retaken_clusters": len(retaken),
        "first_accepted": [
            {k: e.get(k) for k in ("verb", "resource", "namespace", "name", "cluster", "code")}
            for e in accepted[:5]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clusters", type=int, default=60)
    parser.add_argument("--nodes-per-cluster", type=int, default=100, help="The mean size.")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30.0, help="Idle window (at least 30 s).")
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument(
        "--plan-clusters", type=int, default=500, help="Clusters of 200 nodes planned in-process."
    )
    parser.add_argument("--keep", type=Path, help="Keep the repository and logs in DIR.")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        result = run(args.keep.resolve(), args)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            result = run(Path(tmp), args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
