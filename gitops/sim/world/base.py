"""The state every simulated controller of the world shares, and its write helpers.

Tool layer, the simulated world (``gitops.sim.world``), the bottom of the physics. ``PhysicsBase``
holds the world's informer caches (``ClusterCache``: one per workload cluster, kept from store
events), the Machines it knows, its dirty sets and its seeded dice; the controllers (``machines``,
``kubelet``, ``scheduling``, ``workloads``, ``disruption``) extend it and ``physics.Physics``
combines them. Writes go through ``_write``/``_create``/``_delete``, which land our own changes
in the caches at once and treat a 404 as a race lost to a client (nothing to do). It must never
sleep, read the wall clock or draw randomness but from its seeded ``random.Random``.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from gitops.fleet import Fleet
from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.resources import (
    DAEMONSETS,
    DEPLOYMENTS,
    MACHINES,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
)
from gitops.sim.api.store import Event, Store
from gitops.sim.world import capi
from gitops.sim.world import seed as seed_
from gitops.sim.world.clock import Clock, Scheduler

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
ACTOR = "sim-world"
TABLES = frozenset(r.key for r in (NODES, PODS, PDBS, DEPLOYMENTS, REPLICASETS, DAEMONSETS))


@dataclass(frozen=True)
class Latencies:
    """Seconds each physical step takes at time scale 1 (sane for a demo)."""

    provision: float = 20.0
    boot: float = 10.0
    deprovision: float = 5.0
    reschedule: float = 3.0

    def scaled(self, factor: float) -> Latencies:
        return replace(
            self,
            provision=self.provision * factor,
            boot=self.boot * factor,
            deprovision=self.deprovision * factor,
            reschedule=self.reschedule * factor,
        )


class Audit(Protocol):
    def change(self, *, cluster: str, event: str, **fields: Any) -> None: ...


class _NoAudit:
    def change(self, *, cluster: str, event: str, **fields: Any) -> None:
        del cluster, event, fields


class ClusterCache:
    """The world's cache of one workload cluster (an informer's view, kept from events)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Obj] = {}
        self.pods: dict[Key, Obj] = {}
        self.pdbs: dict[Key, Obj] = {}
        self.deployments: dict[Key, Obj] = {}
        self.replicasets: dict[Key, Obj] = {}
        self.daemonsets: dict[Key, Obj] = {}
        self.waiting: set[Key] = set()  # Pending pods no node could take yet
        self.pod_counter = 0

    def table(self, key: str) -> dict[Any, Obj]:
        tables: dict[str, dict[Any, Obj]] = {
            NODES.key: self.nodes,
            PODS.key: self.pods,
            PDBS.key: self.pdbs,
            DEPLOYMENTS.key: self.deployments,
            REPLICASETS.key: self.replicasets,
            DAEMONSETS.key: self.daemonsets,
        }
        return tables[key]


