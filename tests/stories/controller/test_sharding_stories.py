"""Several ``gitops run --sharding`` processes share the fleet (issue 17).

Three real controller processes against one simulator: they split the four clusters by owner
Leases, converge an image bump across the three waves together, and the rollout's invariants
hold, checked from the simulator's audit log (``tests.adapters.rollout.invariants``). A
replica killed mid-rollout leaves its clusters to the others without a duplicate replacement;
a replica paused (SIGSTOP) past its Lease and woken (SIGCONT) gets nothing accepted for a
cluster until it has legitimately taken that cluster's fence again.
"""

from __future__ import annotations

import os
import signal
import time
from itertools import pairwise
from typing import Any

import pytest

from gitops.fleet import Fleet, load
from gitops.placement import place
from gitops.sim.api.resources import RESOURCES
from tests.adapters.controller.conftest import (
    Launch,
    RunProcess,
    World,
    commit,
    converged_at,
    set_image,
    until,
)
from tests.adapters.rollout import invariants

pytestmark = pytest.mark.slow

WRITES = ("create", "update", "patch", "delete")


def owners(world: World) -> dict[str, str]:
    """Cluster -> the replica its owner Lease names (read from the simulator's store)."""
    leases, _ = world.sim.store.list("", RESOURCES["leases.coordination.k8s.io"], "default")
    return {
        lease["metadata"]["name"].removeprefix("gitops-owner-"): lease["spec"].get(
            "holderIdentity", ""
        )
        for lease in leases
        if lease["metadata"]["name"].startswith("gitops-owner-")
    }


def replica(request: dict[str, Any]) -> str:
    return str(request.get("userAgent", "")).partition(" replica/")[2]


def cluster_of(world: World, request: dict[str, Any]) -> str:
    """The workload cluster a request concerns: its own, or a Machine's namespace's cluster."""
    if request["cluster"]:
        return str(request["cluster"])
    if request["resource"] == "configmaps" and request["name"].startswith("gitops-cluster-"):
        return str(request["name"]).removeprefix("gitops-cluster-")
    fleet = load(world.work)
    by_namespace = {c.namespace: c.name for c in fleet.clusters}
    if request["resource"] == "machines":
        return by_namespace.get(request["namespace"], "")
    return ""


def start(gitops_run: Launch, n: int = 3) -> list[RunProcess]:
    runs = [gitops_run(f"r{i}", "--sharding", "--replica-id", f"r{i}") for i in range(1, n + 1)]
    for run in runs:
        assert run.identity == f"r{run.name[1:]}"
    return runs


def rolling(
    world: World, gitops_run: Launch
) -> tuple[Fleet, invariants.Snapshot, list[RunProcess], str]:
    """Three sharding replicas, spread over the clusters, then an image bump of every pool:
    the fleet and its snapshot before it, the replicas, and the bump's revision."""
    fleet = load(world.work)
    snap = invariants.snapshot(world.sim, fleet)
    runs = start(gitops_run)
    until(lambda: len(set(owners(world).values())) >= 2, 60, "the clusters spread over replicas")
    set_image(world.work, "os-1", "os-3")
    return fleet, snap, runs, commit(world.work, "every pool to os-3")


def created_by(world: World) -> list[str]:
    """The replica of every Machine create the simulator accepted, in order."""
    return [
        replica(e)
        for e in world.audit_events()
        if e["kind"] == "request"
        and e["resource"] == "machines"
        and e["verb"] == "create"
        and e["code"] < 400
    ]


