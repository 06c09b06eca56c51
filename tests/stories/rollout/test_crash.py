"""Kill ``gitops apply`` with SIGKILL at seeded random instants; the fleet still converges safely.

The simulator runs in this process; each ``gitops apply`` is a real child process talking to it
over HTTP. After every kill a new process starts from nothing but what the cluster objects and
the ConfigMap record say. The audit log then proves, from outside the controller, that no
invariant broke at any instant (surge, availability, PDBs, make-before-break, no duplicate
replacement) and that the fleet converged.

The number of kills must not depend on how fast the machine is. A kill counts only if the
rollout still had work when it landed (a machine of the old fleet not yet being deleted: with
no controller alive, nothing else deletes one), and the fleet outlasts the kill schedule on any
machine: the simulated boot latencies are lower bounds in real time (a slower machine only
adds to them), and the rollout's longest chain of batches, each waiting for its replacements
to provision and boot, takes longer than all the seeded pauses between kills put together.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.sim.world.base import Latencies
from tests.adapters.rollout.conftest import SIM_SCALE, Rollout
from tests.adapters.rollout.fleets import ClusterSpec, PoolSpec, Sims, write_fleet
from tests.adapters.rollout.invariants import check, load_events
from tests.stories.rollout.helpers import apply_argv, assert_converged, work_remains

# At SIM_SCALE: provisioning 2.5 s and boot 1.5 s, so a batch's replacements are Ready 4 s after
# they are created at the earliest.
LATENCIES = Latencies(provision=125.0, boot=75.0, deprovision=5.0, reschedule=3.0)
# The waves run one after another, and so do the batches inside a pool (maxSurge bounds the
# machines, so a pool's next replacement waits until an old machine is gone): canary 2 batches
# (2 nodes, surge 1), staging 3 (3 nodes, surge 1), prod-a then prod-b 2 each (workers: 4 nodes,
# surge 2; system: 2 nodes, surge 1, side by side).
SEQUENTIAL_BATCHES = 2 + 3 + 2 + 2
PHYSICAL_MINIMUM = SEQUENTIAL_BATCHES * (LATENCIES.provision + LATENCIES.boot) * SIM_SCALE
REPLACEMENTS = 2 + 3 + 2 * (4 + 2)  # one per old node


def _fleet(root: Path) -> Path:
    """The rollout tests' small three-wave fleet, with a start-up timeout far above the boot
    latency so that a loaded machine's late boot is not a failure."""
    slow = "60m"  # 36 s at the policy scale of `gitops apply` in these tests
    prod = (
        PoolSpec("workers", 4, surge=2, unavailable=1, node_startup_timeout=slow),
        PoolSpec("system", 2, surge=1, node_startup_timeout=slow),
    )
    clusters = (
        ClusterSpec("canary", "canary", (PoolSpec("workers", 2, node_startup_timeout=slow),)),
        ClusterSpec(
            "staging",
            "staging",
            (PoolSpec("workers", 3, surge=1, unavailable=1, node_startup_timeout=slow),),
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


def _crash_loop(r: Rollout, pauses: list[float]) -> int:
    """Start ``gitops apply``, kill it after each pause; the kills that landed on work left."""
    kills = 0
    env = {**os.environ, "COLUMNS": "120"}
    for pause in pauses:
        proc = subprocess.Popen(
            apply_argv(r, "--yes"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        # The instants are the point of this test: real time, drawn from a seeded generator.
        time.sleep(pause)
        if proc.poll() is not None:
            break  # it ended on its own (converged, or failed: the final run says which)
        proc.kill()
        proc.wait()
        if not work_remains(r):
            break  # the rollout was done: this kill tested nothing
        kills += 1
    final = subprocess.run(
        apply_argv(r, "--yes"), capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "converged" in final.stdout
    return kills


def _schedule(seed: int, kills: int) -> list[float]:
    rng = random.Random(seed)
    pauses = [rng.uniform(0.8, 3.5) for _ in range(kills)]
    # The premise of the floor on kills: the fleet outlasts the whole schedule, whatever the
    # machine's speed (with room for the few milliseconds each kill and check takes).
    assert sum(pauses) + 0.5 * kills < PHYSICAL_MINIMUM
    return pauses


@pytest.mark.slow
def test_sigkill_at_random_instants_breaks_nothing(sims: Sims, tmp_path: Path) -> None:
    r = sims.start(_fleet(tmp_path / "fleet"), seed=11, world={"latencies": LATENCIES})
    assert work_remains(r)
    kills = _crash_loop(r, _schedule(20261127, 12))
    assert kills >= 12
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len(created) == REPLACEMENTS  # one replacement per old node, none twice


@pytest.mark.slow
def test_sigkill_under_api_faults_breaks_nothing(sims: Sims, tmp_path: Path) -> None:
    r = sims.start(
        _fleet(tmp_path / "fleet"),
        seed=12,
        faults="error=0.1,watch-drop=100s",
        world={"latencies": LATENCIES},
    )
    kills = _crash_loop(r, _schedule(4242, 10))
    assert kills >= 10
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    faults = [
        e for e in load_events(r.audit) if e["kind"] == "request" and e.get("fault") == "error"
    ]
    assert faults, "the simulator injected no API error"