class PhysicsBase:
    """The world's shared state and write helpers; see the module docstring."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        clock: Clock,
        scheduler: Scheduler,
        *,
        rng: random.Random,
        latencies: Latencies,
        boot_failure_rate: float = 0.0,
        audit: Audit | None = None,
        time_scale: float = 1.0,
        heartbeats: bool = True,
        infra_contract: str = "v1beta2",
    ) -> None:
        if not 0.0 <= boot_failure_rate <= 1.0:
            raise ValueError(f"boot failure rate must be between 0 and 1, not {boot_failure_rate}")
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.scheduler = scheduler
        self.rng = rng
        self.latencies = latencies
        self.boot_failure_rate = boot_failure_rate
        self.time_scale = time_scale  # for Kubernetes' own periods (grace, heartbeats, drains)
        self.heartbeats = heartbeats
        # The Cluster API contract SimMachines follow (v1beta1: status.ready; v1beta2:
        # status.initialization.provisioned), as the management cluster's version implies.
        self.infra_contract = infra_contract
        self.audit: Audit = audit or _NoAudit()
        self.lock = threading.RLock()
        self._events: deque[Event] = deque()
        self._clusters: dict[str, ClusterCache] = {}
        self._machines: dict[Key, Obj] = {}
        self._started: set[str] = set()  # uids of Machines whose provisioning began
        self._deprovisioning: set[str] = set()  # uids of Machines being torn down
        self._waiting_infra: dict[Key, Key] = {}  # SimMachine (ns, name) -> Machine waiting
        self._dirty_pdb: set[tuple[str, str]] = set()
        self._dirty_rs: set[tuple[str, Key]] = set()
        self._dirty_deploy: set[tuple[str, Key]] = set()
        self._dirty_ds: set[str] = set()
        self._dirty_status: set[tuple[str, str, Key]] = set()  # (cluster, resource key, key)
        self._retry_waiting: set[str] = set()
        # Namespaces of the management cluster whose Cluster API objects (MachineDeployments,
        # MachineSets, topology Clusters) need a reconcile.
        self._dirty_capi: set[str] = set()
        self._capi_wakeups: set[tuple[str, float]] = set()  # (namespace, when) scheduled
        self.errors: list[str] = []  # actions that failed unexpectedly (for tests and logs)

    def cluster(self, name: str) -> ClusterCache:
        c = self._clusters.get(name)
        if c is None:
            c = self._clusters[name] = ClusterCache()
        return c

    def _get(self, cluster: str, rtype: ResourceType, namespace: str, name: str) -> Obj | None:
        try:
            return self.store.get(cluster, rtype, namespace or None, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def _write(
        self,
        fn: Callable[[Obj], Obj],
        cluster: str,
        rtype: ResourceType,
        k: Key,
        *,
        subresource: str | None = None,
    ) -> Obj | None:
        if rtype == MACHINES and subresource == "status":
            fn = self._with_v1beta2_conditions(fn)
        try:
            out = self.store.mutate(
                cluster, rtype, k[0] or None, k[1], fn, subresource=subresource, actor=ACTOR
            )
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        self._remember(cluster, rtype, out)
        return out

    def _with_v1beta2_conditions(self, fn: Callable[[Obj], Obj]) -> Callable[[Obj], Obj]:
        """A Machine status write that also keeps the v1beta2 conditions (in the v1beta1
        view's ``status.v1beta2``) in step, as Cluster API v1.11 writes both shapes."""
        stamp = seed_.rfc3339(self.clock.now())

        def both(o: Obj) -> Obj:
            o = fn(o)
            status = o.setdefault("status", {})
            deleting = bool(o["metadata"].get("deletionTimestamp"))
            conditions = capi.machine_v1beta2_conditions(status, deleting=deleting, stamp=stamp)
            status.setdefault("v1beta2", {})["conditions"] = conditions
            return o

        return both

    def _create(self, cluster: str, rtype: ResourceType, obj: Obj) -> Obj:
        out = self.store.create(cluster, rtype, obj, actor=ACTOR)
        self._remember(cluster, rtype, out)
        return out

    def _remember(self, cluster: str, rtype: ResourceType, obj: Obj) -> None:
        """Our own write, in our cache at once (its event, arriving later, changes nothing)."""
        if cluster == seed_.MANAGEMENT or rtype.key not in TABLES:
            return
        table = self.cluster(cluster).table(rtype.key)
        k = obj["metadata"]["name"] if rtype.key == NODES.key else key_of(obj)
        if (
            obj["metadata"].get("deletionTimestamp")
            and not obj["metadata"].get("finalizers")
            and rtype.key != PODS.key  # a Terminating pod stays until its kubelet deletes it
        ):
            table.pop(k, None)
        else:
            table[k] = obj

    def _delete(
        self, cluster: str, rtype: ResourceType, k: Key, *, grace: int | None = None
    ) -> None:
        try:
            self.store.delete(cluster, rtype, k[0] or None, k[1], actor=ACTOR, grace_period=grace)
        except ApiError as err:
            if err.code != 404:
                raise
        if cluster != seed_.MANAGEMENT and rtype.key in TABLES:
            table = self.cluster(cluster).table(rtype.key)
            left = self._get(cluster, rtype, k[0], k[1]) if rtype.key == PODS.key else None
            if left is not None:
                table[k] = left  # Terminating (graceful deletion): still there until it stops
            else:
                table.pop(k[1] if rtype.key == NODES.key else k, None)

    def _pod_ip(self, cluster: str, c: ClusterCache) -> str:
        del cluster
        c.pod_counter += 1
        n = c.pod_counter
        return f"10.{100 + (n // 65536) % 100}.{(n // 256) % 256}.{n % 256}"


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def with_status(obj: Obj, status: Obj) -> Obj:
    obj["status"] = status
    return obj


def node_ip(node: Obj) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address", ""))
    return ""