def test_three_replicas_share_the_clusters_and_converge_an_image_bump_in_waves(
    world: World, gitops_run: Launch
) -> None:
    fleet, snap, runs, revision = rolling(world, gitops_run)
    until(lambda: converged_at(world.status, revision), 180, "the bump to converge")
    assert invariants.check(world.audit, snap, load(world.work)) == []
    creators = created_by(world)
    assert creators, "no Machine was created"
    assert len(set(creators)) >= 2, "one replica did all the work"
    # waves in order: no cluster of a later wave got a Machine before an earlier wave's last
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    wave_of = {c: m.wave.name for m in fleet.waves for c in m.clusters}
    for event in world.created():
        wave = wave_of[event["cluster"]]
        first.setdefault(wave, event["time"])
        last[wave] = event["time"]
    names = [m.wave.name for m in fleet.waves]
    assert all(last[a] <= first[b] for a, b in pairwise(names))
    for run in runs:
        assert run.proc.poll() is None


def test_a_replica_killed_mid_rollout_leaves_its_clusters_to_the_others(
    world: World, gitops_run: Launch
) -> None:
    _, snap, runs, revision = rolling(world, gitops_run)

    first = until(lambda: created_by(world)[:1], 90, "a first Machine")[0]
    victim = next(r for r in runs if r.identity == first)
    lost = sorted(c for c, owner in owners(world).items() if owner == victim.identity)
    victim.kill()
    until(lambda: converged_at(world.status, revision), 180, "the others to finish")
    assert lost and not {owners(world)[c] for c in lost} & {victim.identity}
    assert invariants.check(world.audit, snap, load(world.work)) == []
    replaced = [e["replaces"] for e in world.created() if e.get("replaces")]
    assert replaced and len(replaced) == len(set(replaced)), "a node was replaced twice"


def test_a_paused_ex_owner_gets_nothing_accepted_when_it_wakes(
    world: World, gitops_run: Launch
) -> None:
    _, snap, runs, revision = rolling(world, gitops_run)
    until(lambda: any(e.get("event") == "machine-created" for e in world.audit_events()), 90)
    victim = max(runs, key=lambda r: sum(1 for o in owners(world).values() if o == r.identity))
    held = sorted(c for c, owner in owners(world).items() if owner == victim.identity)
    assert held
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        until(
            lambda: all(owners(world).get(c) not in ("", victim.identity) for c in held),
            60,
            "the others to take the paused replica's clusters",
        )
    finally:
        woke = time.time()
        os.kill(victim.proc.pid, signal.SIGCONT)
    until(lambda: converged_at(world.status, revision), 180, "the rollout to finish")
    # After waking, a write of the ex-owner concerning a cluster is accepted only once it has
    # taken that cluster again (an accepted write of the cluster's fenced record first).
    retaken: set[str] = set()
    stale = []
    for e in world.audit_events():
        if e["kind"] != "request" or e["time"] < woke or replica(e) != victim.identity:
            continue
        if e["verb"] not in WRITES or e["code"] >= 400 or e["resource"] == "leases":
            continue
        cluster = cluster_of(world, e)
        if e["resource"] == "configmaps" and cluster:
            retaken.add(cluster)
        elif cluster and cluster not in retaken:
            stale.append(e)
    assert stale == [], f"writes accepted from the paused ex-owner: {stale[:5]}"
    assert invariants.check(world.audit, snap, load(world.work)) == []
    # and it is back at work: it rejoined as a member and was given clusters again
    until(lambda: victim.identity in owners(world).values(), 60, "the woken replica to rejoin")


def test_scaling_three_four_three_moves_only_what_the_placement_says(
    world: World, gitops_run: Launch
) -> None:
    fleet = load(world.work)
    weights = {c.name: max(1, sum(p.replicas for p in c.spec.node_pools)) for c in fleet.clusters}
    three = place(weights, ["r1", "r2", "r3"])
    four = place(weights, ["r1", "r2", "r3", "r4"])
    assert three != four  # the fourth replica is given something
    start(gitops_run)
    until(lambda: owners(world) == three, 60, f"the placement of three replicas {three}")
    fourth = gitops_run("r4", "--sharding", "--replica-id", "r4")
    until(lambda: owners(world) == four, 60, f"the placement of four replicas {four}")
    assert fourth.terminate() == 0
    until(lambda: owners(world) == three, 30, "the fourth replica's clusters to come back")
    assert "r4" not in owners(world).values()
