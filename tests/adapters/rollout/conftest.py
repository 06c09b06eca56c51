"""A small three-wave fleet, a simulator seeded from it, and an in-process executor.

Rollout stories run against the simulator over HTTP, with the simulator's latencies scaled
down (provisioning in fractions of a second) and the fleet's policy durations scaled with the
executor's ``time_scale``, so a whole three-wave rollout takes seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitops.fleet import Fleet, load
from gitops.kube.client import Kube, connect
from gitops.kube.observe import Observer
from gitops.plan import Plan
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.rollout.executor import Event, Executor
from gitops.rollout.sharded import ShardedStore
from gitops.rollout.store import StateStore
from gitops.sim import Simulator
from gitops.sim.world import synthetic
from tests.adapters.rollout.invariants import Snapshot, snapshot

SIM_SCALE = 0.02  # simulated provisioning 0.4 s, boot 0.2 s, deprovision 0.1 s
POLICY_SCALE = 0.01  # soak 30s -> 0.3 s, nodeStartupTimeout 10m -> 6 s

WAVES = (
    synthetic.WaveSpec("canary", "30s"),
    synthetic.WaveSpec("staging", "30s"),
    synthetic.WaveSpec("prod", parallel=1),
)


def pool(
    name: str, replicas: int, surge: int, unavailable: int, *, md: bool = False
) -> synthetic.PoolSpec:
    """A pool of the small fleet; with ``md``, rolled through a MachineDeployment of its name."""
    update = {
        "maxSurge": surge,
        "maxUnavailable": unavailable,
        "soak": "10s",
        "drainTimeout": "30m",
    }
    deployment = {"name": name} if md else None
    return synthetic.PoolSpec(
        name, replicas, zones=("z-a", "z-b"), update=update, machine_deployment=deployment
    )


def write_fleet(
    root: Path, *, paused: tuple[str, ...] = (), max_failed: int = 1, md: bool = False
) -> Path:
    pools = {
        "canary": (pool("workers", 2, 1, 0, md=md),),
        "staging": (pool("workers", 3, 1, 1, md=md),),
        "prod-a": (pool("workers", 4, 2, 1, md=md), pool("system", 2, 1, 0, md=md)),
        "prod-b": (pool("workers", 4, 2, 1, md=md), pool("system", 2, 1, 0, md=md)),
    }
    clusters = [
        synthetic.ClusterSpec(name, name.partition("-")[0], p, paused=name in paused)
        for name, p in pools.items()
    ]
    return synthetic.write_specs(
        root, clusters, WAVES, name="small", rollout={"maxFailedNodes": max_failed}, cluster_dir=""
    )


@dataclass
class Rollout:
    """A simulator, a fleet and an executor wired to it; ``run`` rolls out in a thread."""

    sim: Simulator
    fleet: Fleet
    fleet_path: Path
    audit: Path
    snap: Snapshot
    management: Kube
    events: list[Event]

    def executor(
        self, *, store: StateStore | ShardedStore | None = None, **kwargs: Any
    ) -> tuple[Executor, Observer]:
        """An executor over a fresh, synced observer; its durable state in ``store`` (default:
        the single-replica ConfigMap)."""
        observer = Observer(self.management)
        observer.track((c.name, c.namespace) for c in self.fleet.clusters)
        assert observer.wait_synced(20)
        executor = Executor(
            self.fleet,
            observer,
            ClusterAPIProvider(self.management),
            store or StateStore(self.management, "gitops-system"),
            time_scale=POLICY_SCALE,
            on_event=self.events.append,
            **kwargs,
        )
        return executor, observer

    def run(self, timeout: float = 90.0, **kwargs: Any) -> Plan:
        executor, observer = self.executor(**kwargs)
        result: list[Plan] = []
        thread = threading.Thread(
            target=lambda: result.append(executor.run(poll=0.05)), daemon=True
        )
        thread.start()
        thread.join(timeout)
        executor.stopping.set()
        thread.join(10)
        observer.stop()
        assert result, f"the rollout did not finish in {timeout}s; events: {self.events[-10:]}"
        return result[0]


@pytest.fixture
def rollout(tmp_path: Path) -> Iterator[Callable[..., Rollout]]:
    started: list[Simulator] = []

    def make(
        *,
        initial: str = "previous",
        drift: str = "",
        paused: tuple[str, ...] = (),
        max_failed: int = 1,
        faults: str = "",
        world: dict[str, Any] | None = None,
        seed: int = 7,
        md: bool = False,
        capi_version: str = "v1beta2",
    ) -> Rollout:
        path = write_fleet(tmp_path / "fleet", paused=paused, max_failed=max_failed, md=md)
        fleet = load(path).with_revision("rev-1")
        audit = tmp_path / "audit.jsonl"
        sim = Simulator(
            path,
            seed=seed,
            initial=initial,
            drift=drift,
            audit_log=audit,
            time_scale=SIM_SCALE,
            faults=faults,
            kubeconfig_out=tmp_path / "kubeconfig",
            world_options=world or {},
            capi_version=capi_version,
        )
        sim.start()
        started.append(sim)
        snap = snapshot(sim, fleet)
        return Rollout(sim, fleet, path, audit, snap, connect(sim.kubeconfig_path), [])

    yield make
    for sim in started:
        sim.stop()
