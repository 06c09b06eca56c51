"""Fleet variants and helpers for rollout tests that need policies the small fleet does not set.

``tests/adapters/rollout/conftest.py`` builds one small three-wave fleet with fixed update policies. The
tests of drain policies, start-up timeouts and the apply command need other policies (short
drain and start-up timeouts, ``onDrainTimeout``, a larger surge), so this module writes fleet
repositories with ``gitops.sim.world.synthetic`` and starts a simulator over them exactly as the
``rollout`` fixture does (same latencies, same policy scale), returning the same ``Rollout``.
It also holds helpers to run an executor until a condition holds, to pin an unevictable pod on a
node, and to read the durable record.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gitops.fleet import load
from gitops.fleet.wellknown import POOL_LABEL
from gitops.kube.client import connect
from gitops.plan import Plan
from gitops.sim import Simulator
from gitops.sim.world import synthetic
from tests.adapters.rollout.conftest import SIM_SCALE, Rollout
from tests.adapters.rollout.invariants import snapshot


@dataclass(frozen=True)
class PoolSpec:
    """One node pool of a test fleet; durations are fleet durations (before ``--time-scale``)."""

    name: str
    replicas: int
    surge: int = 1
    unavailable: int = 0
    drain_timeout: str = "30m"
    on_drain_timeout: str = "fail"
    node_startup_timeout: str = "10m"
    soak: str = "10s"
    image: str = "os-2"
    md: bool = False  # rolled through a MachineDeployment named like the pool
    topology: str = ""  # rolled as this worker of the Cluster's ClusterClass topology

    def spec(self) -> synthetic.PoolSpec:
        update = {
            "maxSurge": self.surge,
            "maxUnavailable": self.unavailable,
            "soak": self.soak,
            "drainTimeout": self.drain_timeout,
            "onDrainTimeout": self.on_drain_timeout,
            "nodeStartupTimeout": self.node_startup_timeout,
        }
        return synthetic.PoolSpec(
            self.name,
            self.replicas,
            image=self.image,
            zones=("z-a", "z-b"),
            update=update,
            machine_deployment=(
                {"topology": self.topology}
                if self.topology
                else {"name": self.name}
                if self.md
                else None
            ),
        )


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster of a test fleet, in the wave whose ``ring`` label it carries."""

    name: str
    ring: str
    pools: tuple[PoolSpec, ...]
    paused: bool = False

    def spec(self) -> synthetic.ClusterSpec:
        pools = tuple(p.spec() for p in self.pools)
        return synthetic.ClusterSpec(self.name, self.ring, pools, paused=self.paused)

    def yaml(self) -> str:
        """The cluster file's text, as ``write_fleet`` writes it."""
        return yaml.safe_dump(self.spec().document(), sort_keys=False)


def write_fleet(
    root: Path,
    clusters: tuple[ClusterSpec, ...],
    *,
    waves: tuple[tuple[str, str, int | None], ...] = (("first", "30s", None),),
    max_failed: int = 1,
) -> Path:
    """Write a fleet repository: ``waves`` are (name = ring label, soak, maxClustersInParallel)."""
    return synthetic.write_specs(
        root,
        [c.spec() for c in clusters],
        [synthetic.WaveSpec(name, soak, parallel) for name, soak, parallel in waves],
        name="variant",
        rollout={"maxFailedNodes": max_failed},
        cluster_dir="",
    )


