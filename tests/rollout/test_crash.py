"""Kill ``gitops apply`` with SIGKILL at seeded random instants; the fleet still converges safely.

The simulator runs in this process; each ``gitops apply`` is a real child process talking to it
over HTTP. After every kill a new process starts from nothing but what the cluster objects and
the ConfigMap record say. The audit log then proves, from outside the controller, that no
invariant broke at any instant (surge, availability, PDBs, make-before-break, no duplicate
replacement) and that the fleet converged.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.rollout.conftest import Rollout
from tests.rollout.invariants import check, load_events
from tests.rollout.test_apply_command import apply_argv, assert_converged


def _crash_loop(r: Rollout, rng: random.Random, kills_wanted: int) -> int:
    kills = 0
    env = {**os.environ, "COLUMNS": "120"}
    while kills < kills_wanted:
        proc = subprocess.Popen(
            apply_argv(r, "--yes"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        # The instants are the point of this test: real time, drawn from a seeded generator.
        time.sleep(rng.uniform(0.8, 3.5))
        if proc.poll() is not None:
            break  # it converged before we could kill it
        proc.kill()
        proc.wait()
        kills += 1
    final = subprocess.run(
        apply_argv(r, "--yes"), capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "converged" in final.stdout
    return kills


@pytest.mark.slow
def test_sigkill_at_random_instants_breaks_nothing(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="previous", seed=11)
    kills = _crash_loop(r, random.Random(20261127), kills_wanted=12)
    assert kills >= 12
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len(created) == 17  # one replacement per old node, none twice


@pytest.mark.slow
def test_sigkill_under_api_faults_breaks_nothing(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="previous", seed=12, faults="error=0.1,watch-drop=100s")
    kills = _crash_loop(r, random.Random(4242), kills_wanted=10)
    assert kills >= 10
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    faults = [
        e for e in load_events(r.audit) if e["kind"] == "request" and e.get("fault") == "error"
    ]
    assert faults, "the simulator injected no API error"
