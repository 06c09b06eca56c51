"""Measure a whole rollout on the simulator against the least time the policies allow.

Prints one JSON object ``{nodes, waves, wall_seconds, theoretical_min_seconds,
efficiency_ratio, api_requests, ...}`` for a rollout of a synthetic fleet (3 waves, 10
clusters, pools of 10 to 100 nodes, 630 nodes in all, every node on the previous image) by the
real executor (``gitops.rollout.executor.Executor``, as ``gitops apply`` runs it, in this
process) against the simulator over HTTP (in a child process of its own, so the two do not
share a GIL), with fixed latencies.

Latencies (``PROFILES``, seconds, no time scaling) in two profiles. ``scaled`` (the default)
keeps real proportions at about 1/25 of real time: provisioning ``P`` = 5, boot ``B`` = 2 (a
replacement is Ready ``P + B`` = 7 s after its Machine is created), deprovisioning ``D`` = 1,
rescheduling an evicted pod 0.2. ``fast`` squeezes a batch into one second (0.7, 0.3, 0.15,
0.02), which makes every millisecond of API traffic and planning show. Policies are the
fleet's own durations (``--time-scale`` 1).

The theoretical minimum
-----------------------

Evictions and API calls are taken as free; the physical latencies, the surge budget and the
soaks are not. For a pool of ``n`` outdated nodes with ``maxSurge`` ``s`` (``maxUnavailable``
0; make-before-break) the replacements go in ``k = ceil(n / s)`` batches. Batch ``i`` creates
its ``s`` Machines, which are Ready ``P + B`` later; its old nodes are then cordoned, drained
(free) and deleted, and the surge room they held is free ``D`` later. Batch ``i + 1`` may
start only when both the surge room is free (``D`` after Ready) and the pool's ``soak`` has
passed since batch ``i`` was Ready. Hence per pool::

    T_pool = k * (P + B) + (k - 1) * max(D, soak_pool) + D

Pools of a cluster run in parallel: ``T_cluster = max(T_pool)``. A wave soaks ``soak_wave``
after its last cluster converged, and with ``maxClustersInParallel`` a converged cluster keeps
its slot while it soaks; so each cluster occupies a slot for ``T_cluster + soak_wave`` and the
clusters take free slots in name order (the planner's order), a list schedule::

    T_wave = makespan of list_schedule([T_c + soak_wave for c in name order], slots)

with unlimited slots when the wave sets no limit. The next wave starts when this one has soaked,
and the rollout is converged when the last wave has soaked::

    theoretical_min_seconds = sum(T_wave)

``efficiency_ratio = wall_seconds / theoretical_min_seconds`` (1.0 is perfect). ``wall_seconds``
runs from the executor's first reconcile (its caches already synced) until it returns the
converged plan. ``api_requests`` counts the controller's requests in the simulator's audit log
(user agent ``gitops/...``), with a breakdown by verb and by resource.

MachineDeployment mode (``--profile machinedeployment``): the same fleet and latencies as
``scaled`` with every pool naming a MachineDeployment. gitops makes one roll per pool and
Cluster API's rolling update does the rest, so the minimum is the same list schedule with
``T_pool`` for Cluster API's RollingUpdate with ``maxUnavailable`` 0: the new MachineSet grows
by ``s`` Machines (Ready ``P + B`` later), the old one then shrinks by ``s`` (drained, gone
``D`` later), and only then is there surge room for the next ``s``; the pool's ``soak`` does
not apply (Cluster API does not wait between Machines), so ``T_pool = k * (P + B) + k * D``
(``pool_minimum`` with a soak of 0): the deployment is rolled by the v1beta2 rule once its
last old Machine is gone.

Measured (``machinedeployment``, 610 nodes, minimum 138 s, two shared cores): 380.2 s, ratio
2.755, with 109 API requests from gitops (one clone and one patch per pool; the standalone
rollout makes about 5,300). The time goes to the simulated Cluster API, not to gitops: its
Machine controller drains a deleted Machine itself and retries an eviction a
PodDisruptionBudget refused only every drainRetryInterval (20 s, here 0.8 s), where
gitops' own drain retries as soon as the budget's status moves; with budgets of
``maxUnavailable: 1`` every old Machine waits a few retries, and the MachineSet's next Machine
waits for it. The minimum leaves drains out, as for the other profiles.

Usage: ``.venv/bin/python bench/bench_rollout.py [--profile scaled|fast|machinedeployment]
[--keep DIR]``. Takes
about 3 minutes (scaled) or one (fast).

Measured here (2 vCPUs, noisy VM, run to run spread about 0.01 in the ratio), 610 nodes.

``scaled`` (minimum 138 s). The first cut took 148.5-153.5 s (ratio 1.08-1.11): every pass
waited for all Machine creations in flight anywhere; a drain refused by a PodDisruptionBudget
retried on a doubling backoff, up to a second after the evicted pod ran again; each pass
re-translated and re-planned the whole fleet (~25 ms, back to back during a burst, starving the
steps' threads). Now: creations wait only in their own pool, a refused drain is due when its
budget has a newer version allowing a disruption, unchanged clusters are neither translated
nor planned again (a pass costs ~1 ms at rest), passes gather changes while steps are in
flight, ``ready`` marks wait out a burst, and writes skip model deserialization. Five runs:
143.1-145.2 s, ratio 1.037-1.052 (median 1.045), 5,250-5,330 requests. What is left is
physics the minimum leaves out: a PodDisruptionBudget with ``maxUnavailable: 1`` lets one
pod go at a time, each after the last runs again (rescheduling 0.2 s; the controller answers
a budget's change in a median 68 ms), and the simulator and the controller share two cores
in the burst of a 25-node batch (~620 requests in 3 s).

``fast`` (minimum 22.6 s): 61-63 s at first (ratio 2.7-2.8), then 34-36 s (1.51-1.59), now
34.4 s (1.52): with a batch squeezed into one second, the API traffic of each batch (about
eight requests per replaced node) is most of what remains.

Since the simulator models graceful pod deletion (an evicted pod stays Terminating for its
grace period, ``POD_GRACE``, and the drain waits for it), node heartbeats and node Leases, and
Cluster API draining a deleted Machine, measured back to back with the code before on a busy
machine (load 7-13 on 2 vCPUs): ``scaled`` 146.0 s (1.058) before, 159.9 s (1.159) after with
1 s of grace (168.0 s, 1.217, with the seeded pods' own 2 s); ``fast`` 37.0-44.0 s before,
37.8 s (1.671) after with no grace (49.6-55.2 s with 2 s). What grew is the grace period, which
the minimum leaves out: heartbeats and the machine drain cost nothing measurable here.

``fast`` since the planner and the executor's loop were made leaner (node facts read once,
digests hashed without letting go of the interpreter lock, changes gathered only for as long
as a pass took): 1.25-1.35 here, against 1.48-1.51 for the code before lean observation
measured back to back. Where the rest goes (audit log, a trace of the executor, and the
simulator's scheduler): the controller cordons an old node about 40 ms (median) after its
replacement turns Ready in the simulator (6 ms to see the event, 10 to start the pass, 15 to
start the step, 10 for the request); the simulated world runs its scheduled actions 57 ms late
at the median and 390 ms at the 90th percentile, its physics thread busy about 20 s of a
32 s run, so a batch of 25 machines turns Ready over 0.2 to 0.5 s instead of at once (machine
to Ready: median 1.2 s for 1.0 s of latencies; Machine deletion to Node gone: 0.3 s for
0.15 s).

The simulator's own overhead, back to back under the bench lock, before / after the
eviction stopped deep-copying the namespace's pods, budgets and scales under the world lock
and the ReplicaSet controller stopped sorting every pod of the cluster, three runs each:
29.1-30.7 s (ratio 1.29-1.36) / 27.4-30.6 s (1.21-1.35), 5,300-5,420 requests; the world's
own lag from the audit log (Machine DELETE to ``node-removed`` minus ``D``;
``machine-created`` to ``node-ready`` minus ``P + B``), median / p90: 162-186 / 543-667 ms
and 181-234 / 461-599 ms before, 152-158 / 412-638 ms and 136-222 / 383-583 ms after. The
ratio's spread on this shared machine is as large as the change; 1.05 is not reached.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import json
import math
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gitops.fleet import Fleet, load
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.rollout.executor import Executor
from gitops.rollout.store import StateStore
from gitops.sim import Simulator
from gitops.sim.api.audit import read as read_audit
from gitops.sim.world.base import Latencies
from gitops.sim.world.synthetic import ClusterSpec, PoolSpec, WaveSpec, write_specs

# Two profiles. "scaled" keeps real proportions (a cloud VM provisions in minutes, boots and
# joins in one, is deleted in half a minute) at about 1/25 of real time; "fast" squeezes a batch
# into one second, which makes every millisecond of API traffic show in the ratio.
PROFILES = {
    "scaled": Latencies(provision=5.0, boot=2.0, deprovision=1.0, reschedule=0.2),
    "fast": Latencies(provision=0.7, boot=0.3, deprovision=0.15, reschedule=0.02),
}
# "machinedeployment": the same fleet and latencies as "scaled", every pool rolled through a
# MachineDeployment of its name (MachineDeployment mode): the simulated Cluster API replaces
# the machines, gitops runs the waves.
MD_PROFILE = "machinedeployment"
PROFILES[MD_PROFILE] = PROFILES["scaled"]
# Cluster API drains a deleted Machine itself and retries a drain a PodDisruptionBudget refused
# every 20 s (drainRetryInterval): in the critical path of every batch, so its clock must run
# at the profile's 1/25 like the latencies, or the bench would measure a 20 s retry against a
# 7 s batch. The simulator's time scale does that for every period of Kubernetes and Cluster
# API at once (drain retries, grace); the latencies are given at full size so that they come
# out as "scaled"'s.
MD_TIME_SCALE = 0.04
# Seconds an evicted pod stays Terminating (its terminationGracePeriodSeconds: whole seconds),
# in the same proportions: Kubernetes' 30 s default is about 1 s at 1/25; "fast" has no room
# for a whole second, so its pods go at once.
POD_GRACE = {"scaled": 1, "fast": 0, MD_PROFILE: 25}  # 25 s at MD_TIME_SCALE: 1 s


def _pool(name: str, replicas: int, surge: int, soak: str = "0s") -> PoolSpec:
    update = {
        "maxSurge": surge,
        "maxUnavailable": 0,
        "soak": soak,
        "drainTimeout": "10m",
        "nodeStartupTimeout": "10m",
    }
    return PoolSpec(name, replicas, update=update)


WAVES: tuple[WaveSpec, ...] = (
    WaveSpec("canary", "500ms"),
    WaveSpec("staging", "500ms"),
    WaveSpec("prod", "500ms", parallel=3),
)

CLUSTERS: tuple[ClusterSpec, ...] = (
    ClusterSpec("canary-1", "canary", (_pool("general", 20, 5, "300ms"),)),
    ClusterSpec("staging-1", "staging", (_pool("general", 40, 10), _pool("system", 10, 5))),
    ClusterSpec("staging-2", "staging", (_pool("general", 50, 10, "300ms"),)),
    ClusterSpec("prod-1", "prod", (_pool("general", 100, 25), _pool("system", 10, 5))),
    ClusterSpec("prod-2", "prod", (_pool("general", 80, 20),)),
    ClusterSpec("prod-3", "prod", (_pool("general", 60, 20), _pool("gpu", 20, 5))),
    ClusterSpec("prod-4", "prod", (_pool("general", 70, 20),)),
    ClusterSpec("prod-5", "prod", (_pool("general", 50, 25), _pool("system", 10, 5))),
    ClusterSpec("prod-6", "prod", (_pool("general", 90, 30),)),
)


def write_fleet(root: Path, *, md: bool = False) -> Path:
    """Write the benchmark's fleet repository under ``root``; its path. With ``md`` every pool
    names a MachineDeployment of its name."""
    clusters = CLUSTERS
    if md:
        clusters = tuple(
            dataclasses.replace(
                c,
                pools=tuple(
                    dataclasses.replace(p, machine_deployment={"name": p.name}) for p in c.pools
                ),
            )
            for c in CLUSTERS
        )
    return write_specs(
        root, clusters, WAVES, name="bench", rollout={"maxFailedNodes": 0}, cluster_dir=""
    )


# -- the theoretical minimum ----------------------------------------------------------------


def pool_minimum(outdated: int, surge: int, soak: float, lat: Latencies) -> float:
    """``k * (P + B) + (k - 1) * max(D, soak) + D`` with ``k = ceil(outdated / surge)``."""
    if outdated <= 0:
        return 0.0
    batches = math.ceil(outdated / surge)
    ready = lat.provision + lat.boot
    return batches * ready + (batches - 1) * max(lat.deprovision, soak) + lat.deprovision


def list_schedule(durations: list[float], slots: int | None) -> float:
    """Makespan of jobs taken in order by the first free of ``slots`` workers (None: all)."""
    if not durations:
        return 0.0
    if slots is None or slots >= len(durations):
        return max(durations)
    free = [0.0] * slots
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def theoretical_minimum(fleet: Fleet, lat: Latencies) -> tuple[float, list[dict[str, Any]]]:
    """The least wall time the fleet's policies allow (see the module docstring), per wave."""
    total = 0.0
    waves = []
    for members in fleet.waves:
        wave = members.wave
        paths = []
        for name in sorted(members.clusters):
            doc = fleet.cluster(name)
            assert doc is not None
            # A MachineDeployment's pool soak is not gitops' to keep: Cluster API starts the
            # next Machines as soon as the surge room is free.
            paths.append(
                max(
                    pool_minimum(
                        p.replicas, p.surge, 0.0 if p.machine_deployment else p.update.soak, lat
                    )
                    for p in doc.spec.node_pools
                )
            )
        seconds = list_schedule([t + wave.soak for t in paths], wave.max_clusters_in_parallel)
        waves.append({"wave": wave.name, "theoretical_min_seconds": round(seconds, 3)})
        total += seconds
    return total, waves


