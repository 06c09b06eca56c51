"""MachineDeployment mode end to end: Cluster API replaces the machines, gitops runs the waves.

The small three-wave fleet of the rollout stories with every pool naming a MachineDeployment
(the simulator seeds one per pool, with its MachineSet and Machines). gitops never creates a
Machine here: it clones each deployment's template under a content-hashed name, points the
deployment at it, and the simulated MachineDeployment and MachineSet controllers roll the
machines with Cluster API's rolling-update semantics. The audit log's independent checker
proves the budgets held at every instant (surge, availability, PDBs); wave order and soak
come from the same log.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.fleet.wellknown import (
    IMAGE_ANNOTATION,
    PREVIOUS_IMAGE_ANNOTATION,
    PREVIOUS_TEMPLATE_ANNOTATION,
)
from gitops.plan.mdplan import DEFAULT_IMAGE_FIELD, template_name
from gitops.sim.api.resources import RESOURCES
from gitops.sim.world.base import Latencies
from tests.adapters.rollout.conftest import POLICY_SCALE, SIM_SCALE, Rollout
from tests.adapters.rollout.fleets import ClusterSpec, PoolSpec, Sims, write_fleet
from tests.adapters.rollout.invariants import check, load_events
from tests.stories.rollout.helpers import apply_argv, assert_converged, work_remains

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
MACHINES = RESOURCES["machines.cluster.x-k8s.io"]
MACHINESETS = RESOURCES["machinesets.cluster.x-k8s.io"]
DEPLOYMENTS = RESOURCES["machinedeployments.cluster.x-k8s.io"]
TEMPLATES = RESOURCES["simmachinetemplates.infrastructure.cluster.x-k8s.io"]
CLUSTERS = ("canary", "staging", "prod-a", "prod-b")


def _events(audit: Path, event: str, cluster: str) -> list[float]:
    found = [
        e["time"] for e in load_events(audit) if e.get("event") == event and e["cluster"] == cluster
    ]
    assert found, f"no {event} in {cluster}"
    return found


def _owner_kinds(machine: Obj) -> set[str]:
    return {o.get("kind", "") for o in machine["metadata"].get("ownerReferences") or []}


def _store(r: Rollout, resource: Any) -> list[Obj]:
    objects, _ = r.sim.store.list("", resource)
    return objects


def _assert_rolled_by_cluster_api(r: Rollout, templates_before: int) -> None:
    """Every pool's deployment points at its content-hashed template, rolled by its MachineSet;
    every Machine was made by a MachineSet (none standalone); one template per deployment."""
    machines = _store(r, MACHINES)
    assert machines
    standalone = [m["metadata"]["name"] for m in machines if "MachineSet" not in _owner_kinds(m)]
    assert standalone == []
    deployments = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d for d in _store(r, DEPLOYMENTS)
    }
    sets = _store(r, MACHINESETS)
    for cluster, pool in r.fleet.pools():
        md = deployments[(cluster.namespace, pool.name)]
        annotations = md["metadata"]["annotations"]
        base = annotations[PREVIOUS_TEMPLATE_ANNOTATION]  # the seeded template: swapped once
        source = r.fleet.images[pool.image].source
        want = template_name(base, DEFAULT_IMAGE_FIELD, source)
        assert md["spec"]["template"]["spec"]["infrastructureRef"]["name"] == want
        assert annotations[IMAGE_ANNOTATION] == pool.image
        # What a rollback points back to: the image the Outdated nodes ran, seen, not guessed.
        assert annotations[PREVIOUS_IMAGE_ANNOTATION] == "os-1"
        assert not md["spec"].get("paused")
        owned = [
            s
            for s in sets
            if s["metadata"]["namespace"] == cluster.namespace
            and any(o.get("name") == pool.name for o in s["metadata"].get("ownerReferences") or [])
        ]
        assert [s["spec"]["template"]["spec"]["infrastructureRef"]["name"] for s in owned] == [want]
        assert owned[0]["spec"]["replicas"] == pool.replicas
    assert len(_store(r, TEMPLATES)) == templates_before + len(r.fleet.pools())


def test_an_image_bump_rolls_every_machinedeployment_in_waves(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous", md=True)
    templates_before = len(_store(r, TEMPLATES))
    plan = r.run()
    assert plan.status == "converged", plan.reason
    assert check(r.audit, r.snap, r.fleet) == []
    _assert_rolled_by_cluster_api(r, templates_before)
    created = {c: len(_events(r.audit, "machine-created", c)) for c in CLUSTERS}
    # Cluster API's rolling update makes exactly one new Machine per replica when none fails.
    assert created == {"canary": 2, "staging": 3, "prod-a": 6, "prod-b": 6}
    # A wave starts only once the one before converged (its last old node gone) and soaked
    # (30 s of fleet time after its newest node was Ready); prod one cluster at a time.
    soak = 30.0 * POLICY_SCALE
    for before, after in (("canary", "staging"), ("staging", "prod-a"), ("prod-a", "prod-b")):
        started = min(_events(r.audit, "machine-created", after))
        assert max(_events(r.audit, "node-removed", before)) < started
        if after != "prod-b":  # prod-a and prod-b share a wave: no soak between them
            assert max(_events(r.audit, "node-ready", before)) + soak <= started


# -- SIGKILL ---------------------------------------------------------------------------------

# At SIM_SCALE: provisioning 2.5 s and boot 1.5 s, so a new machine is Ready 4 s after it is
# created at the earliest. Each cluster rolls in at least one such step, the clusters one
# after another (waves in order, prod one at a time): 4 of them.
LATENCIES = Latencies(provision=125.0, boot=75.0, deprovision=5.0, reschedule=3.0)
PHYSICAL_MINIMUM = len(CLUSTERS) * (LATENCIES.provision + LATENCIES.boot) * SIM_SCALE
KILLS = 3


def _md_fleet(root: Path) -> Path:
    slow = "60m"  # a loaded machine's late boot is not a failure
    prod = (
        PoolSpec("workers", 4, surge=2, unavailable=1, node_startup_timeout=slow, md=True),
        PoolSpec("system", 2, surge=1, node_startup_timeout=slow, md=True),
    )
    clusters = (
        ClusterSpec(
            "canary", "canary", (PoolSpec("workers", 2, node_startup_timeout=slow, md=True),)
        ),
        ClusterSpec(
            "staging",
            "staging",
            (PoolSpec("workers", 3, surge=1, unavailable=1, node_startup_timeout=slow, md=True),),
        ),
        ClusterSpec("prod-a", "prod", prod),
        ClusterSpec("prod-b", "prod", prod),
    )
    waves = (("canary", "30s", None), ("staging", "30s", None), ("prod", "30s", 1))
    return write_fleet(root, clusters, waves=waves)


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Sims]:
    started = Sims(tmp_path)
    yield started
    started.stop()


def test_sigkill_mid_rollout_resumes_without_a_second_template_or_swap(
    sims: Sims, tmp_path: Path
) -> None:
    r = sims.start(_md_fleet(tmp_path / "fleet"), seed=13, world={"latencies": LATENCIES})
    templates_before = len(_store(r, TEMPLATES))
    rng = random.Random(20261205)
    pauses = [rng.uniform(0.8, 3.0) for _ in range(KILLS)]
    # The fleet outlasts the kill schedule on any machine: the latencies are floors in real
    # time and the controller is dead between a kill and the next start.
    assert sum(pauses) + 0.5 * KILLS < PHYSICAL_MINIMUM
    env = {**os.environ, "COLUMNS": "120"}
    kills = 0
    for pause in pauses:
        proc = subprocess.Popen(
            apply_argv(r, "--yes"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        time.sleep(pause)  # the instants are the point: real time, from a seeded generator
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        if not work_remains(r):
            break
        kills += 1
    final = subprocess.run(
        apply_argv(r, "--yes"), capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "converged" in final.stdout
    assert kills >= KILLS
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    # One template and one swap per deployment, whatever the kills interrupted: the swap
    # recorded the seeded template as the previous one (a second swap would have recorded the
    # clone), every deployment has the one new MachineSet, and no Machine was made twice.
    _assert_rolled_by_cluster_api(r, templates_before)
    revisions = {
        d["metadata"]["annotations"].get("machinedeployment.clusters.x-k8s.io/revision")
        for d in _store(r, DEPLOYMENTS)
    }
    assert revisions == {"2"}
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len(created) == sum(p.replicas for _, p in r.fleet.pools())
