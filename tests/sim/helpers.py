"""Helpers the simulator's tests share: a world on virtual time, raw HTTP, Machines and pods.

``make_world`` seeds a world on an in-process store driven by a ``ManualClock`` (tests move
virtual time and never sleep); ``raw`` speaks HTTP to a running simulator without the client's
models; the rest build Machines and read the store as the physics tests do.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from gitops.fleet import Fleet, load
from gitops.fleet.wellknown import POOL_LABEL
from gitops.sim import TOKEN, Simulator
from gitops.sim.api.resources import MACHINES, NODES, PODS, SIMMACHINES, SIMMACHINETEMPLATES
from gitops.sim.api.store import Store
from gitops.sim.world.base import Latencies
from gitops.sim.world.clock import ManualClock
from gitops.sim.world.world import World

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-repo-example"
Obj = dict[str, Any]


@functools.cache
def example_fleet() -> Fleet:
    return load(EXAMPLE)


class RecordingAudit:
    """An AuditLog stand-in keeping the state-change lines in memory."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    def change(self, *, cluster: str, event: str, **fields: Any) -> None:
        self.changes.append({"cluster": cluster, "event": event, **fields})

    def events(self, event: str) -> list[dict[str, Any]]:
        return [c for c in self.changes if c["event"] == event]


def make_world(
    *,
    seed: int = 0,
    initial: str = "declared",
    drift: str = "",
    boot_failure_rate: float = 0.0,
    latencies: Latencies | None = None,
    time_scale: float = 1.0,
    fleet: Fleet | None = None,
    heartbeats: bool = True,
    pod_grace_seconds: int | None = None,
) -> tuple[World, Store, ManualClock, RecordingAudit]:
    """A seeded world on a fresh store, on virtual time."""
    store = Store(seed=seed)
    clock = ManualClock()
    audit = RecordingAudit()
    world = World(
        store,
        fleet or example_fleet(),
        seed=seed,
        initial=initial,  # type: ignore[arg-type]
        drift=drift,
        time_scale=time_scale,
        audit=audit,
        latencies=latencies,
        boot_failure_rate=boot_failure_rate,
        server_url="http://127.0.0.1:6443",
        clock=clock,
        heartbeats=heartbeats,
        pod_grace_seconds=pod_grace_seconds,
    )
    world.seed()
    return world, store, clock, audit


def ready(node: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


# -- over HTTP --------------------------------------------------------------------------------


def raw(
    sim: Simulator,
    path: str,
    *,
    method: str = "GET",
    accept: str = "",
    body: bytes | None = None,
    content_type: str = "",
) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(sim.url + path, method=method, data=body)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if accept:
        req.add_header("Accept", accept)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


# -- Machines, nodes and pods in the canary ------------------------------------------------------------

CLUSTER, NS = "canary-eu-1", "canary-eu-1"
INFRA_API = "infrastructure.cluster.x-k8s.io/v1alpha1"


def new_machine(
    name: str,
    *,
    infra_kind: str = "SimMachineTemplate",
    infra_name: str = "general",
    pool: str = "general",
    zone: str = "eu-west-1b",
    labels: dict[str, str] | None = None,
) -> Obj:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "cluster.x-k8s.io/cluster-name": CLUSTER,
                POOL_LABEL: pool,
                **(labels or {}),
            },
            "finalizers": ["machine.cluster.x-k8s.io"],
        },
        "spec": {
            "clusterName": CLUSTER,
            "version": "v1.31.4",
            "bootstrap": {"dataSecretName": f"{CLUSTER}-{pool}-bootstrap"},
            "infrastructureRef": {
                "apiVersion": INFRA_API,
                "kind": infra_kind,
                "name": infra_name,
                "namespace": NS,
            },
            "failureDomain": zone,
        },
    }


def clone_like_a_machineset(store: Store, name: str, source: str) -> None:
    """What gitops.providers.clusterapi does: the template's spec, the new image source set."""
    template = store.get("", SIMMACHINETEMPLATES, NS, "general")
    spec = dict(template["spec"]["template"]["spec"])
    spec["image"] = source
    store.create(
        "",
        SIMMACHINES,
        {
            "apiVersion": INFRA_API,
            "kind": "SimMachine",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        },
    )


def node_or_none(store: Store, name: str, cluster: str = CLUSTER) -> Obj | None:
    found = store.list(cluster, NODES, field_selector=f"metadata.name={name}")[0]
    return found[0] if found else None


def machine_or_none(store: Store, name: str) -> Obj | None:
    found = store.list("", MACHINES, NS, field_selector=f"metadata.name={name}")[0]
    return found[0] if found else None


def pods_on(store: Store, node: str, cluster: str = CLUSTER) -> list[Obj]:
    return store.list(cluster, PODS, field_selector=f"spec.nodeName={node}")[0]


def evict(store: Store, name: str, namespace: str = "shop", **body: Any) -> Obj:
    return store.post_subresource(
        CLUSTER,
        PODS,
        namespace,
        name,
        "eviction",
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            **body,
        },
    )


def crowded_checkout(store: Store) -> tuple[str, list[str]]:
    """A node holding two checkout pods (seeding guarantees one in the canary) and their names."""
    pods = store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0]
    by_node = Counter(p["spec"]["nodeName"] for p in pods)
    node = sorted(n for n, count in by_node.items() if count >= 2)[0]
    return node, sorted(p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == node)
