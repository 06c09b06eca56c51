"""Observe the live fleet: watch caches for every cluster, read out as an ``Inventory``.

Adapter layer. Caches of Cluster API Machines, MachineSets and MachineDeployments in the
management cluster (in the version it serves best, ``gitops.kube.capi``), and per workload
cluster (reached through its ``<cluster>-kubeconfig`` Secret) caches of Nodes, Pods and
PodDisruptionBudgets. After the initial LIST of each, observing costs no request: ``inventory``
reads the caches. A cluster that cannot be reached is reported as unreachable with the reason,
and the others are observed as usual.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gitops.errors import GitopsError
from gitops.fleet.wellknown import CLUSTER_NAME_LABEL
from gitops.inventory import ClusterInventory, Inventory, MachineOwner, PodDisruptionBudget
from gitops.kube import capi, translate
from gitops.kube.cache import WatchCache
from gitops.kube.client import Kube, connect_workload
from gitops.kube.refs import MachineRef

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 10.0


@dataclass
class _Workload:
    name: str
    namespace: str
    kube: Kube | None = None
    caches: dict[str, WatchCache] = field(default_factory=dict)
    error: str = ""
    tried: float = 0.0
    translated: tuple[Any, ClusterInventory] | None = None  # (cache versions, inventory)
    memo: translate.Memo = field(default_factory=translate.Memo)  # per-object translations

    def stop(self) -> None:
        for cache in self.caches.values():
            cache.stop()
        _join(self.caches.values())
        if self.kube is not None:
            self.kube.close()


STOP_JOIN_SECONDS = 2.0


def _join(caches: Iterable[WatchCache], timeout: float = STOP_JOIN_SECONDS) -> None:
    """Wait (a little) for stopped caches' threads to end before their client is closed.

    ``WatchCache.stop`` wakes a thread blocked on its stream at once; letting it finish before
    the connection pool closes, or the interpreter exits, keeps daemon threads from running
    into a torn-down client or interpreter. A thread busy in a LIST is not waited for longer.
    """
    deadline = time.monotonic() + timeout
    for cache in caches:
        cache.join(max(0.0, deadline - time.monotonic()))


def _list_capi(management: Kube, plural: str, **kwargs: Any) -> Any:
    """LIST (or WATCH) a Cluster API resource in the version the management cluster speaks best.

    The version is discovered here, on the cache's first list, rather than when the observer
    is built: the cache's thread retries a server that does not answer yet, and so the
    discovery with it.
    """
    version = capi.version(management)
    return management.custom.list_cluster_custom_object(capi.GROUP, version, plural, **kwargs)


class Observer:
    """Watch caches over the whole fleet; ``inventory()`` is cheap once they have synced."""

    def __init__(
        self,
        management: Kube,
        *,
        on_change: Callable[[str, str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.management = management
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0
        self._nudges = 0
        self._workloads: dict[str, _Workload] = {}
        # An unreachable cluster is tried again on the first ``inventory`` after this long.
        self.reconnect_interval = RECONNECT_SECONDS
        self.machines = WatchCache(
            "Machines in the management cluster",
            functools.partial(_list_capi, management, "machines"),
            on_change=self._notify(""),
        ).start()
        # MachineSets and MachineDeployments: their selectors decide which Machines Cluster
        # API would adopt (``gitops.plan.adoption``).
        self.machinesets = WatchCache(
            "MachineSets in the management cluster",
            functools.partial(_list_capi, management, "machinesets"),
            on_change=self._notify(""),
        ).start()
        self.deployments = WatchCache(
            "MachineDeployments in the management cluster",
            functools.partial(_list_capi, management, "machinedeployments"),
            on_change=self._notify(""),
        ).start()

    def _management_caches(self) -> list[WatchCache]:
        return [self.machines, self.machinesets, self.deployments]

    def _notify(self, cluster: str, *, wake: bool = True) -> Callable[[str, dict[str, Any]], None]:
        def changed(kind: str, obj: dict[str, Any]) -> None:
            if wake:
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()
            if self._on_change is not None:
                self._on_change(cluster, kind, obj)

        return changed

    def generation(self) -> int:
        """Grows with every change of a Machine, Node or PodDisruptionBudget; pass it to
        ``wait_changed``.

        Pods are left out: where a pod runs decides nothing the executor waits for (a drain
        waits on the budgets' status, which moves when an evicted pod runs again), and during
        a rollout they change more often than everything else together. ``inventory`` reads
        them as they are all the same.
        """
        return self._generation

    def wait_changed(self, since: int, timeout: float, *, nudged_since: int | None = None) -> int:
        """Block until something changed after ``since`` or ``timeout`` passed.

        With ``nudged_since`` (a ``nudges()`` count), a ``nudge`` after it wakes the wait too.
        """
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._generation > since
                    or (nudged_since is not None and self._nudges > nudged_since)
                ),
                max(0.0, timeout),
            )
            return self._generation

    def nudges(self) -> int:
        """Grows with every ``nudge``; pass it to ``wait_changed(nudged_since=...)``."""
        return self._nudges

    def nudge(self) -> None:
        """Wake ``wait_changed`` callers that asked for it, without counting a cache change.

        The executor nudges when a step of its own finishes: a drain that is still blocked
        changes nothing in the caches, but its backoff is now known.
        """
        with self._changed:
            self._nudges += 1
            self._changed.notify_all()

    def track(self, clusters: Iterable[tuple[str, str]]) -> None:
        """Watch exactly these (cluster, namespace) pairs: start new ones, stop dropped ones."""
        wanted = dict(clusters)
        with self._lock:
            for name in sorted(set(self._workloads) - set(wanted)):
                self._workloads.pop(name).stop()
            for name, namespace in sorted(wanted.items()):
                current = self._workloads.get(name)
                if current is not None and current.namespace != namespace:
                    self._workloads.pop(name).stop()
                if name not in self._workloads:
                    self._workloads[name] = _Workload(name, namespace)
                self._connect(self._workloads[name])

    def _connect(self, workload: _Workload) -> None:
        if workload.kube is not None:
            return
        now = self._clock()
        if workload.tried and now - workload.tried < self.reconnect_interval:
            return
        workload.tried = now
        try:
            kube = connect_workload(self.management, workload.name, workload.namespace)
        except GitopsError as err:
            workload.error = str(err)
            log.warning("Cannot reach cluster %s: %s", workload.name, err)
            return
        workload.kube, workload.error = kube, ""
        notify = self._notify(workload.name)
        workload.caches = {
            "nodes": WatchCache(
                f"Nodes of {workload.name}",
                kube.core.list_node,
                on_change=notify,
                # kubelets report every Node's status every few minutes: at fleet scale that
                # is several changes a second that no decision reads
                quiet=translate.heartbeat_only,
            ),
            "pods": WatchCache(
                f"Pods of {workload.name}",
                kube.core.list_pod_for_all_namespaces,
                on_change=self._notify(workload.name, wake=False),
            ),
            "pdbs": WatchCache(
                f"PodDisruptionBudgets of {workload.name}",
                kube.policy.list_pod_disruption_budget_for_all_namespaces,
                on_change=notify,
            ),
        }
        for cache in workload.caches.values():
            cache.start()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until every reachable cache has listed once; False when ``timeout`` passed."""
        deadline = self._clock() + timeout
        caches = self._management_caches() + [
            c for w in self._workloads.values() for c in w.caches.values()
        ]
        return all(c.wait_synced(max(0.0, deadline - self._clock())) for c in caches)

    def inventory(self, clusters: Iterable[str] | None = None) -> Inventory:
        """The observed state of ``clusters`` (default: all tracked), from the caches."""
        with self._lock:
            for workload in self._workloads.values():
                self._connect(workload)
            names = sorted(self._workloads) if clusters is None else sorted(clusters)
            machines_by_cluster: dict[str, list[dict[str, Any]]] = {}
            if self.machines.synced:
                for obj in self.machines.objects():
                    meta = obj.get("metadata") or {}
                    owner = (meta.get("labels") or {}).get(CLUSTER_NAME_LABEL) or (
                        obj.get("spec") or {}
                    ).get("clusterName")
                    machines_by_cluster.setdefault(str(owner), []).append(obj)
            deployments = _by_cluster(self.deployments.objects()) if self.deployments.synced else {}
            return Inventory(
                tuple(
                    self._observe(
                        name, machines_by_cluster.get(name, []), deployments.get(name, [])
                    )
                    for name in names
                ),
                owners=self._owners(),
            )

    def _owners(self) -> tuple[MachineOwner, ...]:
        """The MachineSets and MachineDeployments, for the adoption guard (none until listed:
        a cluster reads as unreachable until then, so nothing acts on the missing answer)."""
        return tuple(
            translate.machine_owner(obj)
            for cache in (self.machinesets, self.deployments)
            if cache.synced
            for obj in cache.objects()
        )

    def _observe(
        self, name: str, machines: list[dict[str, Any]], deployments: list[dict[str, Any]]
    ) -> ClusterInventory:
        workload = self._workloads.get(name)
        if workload is None:
            return ClusterInventory.unreachable(name, "not tracked")
        if workload.kube is None:
            return ClusterInventory.unreachable(name, workload.error or "not connected yet")
        for management in self._management_caches():
            if not management.synced:
                return ClusterInventory.unreachable(
                    name, f"{management.what} not listed yet: {management.last_error or 'waiting'}"
                )
        for cache in workload.caches.values():
            if not cache.synced:
                return ClusterInventory.unreachable(
                    name, f"{cache.what} not listed yet: {cache.last_error or 'waiting'}"
                )
        # Translating a cluster costs more than planning it: reuse the last translation while
        # none of its caches moved and its Machines are the same versions.
        key = (
            tuple(workload.caches[k].generation for k in ("nodes", "pods", "pdbs")),
            tuple(
                (
                    (m.get("metadata") or {}).get("name"),
                    (m.get("metadata") or {}).get("resourceVersion"),
                )
                for m in machines + deployments
            ),
        )
        if workload.translated is not None and workload.translated[0] == key:
            return workload.translated[1]
        inventory = translate.cluster(
            name,
            nodes=workload.caches["nodes"].objects(),
            machines=machines,
            pods=workload.caches["pods"].objects(),
            pdbs=workload.caches["pdbs"].objects(),
            memo=workload.memo,
            deployments=[
                d
                for d in deployments
                if (d.get("metadata") or {}).get("namespace") == workload.namespace
            ],
        )
        workload.translated = (key, inventory)
        return inventory

    def pdb(self, cluster: str, key: str) -> PodDisruptionBudget | None:
        """The PodDisruptionBudget ``key`` ("namespace/name") of ``cluster`` as its cache holds
        it now, or None."""
        workload = self._workloads.get(cluster)
        cache = workload.caches.get("pdbs") if workload is not None else None
        namespace, _, name = key.partition("/")
        obj = cache.get(namespace, name) if cache is not None else None
        return translate.pdb(obj) if obj is not None else None

    def has_machine(self, ref: MachineRef) -> bool:
        """Whether the Machines cache shows ``ref`` yet."""
        return self.machines.get(ref.namespace, ref.name) is not None

    def workload(self, name: str) -> Kube | None:
        """The client of a tracked, connected workload cluster."""
        workload = self._workloads.get(name)
        return workload.kube if workload is not None else None

    def stats(self) -> dict[str, int]:
        caches = self._management_caches() + [
            c for w in self._workloads.values() for c in w.caches.values()
        ]
        return {
            "lists": sum(c.lists for c in caches),
            "watches": sum(c.watches for c in caches),
            "events": sum(c.events for c in caches),
        }

    def stop(self) -> None:
        for cache in self._management_caches():
            cache.stop()
        _join(self._management_caches())
        with self._lock:
            for workload in self._workloads.values():
                workload.stop()
            self._workloads.clear()


def _by_cluster(objects: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Management-cluster objects by the workload cluster they belong to (label, else spec)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        owner = labels.get(CLUSTER_NAME_LABEL) or (obj.get("spec") or {}).get("clusterName")
        grouped.setdefault(str(owner), []).append(obj)
    return grouped