class Sims:
    """Starts simulators over written fleets (as the ``rollout`` fixture does) and stops them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Simulator] = []

    def start(
        self,
        root: Path,
        *,
        initial: str = "previous",
        world: dict[str, Any] | None = None,
        seed: int = 7,
        faults: str = "",
        revision: str = "rev-1",
        capi_version: str = "v1beta2",
    ) -> Rollout:
        fleet = load(root).with_revision(revision)
        audit = self.tmp_path / "audit.jsonl"
        sim = Simulator(
            root,
            seed=seed,
            initial=initial,
            audit_log=audit,
            time_scale=SIM_SCALE,
            faults=faults,
            kubeconfig_out=self.tmp_path / "kubeconfig",
            world_options=world or {},
            capi_version=capi_version,
        )
        sim.start()
        self.started.append(sim)
        snap = snapshot(sim, fleet)
        return Rollout(sim, fleet, root, audit, snap, connect(sim.kubeconfig_path), [])

    def stop(self) -> None:
        for sim in self.started:
            sim.stop()


def run_until(
    r: Rollout,
    done: Callable[[Plan], bool],
    timeout: float = 30.0,
    **kwargs: Any,
) -> Plan:
    """Run an in-process executor until ``done(plan)`` holds or its run ends; the last plan.

    Unlike ``Rollout.run`` this stops a rollout that waits (for a human, say) once the test has
    seen what it needs.
    """
    executor, observer = r.executor(**kwargs)
    plans: list[Plan] = []
    finished: list[Plan] = []
    thread = threading.Thread(
        target=lambda: finished.append(executor.run(poll=0.05, on_plan=plans.append)),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and thread.is_alive():
            if plans and done(plans[-1]):
                break
            time.sleep(0.05)
    finally:
        executor.stopping.set()
        thread.join(10)
        observer.stop()
    assert plans, "the executor produced no plan"
    last = finished[0] if finished else plans[-1]
    assert done(last) or finished, (
        f"no plan satisfied the condition in {timeout}s; last: {last.status} {last.reason}; "
        f"events: {[e.message for e in r.events[-10:]]}"
    )
    return last


def workload_api(r: Rollout, cluster: str) -> k8s.ApiClient:
    """An official-client ``ApiClient`` for one simulated workload cluster."""
    return k8s_config.new_client_from_config(r.sim.workload_kubeconfig(cluster))


def pool_nodes(r: Rollout, cluster: str, pool: str) -> list[dict[str, Any]]:
    """The pool's Node objects as the API serves them, sorted by name."""
    core = k8s.CoreV1Api(workload_api(r, cluster))
    listed = core.list_node(label_selector=f"{POOL_LABEL}={pool}", _preload_content=False)
    items = json.loads(listed.data)["items"]
    return sorted(items, key=lambda n: n["metadata"]["name"])


def pin_unevictable_pod(
    r: Rollout, cluster: str, node: str, name: str = "pinned", timeout: float = 10.0
) -> None:
    """A bare pod bound to ``node`` and a PDB (``minAvailable: 1``) that never lets it go.

    Made through the official client, as an application team would. Waits until the pod runs
    and the disruption controller reports no disruption allowed, so the first eviction is
    refused with 429 rather than let through as a Pending pod's would be.
    """
    api = workload_api(r, cluster)
    core = k8s.CoreV1Api(api)
    policy = k8s.PolicyV1Api(api)
    core.create_namespaced_pod(
        "shop",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "main", "image": "registry/stateful:1"}],
            },
        },
    )
    policy.create_namespaced_pod_disruption_budget(
        "shop",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
        },
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = json.loads(core.read_namespaced_pod(name, "shop", _preload_content=False).data)
        pdb = json.loads(
            policy.read_namespaced_pod_disruption_budget(name, "shop", _preload_content=False).data
        )
        status = pdb.get("status") or {}
        if (pod.get("status") or {}).get("phase") == "Running" and status.get(
            "currentHealthy"
        ) == 1:
            assert status.get("disruptionsAllowed") == 0
            return
        time.sleep(0.05)
    raise AssertionError(f"pod shop/{name} on {node} did not start in {timeout}s")


def rollout_record(r: Rollout) -> dict[str, Any]:
    """The durable record, as stored in ConfigMap gitops-system/gitops-rollout-state."""
    cm = r.management.core.read_namespaced_config_map("gitops-rollout-state", "gitops-system")
    return dict(json.loads(cm.data["state.json"]))