# -- the run --------------------------------------------------------------------------------


def serve(root: str, workdir: str, profile: str, ready: Any, stop: Any) -> None:
    """The simulator, in its own process (so that it does not share a GIL with the executor)."""
    scale = MD_TIME_SCALE if profile == MD_PROFILE else 1.0
    lat = PROFILES[profile]
    full = Latencies(
        provision=lat.provision / scale,
        boot=lat.boot / scale,
        deprovision=lat.deprovision / scale,
        reschedule=lat.reschedule / scale,
    )
    sim = Simulator(
        root,
        seed=1,
        initial="previous",
        audit_log=Path(workdir) / "audit.jsonl",
        kubeconfig_out=Path(workdir) / "kubeconfig",
        time_scale=scale,
        world_options={
            "latencies": full,
            "pod_grace_seconds": POD_GRACE[profile],
            # Scaled to 1/25 too, kubelets would renew 610 Leases every 0.4 s: load no real
            # fleet has. Nothing gitops decides reads them.
            "heartbeats": scale == 1.0,
        },
    )
    sim.start()
    ready.set()
    stop.wait()
    sim.stop()


def run(workdir: Path, profile: str = "scaled") -> dict[str, Any]:
    """Roll the benchmark fleet out once; the measurements."""
    root = write_fleet(workdir / "fleet", md=profile == MD_PROFILE)
    fleet = load(root).with_revision("bench-1")
    audit_path = workdir / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    server = context.Process(target=serve, args=(str(root), str(workdir), profile, ready, stop))
    server.start()
    try:
        if not ready.wait(120):
            raise SystemExit("the simulator did not start in 120 s")
        management = connect(str(workdir / "kubeconfig"))
        observer = Observer(management)
        observer.track((c.name, c.namespace) for c in fleet.clusters)
        if not observer.wait_synced(60):
            raise SystemExit("the executor's caches did not sync in 60 s")
        executor = Executor(fleet, observer, ClusterAPIProvider(management), StateStore(management))
        started_wall = time.time()
        started = time.perf_counter()
        plan = executor.run(poll=1.0)  # gitops apply's poll at --time-scale 1
        wall = time.perf_counter() - started
        observer.stop()
    finally:
        stop.set()
        server.join(30)
    if plan.status != "converged":
        raise SystemExit(f"the rollout did not converge: {plan.status} {plan.reason}")
    events = read_audit(audit_path)
    mine = [
        e
        for e in events
        if e["kind"] == "request"
        and e["userAgent"].startswith("gitops/")
        and e["time"] >= started_wall
    ]
    created = [e for e in events if e.get("event") == "machine-created"]
    removed = [e for e in events if e.get("event") == "node-removed"]
    latencies = PROFILES[profile]
    minimum, per_wave = theoretical_minimum(fleet, latencies)
    nodes = sum(p.replicas for _, p in fleet.pools())
    return {
        "nodes": nodes,
        "waves": len(fleet.waves),
        "clusters": len(fleet.clusters),
        "wall_seconds": round(wall, 3),
        "theoretical_min_seconds": round(minimum, 3),
        "efficiency_ratio": round(wall / minimum, 3),
        "api_requests": len(mine),
        "api_requests_by_verb": dict(sorted(collections.Counter(e["verb"] for e in mine).items())),
        "api_requests_by_resource": dict(
            sorted(
                collections.Counter(
                    (e["resource"] + ("/" + e["subresource"] if e["subresource"] else ""))
                    or "(non-resource)"
                    for e in mine
                ).items()
            )
        ),
        "machines_created": len(created),
        "nodes_removed": len(removed),
        "last_node_removed_seconds": round(max(e["time"] for e in removed) - started_wall, 3),
        "profile": profile,
        "latencies": {
            "provision": latencies.provision,
            "boot": latencies.boot,
            "deprovision": latencies.deprovision,
            "reschedule": latencies.reschedule,
        },
        "per_wave": per_wave,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Keep the fleet and the audit log in DIR.")
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="scaled", help="Latency profile."
    )
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.keep, args.profile)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
            result = run(Path(tmp), args.profile)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
