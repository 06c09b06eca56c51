"""A rollout under a maintenance window, on the simulator: it starts only batches that can
finish before the window closes, pauses when it closes with nothing half-done, and resumes at
the next opening.

The window opens every 10 s for 6 s (a six-field schedule, seconds first). A batch may take
3.6 s by the worst case (nodeStartupTimeout 5m + drainTimeout 1m at the policy scale 0.01, as
generous as the other stories), and once three replacements have booted, the longest boot
observed plus drainTimeout: never less than 1.2 s, since a simulated boot takes 0.6 s. So a
batch starts at most 4.8 s into an opening, batches follow each other at most every 0.7 s
(boot and soak), and no more than seven of the pool's twelve one-node batches fit in one
opening: the rollout must pause and resume, whatever the machine's speed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gitops.fleet import load
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.plan import CreateReplacement, Plan, Wait
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.rollout.executor import Executor
from gitops.rollout.store import StateStore
from gitops.sim import Simulator
from gitops.sim.world import synthetic
from tests.adapters.rollout.conftest import POLICY_SCALE, SIM_SCALE
from tests.adapters.rollout.invariants import check, load_events, snapshot

pytestmark = pytest.mark.slow

PERIOD, LENGTH = 10.0, 6.0
WORST, LEAST = 3.6, 1.2  # what a batch may take: worst case, and the least an estimate says
WINDOW = {"name": "blink", "schedule": "*/10 * * * * *", "duration": "6s"}


def write(root: Path) -> Path:
    update = {
        "maxSurge": 1,
        "maxUnavailable": 0,
        "soak": "10s",
        "nodeStartupTimeout": "5m",
        "drainTimeout": "1m",
    }
    pool = synthetic.PoolSpec("workers", 12, zones=("z-a", "z-b"), update=update)
    return synthetic.write_specs(
        root,
        [synthetic.ClusterSpec("edge", "canary", (pool,))],
        (synthetic.WaveSpec("canary", "0s"),),
        name="windowed",
        rollout={"maintenance": {"windows": [WINDOW]}},
        cluster_dir="",
    )


def test_a_rollout_pauses_at_the_window_end_and_resumes_at_the_next_opening(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "fleet")
    fleet = load(path).with_revision("rev-1")
    audit = tmp_path / "audit.jsonl"
    sim = Simulator(
        path,
        seed=7,
        initial="previous",
        audit_log=audit,
        time_scale=SIM_SCALE,
        kubeconfig_out=tmp_path / "kubeconfig",
    )
    sim.start()
    try:
        snap = snapshot(sim, fleet)
        management = connect(sim.kubeconfig_path)
        observer = Observer(management)
        observer.track((c.name, c.namespace) for c in fleet.clusters)
        assert observer.wait_synced(20)
        executor = Executor(
            fleet,
            observer,
            ClusterAPIProvider(management),
            StateStore(management, "gitops-system"),
            time_scale=POLICY_SCALE,
        )
        plans: list[Plan] = []
        result: list[Plan] = []
        thread = threading.Thread(
            target=lambda: result.append(executor.run(poll=0.05, on_plan=plans.append)),
            daemon=True,
        )
        thread.start()
        thread.join(240)
        executor.stopping.set()
        thread.join(10)
        observer.stop()
    finally:
        sim.stop()
    assert result and result[0].status == "converged", result and result[0].reason
    assert check(audit, snap, fleet) == []  # surge, availability, no node retired too soon

    # Every plan that started a replacement was made inside an opening, with time to finish.
    starting = [
        p for p in plans if any(isinstance(a, CreateReplacement) and a.ready for a in p.actions())
    ]
    assert starting
    first = starting[0].now % PERIOD  # nothing observed yet: the worst case decides
    assert first + WORST <= LENGTH + 1e-6, f"the first batch started {first:.2f} s in"
    for plan in starting:
        into = plan.now % PERIOD
        assert into + LEAST <= LENGTH + 1e-6, f"a batch started {into:.2f} s into the window"

    # It paused with nodes still to replace (a window wait, no new start) ...
    paused = [
        p
        for p in plans
        if any(isinstance(a, Wait) and a.on == "window" for a in p.actions()) and not p.converged
    ]
    assert paused
    # ... and resumed at a later opening: replacements were created in two or more openings.
    created = [e["time"] for e in load_events(audit) if e.get("event") == "machine-created"]
    assert len(created) == 12
    assert len({int(t // PERIOD) for t in created}) >= 2
