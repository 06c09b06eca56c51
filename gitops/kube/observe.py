"""Observe the live fleet: watch caches for every cluster, read out as an ``Inventory``.

Adapter layer. Caches of Cluster API Machines, MachineSets and MachineDeployments in the
management cluster (in the version it serves best, ``gitops.kube.capi``), and per workload
cluster (reached through its ``<cluster>-kubeconfig`` Secret) caches of Nodes and
PodDisruptionBudgets. Every cache keeps compact records (``gitops.kube.translate``), not the
objects. After the initial LIST of each, observing costs no request: ``inventory`` reads the
caches. A cluster that cannot be reached is reported as unreachable with the reason, and the
others are observed as usual.

Pods are not cached: at fleet scale they outnumber everything else, and only a drain needs
them, for the one node it drains (``gitops.kube.actions.pods_on_node``, by field selector).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from gitops.errors import GitopsError
from gitops.fleet.wellknown import CLUSTER_NAME_LABEL
from gitops.inventory import (
    ClusterInventory,
    Inventory,
    Machine,
    MachineDeployment,
    MachineOwner,
    Node,
    PodDisruptionBudget,
)
from gitops.kube import capi, translate
from gitops.kube.cache import WatchCache
from gitops.kube.client import Kube, connect_workload
from gitops.kube.refs import MachineRef
from gitops.kube.translate import Managed

log = logging.getLogger(__name__)
T = TypeVar("T")

RECONNECT_SECONDS = 10.0


@dataclass
class _Workload:
    name: str
    namespace: str
    kube: Kube | None = None
    nodes: WatchCache[Node] | None = None
    pdbs: WatchCache[PodDisruptionBudget] | None = None
    error: str = ""
    tried: float = 0.0
    translated: tuple[Any, ClusterInventory] | None = None  # (cache versions, inventory)

    @property
    def caches(self) -> list[WatchCache[Any]]:
        return [c for c in (self.nodes, self.pdbs) if c is not None]

    def stop(self) -> None:
        for cache in self.caches:
            cache.stop()
        _join(self.caches)
        if self.kube is not None:
            self.kube.close()


STOP_JOIN_SECONDS = 2.0


def _join(caches: Iterable[WatchCache[Any]], timeout: float = STOP_JOIN_SECONDS) -> None:
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
        on_change: Callable[[str, str, object], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        selected: Iterable[str] | None = None,
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
        # label selector -> the clusters it selects (None: all); see ``select``
        self._selections: dict[str, frozenset[str] | None] = {"": None}
        self.machines: WatchCache[Managed[Machine]] = WatchCache(
            "Machines in the management cluster",
            functools.partial(_list_capi, management, "machines"),
            on_change=self._notify(""),
            project=translate.managed_machine,
        )
        # MachineSets and MachineDeployments: their selectors decide which Machines Cluster
        # API would adopt (``gitops.plan.adoption``).
        self.machinesets: WatchCache[Managed[MachineOwner]] = WatchCache(
            "MachineSets in the management cluster",
            functools.partial(_list_capi, management, "machinesets"),
            on_change=self._notify(""),
            project=translate.managed_owner,
        )
        self.deployments: WatchCache[Managed[tuple[MachineOwner, MachineDeployment]]] = WatchCache(
            "MachineDeployments in the management cluster",
            functools.partial(_list_capi, management, "machinedeployments"),
            on_change=self._notify(""),
            project=translate.managed_deployment,
        )
        if selected is not None:
            self.select(selected)
        for cache in self._management_caches():
            cache.start()

    def select(self, clusters: Iterable[str] | None) -> None:
        """Keep the Machines, MachineSets and MachineDeployments of these clusters only (a
        sharded replica's own; None: all of them), selected by the API server by their
        ``cluster.x-k8s.io/cluster-name`` label.

        The caches list again with the new selector; a cluster they have not listed for yet
        reads as unreachable until they have, so nothing acts on its missing Machines.
        """
        chosen = None if clusters is None else frozenset(clusters)
        selector = cluster_selector(chosen)
        with self._lock:
            listed = {c.listed_selector for c in self._management_caches()}
            self._selections = {k: v for k, v in self._selections.items() if k in listed} | {
                selector: chosen
            }
        for cache in self._management_caches():
            cache.select(selector)

    def _covers(self, cache: WatchCache[Any], cluster: str) -> bool:
        if cache.listed_selector is None:
            return False
        selected = self._selections.get(cache.listed_selector, frozenset())
        return selected is None or cluster in selected

    def _management_caches(self) -> list[WatchCache[Any]]:
        return [self.machines, self.machinesets, self.deployments]

    def _notify(self, cluster: str) -> Callable[[str, object], None]:
        def changed(kind: str, record: object) -> None:
            with self._changed:
                self._generation += 1
                self._changed.notify_all()
            if self._on_change is not None:
                self._on_change(cluster, kind, record)

        return changed

    def generation(self) -> int:
        """Grows with every change of a Machine, Node or PodDisruptionBudget that the
        inventory shows; pass it to ``wait_changed``."""
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
        workload.nodes = WatchCache(
            f"Nodes of {workload.name}",
            kube.core.list_node,
            on_change=notify,
            project=translate.node,
            # kubelets report every Node's status every few minutes: at fleet scale that is
            # several changes a second that change no record (heartbeat times are not kept)
            quiet=True,
        )
        workload.pdbs = WatchCache(
            f"PodDisruptionBudgets of {workload.name}",
            kube.policy.list_pod_disruption_budget_for_all_namespaces,
            on_change=notify,
            project=translate.pdb,
        )
        for cache in workload.caches:
            cache.start()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until every reachable cache has listed (the management caches with their current
        selection); False when ``timeout`` passed."""
        deadline = self._clock() + timeout
        caches = self._management_caches() + [c for w in self._workloads.values() for c in w.caches]
        return all(c.wait_synced(max(0.0, deadline - self._clock())) for c in caches)

    def inventory(self, clusters: Iterable[str] | None = None) -> Inventory:
        """The observed state of ``clusters`` (default: all tracked), from the caches."""
        with self._lock:
            for workload in self._workloads.values():
                self._connect(workload)
            names = sorted(self._workloads) if clusters is None else sorted(clusters)
            machines = _by_cluster(self.machines.objects()) if self.machines.synced else {}
            deployments = _by_cluster(self.deployments.objects()) if self.deployments.synced else {}
            return Inventory(
                tuple(
                    self._observe(name, machines.get(name, []), deployments.get(name, []))
                    for name in names
                ),
                owners=self._owners(),
            )

    def _owners(self) -> tuple[MachineOwner, ...]:
        """The MachineSets and MachineDeployments, for the adoption guard (none until listed:
        a cluster reads as unreachable until then, so nothing acts on the missing answer)."""
        owners = [r.value for r in self.machinesets.objects()] if self.machinesets.synced else []
        if self.deployments.synced:
            owners += [r.value[0] for r in self.deployments.objects()]
        return tuple(owners)

    def _observe(
        self,
        name: str,
        machines: list[Machine],
        deployments: list[tuple[MachineOwner, MachineDeployment]],
    ) -> ClusterInventory:
        workload = self._workloads.get(name)
        if workload is None:
            return ClusterInventory.unreachable(name, "not tracked")
        if workload.kube is None or workload.nodes is None or workload.pdbs is None:
            return ClusterInventory.unreachable(name, workload.error or "not connected yet")
        for cache in workload.caches:
            if not cache.synced:
                return ClusterInventory.unreachable(
                    name, f"{cache.what} not listed yet: {cache.last_error or 'waiting'}"
                )
        for cache in self._management_caches():
            if not self._covers(cache, name):
                return ClusterInventory.unreachable(
                    name,
                    f"{cache.what} not listed for {name} yet: {cache.last_error or 'waiting'}",
                )
        owned = [d for _, d in deployments if d.namespace == workload.namespace]
        # Building a cluster's inventory costs more than planning it: reuse the last one while
        # none of its caches moved and its Machines are the same records. A cache replaces a
        # record whenever its object changes, so comparing the tuples is mostly identity checks.
        key = (workload.nodes.generation, workload.pdbs.generation, tuple(machines), tuple(owned))
        if workload.translated is not None and workload.translated[0] == key:
            return workload.translated[1]
        inventory = ClusterInventory.build(
            name,
            nodes=workload.nodes.objects(),
            machines=machines,
            pdbs=workload.pdbs.objects(),
            deployments=owned,
        )
        workload.translated = (key, inventory)
        return inventory

    def pdb(self, cluster: str, key: str) -> PodDisruptionBudget | None:
        """The PodDisruptionBudget ``key`` ("namespace/name") of ``cluster`` as its cache holds
        it now, or None."""
        workload = self._workloads.get(cluster)
        cache = workload.pdbs if workload is not None else None
        namespace, _, name = key.partition("/")
        return cache.get(namespace, name) if cache is not None else None

    def has_machine(self, ref: MachineRef) -> bool:
        """Whether the Machines cache shows ``ref`` yet."""
        return self.machines.get(ref.namespace, ref.name) is not None

    def workload(self, name: str) -> Kube | None:
        """The client of a tracked, connected workload cluster."""
        workload = self._workloads.get(name)
        return workload.kube if workload is not None else None

    def stats(self) -> dict[str, int]:
        caches = self._management_caches() + [c for w in self._workloads.values() for c in w.caches]
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


def cluster_selector(clusters: frozenset[str] | None) -> str:
    """The label selector of the management-cluster objects of ``clusters`` ("" for all)."""
    if clusters is None:
        return ""
    if not clusters:  # a requirement that no object meets ("in ()" does not parse)
        return f"{CLUSTER_NAME_LABEL},!{CLUSTER_NAME_LABEL}"
    return f"{CLUSTER_NAME_LABEL} in ({','.join(sorted(clusters))})"


def _by_cluster(records: Iterable[Managed[T]]) -> dict[str, list[T]]:
    """Management-cluster records by the workload cluster they belong to."""
    grouped: dict[str, list[T]] = {}
    for record in records:
        grouped.setdefault(record.cluster, []).append(record.value)
    return grouped
