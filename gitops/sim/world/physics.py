"""Physics: what happens in the simulated world on its own, after the objects are seeded.

Tool layer (``gitops.sim``), world side. ``Physics`` plays the controllers and machines a real
fleet has, reacting to the store's events:

* the infrastructure provider and Cluster API's Machine controller: a new Machine gets its
  ``SimMachine`` (cloned from a ``SimMachineTemplate`` when its infrastructureRef names one),
  goes Provisioning -> Provisioned -> Running; after the provisioning latency its Node registers
  NotReady (nodeInfo from the image the SimMachine boots, labels of the ``node.cluster.x-k8s.io``
  domain copied from the Machine, the pool's labels and taints), and after the boot latency turns
  Ready, unless the seeded dice say the boot failed. A Machine being deleted has its Node
  drained first (cordon, evictions through the PDBs every 20 s until no pod is left, unless
  ``spec.nodeDrainTimeout`` passes or the exclude-node-draining annotation says not to), then
  loses its Node after the deprovision latency, then its SimMachine and finalizer;
* the kubelet and the pod garbage collector: pods start on Ready nodes and go with their node;
  a pod deleted gracefully (Terminating) is removed at the end of its grace period; every
  node renews its Lease every 10 s and reports its status every 5 minutes (heartbeats);
* the scheduler, the ReplicaSet, Deployment and DaemonSet controllers: missing replicas are
  recreated Pending at once and bound to a schedulable node they tolerate after the reschedule
  latency; DaemonSet pods follow nodes;
* the disruption controller (PDB status) and the eviction subresource's decision.

Threading: the store calls ``on_event`` on the writer's thread; it only queues the event.
``run_pending`` (the world's physics thread, or ``ManualClock.advance`` in tests) applies queued
events to the world's own caches, then runs due actions, under the world's lock. Actions write
to the store while holding that lock, which is safe because ``on_event`` never takes it. It must
never sleep, never read the wall clock (only its ``Clock``) and never draw randomness other than
from its seeded ``random.Random``. Kubernetes' own periods (grace periods, heartbeats, drain
retries, ``nodeDrainTimeout``) are multiplied by the time scale, as the latencies are.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from gitops.fleet import Fleet
from gitops.fleet.quantities import parse_duration
from gitops.fleet.wellknown import MACHINE_ANNOTATION, POOL_LABEL, REPLACES_ANNOTATION, ZONE_LABEL
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    DAEMONSETS,
    DEPLOYMENTS,
    LEASES,
    MACHINES,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.api.selectors import selector_matches
from gitops.sim.api.store import Event, Store
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads as wl
from gitops.sim.world.clock import Clock, Scheduler

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
NODE_DOMAIN = "node.cluster.x-k8s.io"
ACTOR = "sim-world"
PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget."
TOO_MANY_PDBS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
# Kubernetes' own periods, in seconds at time scale 1 (the world multiplies them by its scale).
LEASE_RENEW_SECONDS = 10.0  # kubelet: leaseDurationSeconds x renewIntervalFraction (0.25)
LEASE_DURATION_SECONDS = 40  # kubelet --node-lease-duration-seconds
NODE_STATUS_REPORT_SECONDS = 300.0  # kubelet nodeStatusReportFrequency (status unchanged)
DRAIN_RETRY_SECONDS = 20.0  # Cluster API's machine controller: drainRetryInterval
NODE_LEASE_NAMESPACE = "kube-node-lease"
EXCLUDE_DRAIN_ANNOTATION = "machine.cluster.x-k8s.io/exclude-node-draining"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_TABLES = frozenset(r.key for r in (NODES, PODS, PDBS, DEPLOYMENTS, REPLICASETS, DAEMONSETS))
_WATCHED = _TABLES | {MACHINES.key, SIMMACHINES.key}


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


class _Cluster:
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


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _rv(obj: Obj) -> int:
    return int(obj["metadata"].get("resourceVersion") or 0)


class Physics:
    """The simulated controllers and machines; see the module docstring."""

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
        self.audit: Audit = audit or _NoAudit()
        self.lock = threading.RLock()
        self._events: deque[Event] = deque()
        self._clusters: dict[str, _Cluster] = {}
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
        self.errors: list[str] = []  # actions that failed unexpectedly (for tests and logs)

    # ------------------------------------------------------------------ wiring

    def cluster(self, name: str) -> _Cluster:
        c = self._clusters.get(name)
        if c is None:
            c = self._clusters[name] = _Cluster()
        return c

    def load(self, known: Iterable[tuple[str, str, Obj]] | None = None) -> None:
        """Fill the caches and compute every status once, after seeding.

        ``known`` are (cluster, resource key, stored object) as the seeding created them, which
        saves listing the whole store again; without it the store is listed.
        """
        if known is None:
            known = [
                (name, rtype.key, obj)
                for name in self.store.clusters()
                for rtype in (
                    (MACHINES,)
                    if name == seed_.MANAGEMENT
                    else (NODES, PODS, PDBS, DEPLOYMENTS, REPLICASETS, DAEMONSETS)
                )
                for obj in self.store.list(name, rtype)[0]
            ]
        with self.lock:
            for name, rkey, obj in known:
                if name == seed_.MANAGEMENT:
                    if rkey == MACHINES.key:
                        self._machines[_key(obj)] = obj
                        if (obj.get("status") or {}).get("nodeRef"):
                            self._started.add(obj["metadata"]["uid"])
                elif rkey in _TABLES:
                    table = self.cluster(name).table(rkey)
                    table[obj["metadata"]["name"] if rkey == NODES.key else _key(obj)] = obj
            for name in self.store.clusters():
                if name == seed_.MANAGEMENT:
                    continue
                c = self.cluster(name)
                for ns, _ in c.pdbs:
                    self._dirty_pdb.add((name, ns))
                for k in c.replicasets:
                    self._dirty_rs.add((name, k))
                    self._dirty_status.add((name, REPLICASETS.key, k))
                for k in c.deployments:
                    self._dirty_status.add((name, DEPLOYMENTS.key, k))
                for k in c.daemonsets:
                    self._dirty_status.add((name, DAEMONSETS.key, k))
                self._dirty_ds.add(name)
                for k, p in c.pods.items():
                    if (
                        not p["spec"].get("nodeName")
                        and (p.get("status") or {}).get("phase") == "Pending"
                    ):
                        c.waiting.add(k)
                self._retry_waiting.add(name)
            for m in self._machines.values():
                self._machine_seen(m, None)
            for name in self.store.clusters():
                if name != seed_.MANAGEMENT:
                    for node_name, node in sorted(self.cluster(name).nodes.items()):
                        self._start_kubelet(name, node_name, node["metadata"]["uid"])

    def on_event(self, ev: Event) -> None:
        """Store subscriber: queue the event (never blocks, never takes the world's lock)."""
        if ev.resource.key in _WATCHED:
            self._events.append(ev)
            self.scheduler.wakeup.set()

    def next_due(self) -> float | None:
        if self._events:
            return self.clock.now()
        return self.scheduler.next_due()

    def run_pending(self) -> None:
        """Apply queued events, reconcile what they dirtied, run due actions; until quiet."""
        with self.lock:
            for _ in range(100_000):
                progressed = self._drain()
                if self._reconcile_dirty():
                    progressed = True
                action = self.scheduler.pop_due()
                if action is not None:
                    self._guarded(action)
                    progressed = True
                if not progressed:
                    return

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except ApiError as err:
            # The world raced a client (an object deleted or changed meanwhile): the next event
            # brings the world up to date, as a real controller would requeue.
            self.errors.append(f"{getattr(action, '__name__', action)}: {err.code} {err.message}")

    # ------------------------------------------------------------------ events -> caches

    def _drain(self) -> bool:
        seen = False
        while self._events:
            ev = self._events.popleft()
            seen = True
            if ev.cluster == seed_.MANAGEMENT:
                self._management_event(ev)
            else:
                self._workload_event(ev)
        return seen

    def _management_event(self, ev: Event) -> None:
        if ev.resource is SIMMACHINES or ev.resource.key == SIMMACHINES.key:
            if ev.type == "ADDED":
                waiting = self._waiting_infra.pop(_key(ev.object), None)
                if waiting is not None:
                    self.scheduler.call_later(0.0, partial(self._start_machine, waiting))
            return
        if ev.resource.key != MACHINES.key:
            return
        obj, k = ev.object, _key(ev.object)
        old = self._machines.get(k)
        if old is not None and _rv(old) > ev.resource_version:
            return
        if ev.type == "DELETED":
            self._machines.pop(k, None)
            self.audit.change(
                cluster=obj["spec"].get("clusterName", ""),
                event="machine-deleted",
                namespace=k[0],
                name=k[1],
                machine=k[1],
                pool=(obj["metadata"].get("labels") or {}).get(POOL_LABEL, ""),
                node=((obj.get("status") or {}).get("nodeRef") or {}).get("name", ""),
            )
            uid = obj["metadata"]["uid"]
            if uid not in self._deprovisioning:
                self._deprovisioning.add(uid)
                self.scheduler.call_later(self.latencies.deprovision, partial(self._teardown, obj))
            return
        self._machines[k] = obj
        self._machine_seen(obj, ev.old if ev.type == "MODIFIED" else None)

    def _machine_seen(self, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        k = _key(obj)
        if meta.get("deletionTimestamp"):
            if uid not in self._deprovisioning:
                self._deprovisioning.add(uid)
                self.scheduler.call_later(0.0, lambda: self._mark_deleting(k))
                self.scheduler.call_later(0.0, partial(self._drain_machine, k, uid))
            return
        if uid in self._started:
            return
        self._started.add(uid)
        self.audit.change(
            cluster=(obj.get("spec") or {}).get("clusterName", ""),
            event="machine-created",
            namespace=k[0],
            name=k[1],
            machine=k[1],
            pool=(meta.get("labels") or {}).get(POOL_LABEL, ""),
            # The node a controller made this machine to replace: invariant checkers pair them.
            replaces=(meta.get("annotations") or {}).get(REPLACES_ANNOTATION, ""),
        )
        self.scheduler.call_later(0.0, lambda: self._start_machine(k))

    def _workload_event(self, ev: Event) -> None:
        c = self.cluster(ev.cluster)
        rkey = ev.resource.key
        if rkey not in _TABLES:
            return
        table = c.table(rkey)
        obj = ev.object
        k: Any = obj["metadata"]["name"] if rkey == NODES.key else _key(obj)
        cached = table.get(k)
        if cached is not None and _rv(cached) > ev.resource_version:
            pass  # the cache already holds a newer state (the load, or our own later write)
        elif ev.type == "DELETED":
            table.pop(k, None)
        else:
            table[k] = obj
        # Reactions judge the change as it happened, whatever the cache holds by now.
        before = ev.old if ev.type == "MODIFIED" else None
        handler = {
            NODES.key: self._node_event,
            PODS.key: self._pod_event,
            PDBS.key: self._pdb_event,
            DEPLOYMENTS.key: self._deployment_event,
            REPLICASETS.key: self._replicaset_event,
            DAEMONSETS.key: self._daemonset_event,
        }[rkey]
        handler(ev.cluster, c, ev.type, obj, before)

    def _node_event(
        self, cluster: str, c: _Cluster, etype: str, node: Obj, before: Obj | None
    ) -> None:
        name = node["metadata"]["name"]
        labels = node["metadata"].get("labels") or {}
        annotations = node["metadata"].get("annotations") or {}
        if etype == "DELETED":
            self.audit.change(
                cluster=cluster,
                event="node-removed",
                node=name,
                machine=annotations.get(MACHINE_ANNOTATION, ""),
                pool=labels.get(POOL_LABEL, ""),
            )
            self.scheduler.call_later(0.0, lambda: self._collect_pods(cluster, name))
            return
        if before is not None and _heartbeat_only(before, node):
            return  # the kubelet's periodic status report: nothing for the controllers to do
        if etype == "ADDED" or before is None:
            self._start_kubelet(cluster, name, node["metadata"]["uid"])
            self.audit.change(
                cluster=cluster,
                event="node-registered",
                node=name,
                machine=annotations.get(MACHINE_ANNOTATION, ""),
                pool=labels.get(POOL_LABEL, ""),
                zone=labels.get(ZONE_LABEL, ""),
            )
        was_ready = before is not None and wl.node_ready(before)
        was_cordoned = before is not None and bool((before.get("spec") or {}).get("unschedulable"))
        ready = wl.node_ready(node)
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        if ready and not was_ready:
            self.audit.change(
                cluster=cluster, event="node-ready", node=name, pool=labels.get(POOL_LABEL, "")
            )
            self.scheduler.call_later(0.0, lambda: self._kubelet_sync(cluster, name))
        if before is not None and cordoned != was_cordoned:
            self.audit.change(
                cluster=cluster,
                event="node-cordoned" if cordoned else "node-uncordoned",
                node=name,
                pool=labels.get(POOL_LABEL, ""),
            )
        taints = (node.get("spec") or {}).get("taints") or []
        has_taint = any(t.get("key") == seed_.UNSCHEDULABLE_TAINT["key"] for t in taints)
        if cordoned != has_taint:
            self.scheduler.call_later(0.0, lambda: self._sync_unschedulable_taint(cluster, name))
        self._dirty_ds.add(cluster)
        self._retry_waiting.add(cluster)

    def _pod_event(
        self, cluster: str, c: _Cluster, etype: str, pod: Obj, before: Obj | None
    ) -> None:
        k = _key(pod)
        self._dirty_pdb.add((cluster, k[0]))
        ref = wl.controller_of(pod)
        if ref is not None:
            owner_key = (k[0], ref.get("name", ""))
            if ref.get("kind") == "ReplicaSet":
                self._dirty_status.add((cluster, REPLICASETS.key, owner_key))
                rs = c.replicasets.get(owner_key)
                deploy_ref = wl.controller_of(rs) if rs is not None else None
                if deploy_ref is not None:
                    self._dirty_status.add((cluster, DEPLOYMENTS.key, (k[0], deploy_ref["name"])))
            elif ref.get("kind") == "DaemonSet":
                self._dirty_status.add((cluster, DAEMONSETS.key, owner_key))
        if etype == "DELETED":
            c.waiting.discard(k)
            if ref is not None and ref.get("kind") == "ReplicaSet":
                self._dirty_rs.add((cluster, (k[0], ref.get("name", ""))))
            elif ref is not None and ref.get("kind") == "DaemonSet":
                self.scheduler.call_later(
                    self.latencies.reschedule, lambda: self._dirty_ds.add(cluster)
                )
            return
        phase = (pod.get("status") or {}).get("phase")
        node = pod["spec"].get("nodeName")
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            was = (before or {}).get("metadata") or {}
            if grace is not None and (
                not was.get("deletionTimestamp") or was.get("deletionGracePeriodSeconds") != grace
            ):
                # Terminating: the ReplicaSet no longer counts it (a replacement is made now)
                # and its kubelet stops it when the grace period ends.
                if ref is not None and ref.get("kind") == "ReplicaSet":
                    self._dirty_rs.add((cluster, (k[0], ref.get("name", ""))))
                uid = pod["metadata"]["uid"]
                self.scheduler.call_later(
                    float(grace) * self.time_scale,
                    partial(self._pod_terminated, cluster, k, uid, grace),
                )
            return
        if etype == "ADDED" and not node and phase in (None, "Pending"):
            self.scheduler.call_later(self.latencies.reschedule, lambda: self._bind(cluster, k))
        elif node and phase in (None, "Pending"):
            n = c.nodes.get(node)
            if n is not None and wl.node_ready(n):
                self.scheduler.call_later(0.0, lambda: self._kubelet_sync(cluster, node))

    def _pdb_event(
        self, cluster: str, c: _Cluster, etype: str, pdb: Obj, before: Obj | None
    ) -> None:
        del c
        if etype == "DELETED":
            return
        status = pdb.get("status") or {}
        if before is None or status.get("observedGeneration") != pdb["metadata"].get("generation"):
            self._dirty_pdb.add((cluster, pdb["metadata"]["namespace"]))

    def _deployment_event(
        self, cluster: str, c: _Cluster, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_deploy.add((cluster, _key(obj)))
        self._dirty_pdb.add((cluster, obj["metadata"]["namespace"]))

    def _replicaset_event(
        self, cluster: str, c: _Cluster, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_rs.add((cluster, _key(obj)))
            self._dirty_status.add((cluster, REPLICASETS.key, _key(obj)))
        self._dirty_pdb.add((cluster, obj["metadata"]["namespace"]))

    def _daemonset_event(
        self, cluster: str, c: _Cluster, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_ds.add(cluster)
            self._dirty_status.add((cluster, DAEMONSETS.key, _key(obj)))

    # ------------------------------------------------------------------ controllers

    def _reconcile_dirty(self) -> bool:
        did = False
        while self._dirty_deploy:
            cluster, k = self._dirty_deploy.pop()
            self._guarded(partial(self._reconcile_deployment, cluster, k))
            did = True
        while self._dirty_rs:
            cluster, k = self._dirty_rs.pop()
            self._guarded(partial(self._reconcile_replicaset, cluster, k))
            did = True
        while self._dirty_ds:
            cluster = self._dirty_ds.pop()
            self._guarded(partial(self._reconcile_daemonsets, cluster))
            did = True
        while self._retry_waiting:
            cluster = self._retry_waiting.pop()
            c = self.cluster(cluster)
            for k in sorted(c.waiting):
                self._guarded(partial(self._bind, cluster, k))
            did = True
        if self._events:
            return True  # let the caches catch up before computing statuses
        while self._dirty_pdb:
            cluster, ns = self._dirty_pdb.pop()
            self._guarded(partial(self._update_pdbs, cluster, ns))
            did = True
        while self._dirty_status:
            cluster, rkey, k = self._dirty_status.pop()
            self._guarded(partial(self._update_workload_status, cluster, rkey, k))
            did = True
        return did

    def _owned(self, c: _Cluster, uid: str) -> list[tuple[Key, Obj]]:
        return [
            (k, p)
            for k, p in sorted(c.pods.items())
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]

    def _reconcile_deployment(self, cluster: str, k: Key) -> None:
        c = self.cluster(cluster)
        deploy = c.deployments.get(k)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return
        uid = deploy["metadata"]["uid"]
        wanted = wl.replicaset(deploy)
        wanted["metadata"]["ownerReferences"][0]["uid"] = uid
        replicas = int(deploy["spec"].get("replicas", 1))
        found = False
        for rk, rs in sorted(c.replicasets.items()):
            if not any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or []):
                continue
            target = replicas if rs["metadata"]["name"] == wanted["metadata"]["name"] else 0
            found = found or (
                target == replicas and rs["metadata"]["name"] == wanted["metadata"]["name"]
            )
            if int(rs["spec"].get("replicas", 0)) != target:
                self._write(partial(_set_replicas, replicas=target), cluster, REPLICASETS, rk)
        if not found:
            self._create(cluster, REPLICASETS, wanted)

    def _reconcile_replicaset(self, cluster: str, k: Key) -> None:
        c = self.cluster(cluster)
        rs = c.replicasets.get(k)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        live = [
            (pk, p)
            for pk, p in self._owned(c, rs["metadata"]["uid"])
            if not p["metadata"].get("deletionTimestamp")
        ]
        want = int(rs["spec"].get("replicas", 1))
        for _ in range(want - len(live)):
            name = self._pod_name(c, rs["metadata"]["name"], k[0])
            new = wl.pod(rs, name, node=None, when=self.clock.now())
            self._create(cluster, PODS, new)
        if len(live) > want:
            # Scale down as the ReplicaSet controller does: unscheduled, then not ready first.
            ranked = sorted(
                live,
                key=lambda kp: (bool(kp[1]["spec"].get("nodeName")), wl.pod_ready(kp[1]), kp[0]),
            )
            for pk, _ in ranked[: len(live) - want]:
                self._delete(cluster, PODS, pk)

    def _reconcile_daemonsets(self, cluster: str) -> None:
        c = self.cluster(cluster)
        for dk, ds in sorted(c.daemonsets.items()):
            if ds["metadata"].get("deletionTimestamp"):
                continue
            pods = self._owned(c, ds["metadata"]["uid"])
            on: dict[str, Key] = {}
            for pk, p in pods:
                node = p["spec"].get("nodeName") or ""
                if node not in c.nodes and not p["metadata"].get("deletionTimestamp"):
                    self._delete(cluster, PODS, pk, grace=0)
                    continue
                on[node] = pk
            template_spec = ds["spec"]["template"]["spec"]
            for name, node in sorted(c.nodes.items()):
                if name in on or not wl.fits(template_spec, node, daemon=True):
                    continue
                pod_name = self._pod_name(c, ds["metadata"]["name"], dk[0])
                c.pod_counter += 1
                new = wl.pod(
                    ds,
                    pod_name,
                    node=name,
                    when=self.clock.now(),
                    ip=self._pod_ip(cluster, c),
                    host_ip=_node_ip(node),
                    running=wl.node_ready(node),
                )
                self._create(cluster, PODS, new)

    def _bind(self, cluster: str, k: Key) -> None:
        """The scheduler (and the kubelet starting the containers), for one Pending pod."""
        c = self.cluster(cluster)
        pod = c.pods.get(k)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            c.waiting.discard(k)
            return
        pods_on: dict[str, int] = {}
        owner_on: dict[tuple[str, str], int] = {}
        for p in c.pods.values():
            node = p["spec"].get("nodeName")
            if node:
                pods_on[node] = pods_on.get(node, 0) + 1
                ref = wl.controller_of(p)
                if ref is not None:
                    owner_on[(ref.get("uid", ""), node)] = (
                        owner_on.get((ref.get("uid", ""), node), 0) + 1
                    )
        ref = wl.controller_of(pod)
        owner = ref.get("uid", "") if ref else ""
        target = wl.pick_node(pod["spec"], owner, c.nodes.values(), pods_on, owner_on, self.rng)
        now = self.clock.now()
        if target is None:
            first = k not in c.waiting
            c.waiting.add(k)
            if first:
                message = wl.unschedulable_message(len(c.nodes))
                self._write(
                    lambda o: _with_status(o, wl.pending_status(now, message)),
                    cluster,
                    PODS,
                    k,
                    subresource="status",
                )
            return
        c.waiting.discard(k)
        ip = self._pod_ip(cluster, c)
        host = _node_ip(c.nodes[target])

        def bind(o: Obj) -> Obj:
            o["spec"]["nodeName"] = target
            o["status"] = wl.running_status(o["spec"], now, ip, host)
            return o

        self._write(bind, cluster, PODS, k)
        self._write(
            lambda o: _with_status(o, wl.running_status(o["spec"], now, ip, host)),
            cluster,
            PODS,
            k,
            subresource="status",
        )
        self.audit.change(
            cluster=cluster,
            event="pod-rescheduled",
            namespace=k[0],
            name=k[1],
            node=target,
            owner=(ref or {}).get("name", ""),
        )

    def _kubelet_sync(self, cluster: str, node_name: str) -> None:
        """Start the pods bound to a Ready node that are still Pending."""
        c = self.cluster(cluster)
        node = c.nodes.get(node_name)
        if node is None or not wl.node_ready(node):
            return
        host = _node_ip(node)
        now = self.clock.now()
        for k, p in sorted(c.pods.items()):
            if p["spec"].get("nodeName") != node_name or p["metadata"].get("deletionTimestamp"):
                continue
            if (p.get("status") or {}).get("phase") not in (None, "Pending"):
                continue
            ip = self._pod_ip(cluster, c)
            self._write(
                partial(_start_containers, when=now, ip=ip, host=host),
                cluster,
                PODS,
                k,
                subresource="status",
            )

    def _start_kubelet(self, cluster: str, node_name: str, uid: str) -> None:
        """A node's kubelet: it renews the node's Lease every ``LEASE_RENEW_SECONDS`` and
        reports the node's status every ``NODE_STATUS_REPORT_SECONDS`` (both scaled), from a
        phase of its own (real kubelets are not in step), for as long as the node exists."""
        if not self.heartbeats:
            return
        phase = _phase(f"{cluster}/{node_name}")
        self.scheduler.call_later(
            phase * LEASE_RENEW_SECONDS * self.time_scale,
            partial(self._renew_lease, cluster, node_name, uid),
        )
        self.scheduler.call_later(
            phase * NODE_STATUS_REPORT_SECONDS * self.time_scale,
            partial(self._report_status, cluster, node_name, uid),
        )

    def _kubelet_alive(self, cluster: str, node_name: str, uid: str) -> bool:
        node = self.cluster(cluster).nodes.get(node_name)
        return node is not None and node["metadata"]["uid"] == uid

    def _renew_lease(self, cluster: str, node_name: str, uid: str) -> None:
        if not self._kubelet_alive(cluster, node_name, uid):
            return  # the node is gone (its Lease goes with it: the Node owns it)
        self.scheduler.call_later(
            LEASE_RENEW_SECONDS * self.time_scale,
            partial(self._renew_lease, cluster, node_name, uid),
        )
        renew = _micro_time(self.clock.now())

        def renewed(o: Obj) -> Obj:
            o.setdefault("spec", {})["renewTime"] = renew
            return o

        if self._write(renewed, cluster, LEASES, (NODE_LEASE_NAMESPACE, node_name)) is not None:
            return
        lease: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": node_name,
                "namespace": NODE_LEASE_NAMESPACE,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": uid}
                ],
            },
            "spec": {
                "holderIdentity": node_name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": renew,
            },
        }
        try:
            self._create(cluster, LEASES, lease)
        except ApiError as err:
            if err.code not in (404, 409):  # 404: no kube-node-lease namespace (yet)
                raise

    def _report_status(self, cluster: str, node_name: str, uid: str) -> None:
        if not self._kubelet_alive(cluster, node_name, uid):
            return
        self.scheduler.call_later(
            NODE_STATUS_REPORT_SECONDS * self.time_scale,
            partial(self._report_status, cluster, node_name, uid),
        )
        stamp = seed_.rfc3339(self.clock.now())

        def report(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status["conditions"] = [
                {**c, "lastHeartbeatTime": stamp} for c in status.get("conditions") or []
            ]
            return o

        self._write(report, cluster, NODES, ("", node_name), subresource="status")

    def _pod_terminated(self, cluster: str, k: Key, uid: str, grace: int) -> None:
        """The kubelet, at the end of a pod's grace period: its containers stopped, it deletes
        the pod for good (grace 0), as the kubelet's status manager does."""
        pod = self._get(cluster, PODS, k[0], k[1])
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        meta = pod["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("deletionGracePeriodSeconds") != grace:
            return  # a shortened grace period scheduled a call of its own
        # Audited first: a client that sees the pod gone acts after this line, never before.
        self.audit.change(
            cluster=cluster,
            event="pod-terminated",
            namespace=k[0],
            name=k[1],
            node=pod["spec"].get("nodeName", ""),
        )
        self._delete(cluster, PODS, k, grace=0)

    def _collect_pods(self, cluster: str, node_name: str) -> None:
        """The pod garbage collector: pods bound to a node that no longer exists go."""
        c = self.cluster(cluster)
        if node_name in c.nodes:
            return
        for k, p in sorted(c.pods.items()):
            if p["spec"].get("nodeName") == node_name:
                self._delete(cluster, PODS, k, grace=0)  # force: no kubelet left to wait for
                self.audit.change(
                    cluster=cluster, event="pod-deleted", namespace=k[0], name=k[1], node=node_name
                )

    def _sync_unschedulable_taint(self, cluster: str, node_name: str) -> None:
        """The node lifecycle controller: cordoned nodes carry node.kubernetes.io/unschedulable."""

        def sync(o: Obj) -> Obj:
            spec = o.setdefault("spec", {})
            key = seed_.UNSCHEDULABLE_TAINT["key"]
            taints = [t for t in spec.get("taints") or [] if t.get("key") != key]
            if spec.get("unschedulable"):
                taints.append(dict(seed_.UNSCHEDULABLE_TAINT))
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            return o

        if node_name in self.cluster(cluster).nodes:
            self._write(sync, cluster, NODES, ("", node_name))

    def _update_pdbs(self, cluster: str, namespace: str) -> None:
        c = self.cluster(cluster)
        pods = [p for (ns, _), p in c.pods.items() if ns == namespace]
        scales = self._scales(c, namespace)
        for k, budget in sorted(c.pdbs.items()):
            if k[0] != namespace:
                continue
            status = wl.pdb_status(budget, pods, scales, self.clock.now())
            if status != budget.get("status"):
                self._write(
                    partial(_with_status, status=status), cluster, PDBS, k, subresource="status"
                )

    @staticmethod
    def _scales(c: _Cluster, namespace: str) -> dict[str, tuple[str, int]]:
        """Pod controller uid -> (the controller whose scale counts, its replicas)."""
        out: dict[str, tuple[str, int]] = {}
        for (ns, _), rs in c.replicasets.items():
            if ns != namespace:
                continue
            ref = wl.controller_of(rs)
            deploy = (
                c.deployments.get((ns, ref.get("name", "")))
                if ref and ref.get("kind") == "Deployment"
                else None
            )
            if deploy is not None:
                out[rs["metadata"]["uid"]] = (
                    deploy["metadata"]["uid"],
                    int(deploy["spec"].get("replicas", 1)),
                )
            else:
                out[rs["metadata"]["uid"]] = (
                    rs["metadata"]["uid"],
                    int(rs["spec"].get("replicas", 1)),
                )
        return out

    def _update_workload_status(self, cluster: str, rkey: str, k: Key) -> None:
        c = self.cluster(cluster)
        obj = c.table(rkey).get(k)
        if obj is None:
            return
        gen = int(obj["metadata"].get("generation") or 1)
        if rkey == DEPLOYMENTS.key:
            uid = obj["metadata"]["uid"]
            rsets = [
                rs
                for rs in c.replicasets.values()
                if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])
            ]
            pods = [p for rs in rsets for _, p in self._owned(c, rs["metadata"]["uid"])]
            newest = max(
                (rs for rs in rsets if int(rs["spec"].get("replicas", 0)) > 0),
                key=lambda rs: rs["metadata"]["name"],
                default={"metadata": {"name": obj["metadata"]["name"]}},
            )["metadata"]["name"]
            status = _replica_status(pods, gen)
            want = int(obj["spec"].get("replicas", 1))
            available = status["availableReplicas"] >= want - wl.scaled(
                ((obj["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get(
                    "maxUnavailable", "25%"
                ),
                want,
                round_up=False,
            )
            stamp = seed_.rfc3339(self.clock.now())
            old_conds = {cd["type"]: cd for cd in (obj.get("status") or {}).get("conditions") or []}
            conds = []
            for kind, ok, reason, message in (
                (
                    "Available",
                    available,
                    "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                ),
                (
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{newest}" has successfully progressed.',
                ),
            ):
                prev = old_conds.get(kind)
                text = "True" if ok else "False"
                same = prev is not None and prev.get("status") == text
                conds.append(
                    {
                        "type": kind,
                        "status": text,
                        "reason": reason,
                        "message": message,
                        "lastUpdateTime": prev["lastUpdateTime"] if same and prev else stamp,
                        "lastTransitionTime": prev["lastTransitionTime"]
                        if same and prev
                        else stamp,
                    }
                )
            status["updatedReplicas"] = status["replicas"]
            status["conditions"] = conds
        elif rkey == REPLICASETS.key:
            pods = [p for _, p in self._owned(c, obj["metadata"]["uid"])]
            status = _replica_status(pods, gen)
            status["fullyLabeledReplicas"] = status["replicas"]
        else:
            pods = [
                p
                for _, p in self._owned(c, obj["metadata"]["uid"])
                if not p["metadata"].get("deletionTimestamp")
            ]
            desired = sum(
                1
                for n in c.nodes.values()
                if wl.fits(obj["spec"]["template"]["spec"], n, daemon=True)
            )
            ready = sum(1 for p in pods if wl.pod_ready(p))
            status = {
                "currentNumberScheduled": len(pods),
                "desiredNumberScheduled": desired,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "numberReady": ready,
                "observedGeneration": gen,
                "updatedNumberScheduled": len(pods),
            }
            if desired - ready:
                status["numberUnavailable"] = desired - ready
        if status != obj.get("status"):
            rtype = {
                DEPLOYMENTS.key: DEPLOYMENTS,
                REPLICASETS.key: REPLICASETS,
                DAEMONSETS.key: DAEMONSETS,
            }[rkey]
            self._write(lambda o: _with_status(o, status), cluster, rtype, k, subresource="status")

    # ------------------------------------------------------------------ machines

    def _machine(self, k: Key) -> Obj | None:
        try:
            return self.store.get(seed_.MANAGEMENT, MACHINES, k[0], k[1])
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def _start_machine(self, k: Key) -> None:
        """Bootstrap ready, infrastructure being provisioned: Provisioning (or Pending)."""
        machine = self._machine(k)
        if machine is None or machine["metadata"].get("deletionTimestamp"):
            return
        ref = machine["spec"].get("infrastructureRef") or {}
        infra_ns = ref.get("namespace") or k[0]
        infra_name = ref.get("name") or ""
        stamp = seed_.rfc3339(self.clock.now())
        if ref.get("kind") == seed_.SIM_TEMPLATE:
            template = self._get(seed_.MANAGEMENT, SIMMACHINETEMPLATES, infra_ns, infra_name)
            if template is None:
                self._machine_pending(k, f"SimMachineTemplate {infra_ns}/{infra_name} not found")
                self._waiting_infra[(infra_ns, infra_name)] = k
                return
            self._clone(machine, template)
        elif ref.get("kind") == seed_.SIM_MACHINE:
            if self._get(seed_.MANAGEMENT, SIMMACHINES, infra_ns, infra_name) is None:
                self._machine_pending(k, f"SimMachine {infra_ns}/{infra_name} not found")
                self._waiting_infra[(infra_ns, infra_name)] = k
                return
        else:
            self._machine_failed(
                k,
                "UnsupportedInfrastructure",
                f"the simulator provides SimMachine and SimMachineTemplate, not {ref.get('kind')!r}",
            )
            return

        def provisioning(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Provisioning",
                    "bootstrapReady": True,
                    "infrastructureReady": False,
                    "observedGeneration": int(o["metadata"].get("generation") or 1),
                    "lastUpdated": stamp,
                    "conditions": seed_.capi_conditions(stamp, ready=False, node_healthy=False),
                }
            )
            return o

        self._write(provisioning, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        self.scheduler.call_later(self.latencies.provision, lambda: self._provisioned(k))

    def _clone(self, machine: Obj, template: Obj) -> None:
        """What a MachineSet would have done: a SimMachine from the template, owned by the Machine."""
        name, ns = machine["metadata"]["name"], machine["metadata"]["namespace"]
        if (
            self._get(seed_.MANAGEMENT, SIMMACHINES, template["metadata"]["namespace"], name)
            is not None
        ):
            return
        infra = seed_.sim_machine(
            namespace=template["metadata"]["namespace"],
            name=name,
            cluster=machine["spec"].get("clusterName", ""),
            pool=(machine["metadata"].get("labels") or {}).get(POOL_LABEL, ""),
            spec=dict(((template.get("spec") or {}).get("template") or {}).get("spec") or {}),
            template=template["metadata"]["name"],
        )
        infra["metadata"]["ownerReferences"] = [
            {
                "apiVersion": seed_.MACHINE_API_VERSION,
                "kind": "Machine",
                "name": name,
                "uid": machine["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        del ns
        self._create(seed_.MANAGEMENT, SIMMACHINES, infra)

    def _machine_pending(self, k: Key, why: str) -> None:
        stamp = seed_.rfc3339(self.clock.now())

        def pending(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update({"phase": "Pending", "bootstrapReady": True, "lastUpdated": stamp})
            status["conditions"] = [
                {
                    "type": "InfrastructureReady",
                    "status": "False",
                    "reason": "WaitingForInfrastructure",
                    "severity": "Info",
                    "message": why,
                    "lastTransitionTime": stamp,
                }
            ]
            return o

        self._write(pending, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _machine_failed(self, k: Key, reason: str, message: str) -> None:
        stamp = seed_.rfc3339(self.clock.now())

        def failed(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Failed",
                    "failureReason": reason,
                    "failureMessage": message,
                    "lastUpdated": stamp,
                }
            )
            return o

        self._write(failed, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _infra_of(self, machine: Obj) -> tuple[Key, Obj | None]:
        ref = machine["spec"].get("infrastructureRef") or {}
        ns = ref.get("namespace") or machine["metadata"]["namespace"]
        name = ref.get("name") or ""
        if ref.get("kind") == seed_.SIM_TEMPLATE:
            name = machine["metadata"]["name"]  # the clone is named after the Machine
        return (ns, name), self._get(seed_.MANAGEMENT, SIMMACHINES, ns, name)

    def _image_of(self, infra: Obj) -> str | None:
        spec = infra.get("spec") or {}
        source = spec.get("image") if isinstance(spec.get("image"), str) else ""
        if not source:
            sources = {img.source for img in self.fleet.images.values()}
            source = next((v for v in _strings(spec) if v in sources), "")
        return seed_.image_for(self.fleet, source, str(spec.get("imageName") or ""))

    def _provisioned(self, k: Key) -> None:
        """The infrastructure is up: Provisioned, then the kubelet registers the Node: Running."""
        machine = self._machine(k)
        if machine is None or machine["metadata"].get("deletionTimestamp"):
            return
        infra_key, infra = self._infra_of(machine)
        if infra is None:
            self._machine_failed(
                k, "InfrastructureNotFound", f"SimMachine {infra_key[0]}/{infra_key[1]} is gone"
            )
            return
        image_name = self._image_of(infra)
        if image_name is None:
            spec = infra.get("spec") or {}
            self._machine_failed(
                k,
                "InvalidConfiguration",
                f"SimMachine {infra_key[1]} boots {spec.get('image')!r}, which is the source of no "
                "image in the fleet's catalog",
            )
            return
        cluster = machine["spec"].get("clusterName", "")
        if cluster not in self._clusters and not self.store.has_cluster(cluster):
            self._machine_failed(
                k, "InvalidConfiguration", f"no workload cluster named {cluster!r}"
            )
            return
        self.cluster(cluster)
        name = machine["metadata"]["name"]
        pid = seed_.provider_id(cluster, name)
        ip = f"10.{128 + self.rng.randrange(64)}.{self.rng.randrange(256)}.{self.rng.randrange(2, 255)}"
        now = self.clock.now()
        stamp = seed_.rfc3339(now)
        addrs = seed_.addresses(name, ip)

        def infra_ready(o: Obj) -> Obj:
            o.setdefault("spec", {})["providerID"] = pid
            return o

        self._write(infra_ready, seed_.MANAGEMENT, SIMMACHINES, infra_key)
        self._write(
            lambda o: _with_status(o, {"ready": True, "addresses": addrs}),
            seed_.MANAGEMENT,
            SIMMACHINES,
            infra_key,
            subresource="status",
        )

        def set_pid(o: Obj) -> Obj:
            o["spec"]["providerID"] = pid
            return o

        self._write(set_pid, seed_.MANAGEMENT, MACHINES, k)

        def provisioned(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Provisioned",
                    "infrastructureReady": True,
                    "addresses": addrs,
                    "lastUpdated": stamp,
                    "conditions": seed_.capi_conditions(stamp, ready=False, node_healthy=False),
                }
            )
            status["conditions"][2] = {
                "type": "InfrastructureReady",
                "status": "True",
                "lastTransitionTime": stamp,
            }
            return o

        self._write(provisioned, seed_.MANAGEMENT, MACHINES, k, subresource="status")

        doc = self.fleet.cluster(cluster)
        labels = machine["metadata"].get("labels") or {}
        pool = doc.pool(labels.get(POOL_LABEL, "")) if doc is not None else None
        zone = machine["spec"].get("failureDomain") or (pool.zones[0] if pool is not None else "")
        synced = {key: v for key, v in labels.items() if key.split("/")[0].endswith(NODE_DOMAIN)}
        node = seed_.node_object(
            name=name,
            cluster=cluster,
            cluster_namespace=k[0],
            zone=zone,
            image=self.fleet.images[image_name],
            rng=self.rng,
            ip=ip,
            when=now,
            pool=pool,
            machine=name,
            extra_labels=synced,
            ready=False,
        )
        node["spec"]["providerID"] = pid
        if pool is None:
            node["metadata"]["labels"].pop(POOL_LABEL, None)
            node["metadata"]["labels"].update(synced)
        if self._get(cluster, NODES, "", name) is None:
            self._create(cluster, NODES, node)

        def running(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Running",
                    "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": name},
                    "nodeInfo": dict(node["status"]["nodeInfo"]),
                    "lastUpdated": stamp,
                }
            )
            return o

        self._write(running, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        failed = self.rng.random() < self.boot_failure_rate
        self.scheduler.call_later(
            self.latencies.boot, lambda: self._booted(cluster, name, k, failed)
        )

    def _booted(self, cluster: str, name: str, machine_key: Key, failed: bool) -> None:
        if self._get(cluster, NODES, "", name) is None:
            return
        if failed:
            self.audit.change(
                cluster=cluster, event="node-boot-failed", node=name, machine=machine_key[1]
            )
            return
        stamp = seed_.rfc3339(self.clock.now())

        def ready(o: Obj) -> Obj:
            conds = [c for c in o["status"].get("conditions") or [] if c.get("type") != "Ready"]
            conds.append(seed_.ready_condition(stamp, ready=True))
            o["status"]["conditions"] = conds
            return o

        def untaint(o: Obj) -> Obj:
            taints = [
                t
                for t in o["spec"].get("taints") or []
                if t.get("key") != seed_.NOT_READY_TAINT["key"]
            ]
            if taints:
                o["spec"]["taints"] = taints
            else:
                o["spec"].pop("taints", None)
            return o

        self._write(ready, cluster, NODES, ("", name), subresource="status")
        self._write(untaint, cluster, NODES, ("", name))

        def healthy(o: Obj) -> Obj:
            o.setdefault("status", {})["conditions"] = seed_.capi_conditions(
                stamp, ready=True, node_healthy=True
            )
            return o

        if self._machine(machine_key) is not None:
            self._write(healthy, seed_.MANAGEMENT, MACHINES, machine_key, subresource="status")

    def _mark_deleting(self, k: Key) -> None:
        if self._machine(k) is None:
            return
        stamp = seed_.rfc3339(self.clock.now())

        def deleting(o: Obj) -> Obj:
            o.setdefault("status", {}).update({"phase": "Deleting", "lastUpdated": stamp})
            return o

        self._write(deleting, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _drain_machine(self, k: Key, uid: str) -> None:
        """Cluster API's machine controller deleting a Machine (``reconcileDelete``): cordon
        its Node and evict its pods through their PodDisruptionBudgets, again every
        ``DRAIN_RETRY_SECONDS`` until none is left (DaemonSet, mirror and finished pods are
        skipped; evicted pods must be gone, not only Terminating), unless the Machine carries
        the exclude-node-draining annotation or its ``spec.nodeDrainTimeout`` has passed; then
        the infrastructure and the Node go after the deprovision latency."""
        machine = self._machine(k)
        if machine is None or machine["metadata"]["uid"] != uid:
            return
        cluster = machine["spec"].get("clusterName", "")
        node_name = ((machine.get("status") or {}).get("nodeRef") or {}).get("name") or ""
        c = self._clusters.get(cluster)
        node = c.nodes.get(node_name) if c is not None and node_name else None
        excluded = EXCLUDE_DRAIN_ANNOTATION in (machine["metadata"].get("annotations") or {})
        if node is None or excluded or c is None:
            self._drained(k, "DrainingSkipped" if excluded else "")
            return
        now = self.clock.now()
        deletion = (machine.get("status") or {}).get("deletion") or {}
        started = deletion.get("nodeDrainStartTime")
        if started is None:
            self._drain_condition(k, now, started_now=True)
        timeout = _go_duration(machine["spec"].get("nodeDrainTimeout"))
        began = seed_.parse_rfc3339(started) if started else now
        if timeout and now - began >= timeout * self.time_scale:
            self._drained(k, "DrainingTimedOut")
            return
        if not (node.get("spec") or {}).get("unschedulable"):
            self._write(_cordon, cluster, NODES, ("", node_name))
        waiting = 0
        for pk, pod in sorted(c.pods.items()):
            if pod["spec"].get("nodeName") != node_name or not _drainable(pod):
                continue
            waiting += 1  # evicted or not, it is there until its kubelet removes it
            if pod["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.evict(cluster, pk[0], pk[1], {}, ACTOR)
            except ApiError as err:
                if err.code == 404:
                    waiting -= 1
                elif err.code != 429:  # refused by a budget: tried again at the next pass
                    self.errors.append(f"drain of {node_name}: {err.code} {err.message}")
        if waiting:
            self.scheduler.call_later(
                DRAIN_RETRY_SECONDS * self.time_scale, partial(self._drain_machine, k, uid)
            )
            return
        self._drained(k, "")

    def _drain_condition(self, k: Key, now: float, *, started_now: bool = False) -> None:
        stamp = seed_.rfc3339(now)

        def draining(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            if started_now:
                status.setdefault("deletion", {})["nodeDrainStartTime"] = stamp
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "DrainingSucceeded"
            ] + [
                {
                    "type": "DrainingSucceeded",
                    "status": "False",
                    "reason": "Draining",
                    "severity": "Info",
                    "message": "Draining the node before deletion",
                    "lastTransitionTime": stamp,
                }
            ]
            return o

        self._write(draining, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _drained(self, k: Key, skipped: str) -> None:
        """The drain is over (or skipped): the infrastructure and the Node go next."""
        stamp = seed_.rfc3339(self.clock.now())

        def drained(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            cond: Obj = {"type": "DrainingSucceeded", "status": "True", "lastTransitionTime": stamp}
            if skipped:
                cond["reason"] = skipped
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "DrainingSucceeded"
            ] + [cond]
            return o

        self._write(drained, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        self.scheduler.call_later(self.latencies.deprovision, lambda: self._deprovision(k))

    def _deprovision(self, k: Key) -> None:
        """A deleted Machine: its Node goes, its SimMachine goes, then its finalizer."""
        machine = self._machine(k)
        if machine is None:
            return
        self._teardown(machine)

        def release(o: Obj) -> Obj:
            o["metadata"]["finalizers"] = [
                f for f in o["metadata"].get("finalizers") or [] if f != seed_.MACHINE_FINALIZER
            ]
            return o

        self._write(release, seed_.MANAGEMENT, MACHINES, k)

    def _teardown(self, machine: Obj) -> None:
        """The Machine's Node (never another Machine's) and its SimMachine go."""
        cluster = machine["spec"].get("clusterName", "")
        name = machine["metadata"]["name"]
        node = ((machine.get("status") or {}).get("nodeRef") or {}).get("name") or name
        found = self._get(cluster, NODES, "", node) if self.store.has_cluster(cluster) else None
        if found is not None:
            owner = (found["metadata"].get("annotations") or {}).get(MACHINE_ANNOTATION)
            if owner in (None, name):
                self._delete(cluster, NODES, ("", node))
        infra_key, infra = self._infra_of(machine)
        if infra is not None:
            self._delete(seed_.MANAGEMENT, SIMMACHINES, infra_key)

    # ------------------------------------------------------------------ eviction

    def evict(self, cluster: str, namespace: str, name: str, body: Obj, actor: str) -> Obj:
        """POST pods/eviction, decided as the API server's eviction REST handler does."""
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError.bad_request("name in URL does not match name in Eviction object")
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError.bad_request(
                "namespace in URL does not match namespace in Eviction object"
            )
        options = body.get("deleteOptions") or {}
        grace = options.get("gracePeriodSeconds")
        with self.lock:
            pod = self.store.get(cluster, PODS, namespace, name)
            phase = (pod.get("status") or {}).get("phase")
            budget = None
            if not pod["metadata"].get("deletionTimestamp") and phase not in (
                "Succeeded",
                "Failed",
                "Pending",
            ):
                labels = pod["metadata"].get("labels") or {}
                budgets = [
                    b
                    for b in self.store.list(cluster, PDBS, namespace)[0]
                    if selector_matches((b.get("spec") or {}).get("selector"), labels)
                ]
                if len(budgets) > 1:
                    raise ApiError.internal(TOO_MANY_PDBS)
                if budgets:
                    budget = budgets[0]
                    self._check_budget(cluster, namespace, budget, pod)
            self.store.delete(cluster, PODS, namespace, name, actor=actor, grace_period=grace)
            self.audit.change(
                cluster=cluster,
                event="pod-evicted",
                namespace=namespace,
                name=name,
                node=pod["spec"].get("nodeName", ""),
                pdb=budget["metadata"]["name"] if budget is not None else "",
            )
            if budget is not None:
                # The eviction decrements the budget at once (the API server writes it before
                # deleting), so a client reading the PDB next sees the disruption counted.
                pods = self.store.list(cluster, PODS, namespace)[0]
                status = wl.pdb_status(
                    budget, pods, self._live_scales(cluster, namespace), self.clock.now()
                )
                self._write(
                    lambda o: _with_status(o, status),
                    cluster,
                    PDBS,
                    _key(budget),
                    subresource="status",
                )
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def _live_scales(self, cluster: str, namespace: str) -> dict[str, tuple[str, int]]:
        c = _Cluster()
        for rs in self.store.list(cluster, REPLICASETS, namespace)[0]:
            c.replicasets[_key(rs)] = rs
        for d in self.store.list(cluster, DEPLOYMENTS, namespace)[0]:
            c.deployments[_key(d)] = d
        return self._scales(c, namespace)

    def _check_budget(self, cluster: str, namespace: str, budget: Obj, pod: Obj) -> None:
        pods = self.store.list(cluster, PODS, namespace)[0]
        live = wl.pdb_status(budget, pods, self._live_scales(cluster, namespace), self.clock.now())
        name = budget["metadata"]["name"]
        policy = (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if not wl.pod_ready(pod):
            if policy == "AlwaysAllow" or live["currentHealthy"] >= live["desiredHealthy"]:
                return  # an unhealthy pod does not count against the budget
        elif live["disruptionsAllowed"] > 0:
            return
        raise ApiError(
            429,
            "TooManyRequests",
            PDB_REFUSAL,
            {
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": f"The disruption budget {name} needs {live['desiredHealthy']} "
                        f"healthy pods and has {live['currentHealthy']} currently",
                    }
                ]
            },
        )

    # ------------------------------------------------------------------ helpers

    def _get(self, cluster: str, rtype: Any, namespace: str, name: str) -> Obj | None:
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
        rtype: Any,
        k: Key,
        *,
        subresource: str | None = None,
    ) -> Obj | None:
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

    def _create(self, cluster: str, rtype: Any, obj: Obj) -> Obj:
        out = self.store.create(cluster, rtype, obj, actor=ACTOR)
        self._remember(cluster, rtype, out)
        return out

    def _remember(self, cluster: str, rtype: Any, obj: Obj) -> None:
        """Our own write, in our cache at once (its event, arriving later, changes nothing)."""
        if cluster == seed_.MANAGEMENT or rtype.key not in _TABLES:
            return
        table = self.cluster(cluster).table(rtype.key)
        k = obj["metadata"]["name"] if rtype.key == NODES.key else _key(obj)
        if (
            obj["metadata"].get("deletionTimestamp")
            and not obj["metadata"].get("finalizers")
            and rtype.key != PODS.key  # a Terminating pod stays until its kubelet deletes it
        ):
            table.pop(k, None)
        else:
            table[k] = obj

    def _delete(self, cluster: str, rtype: Any, k: Key, *, grace: int | None = None) -> None:
        try:
            self.store.delete(cluster, rtype, k[0] or None, k[1], actor=ACTOR, grace_period=grace)
        except ApiError as err:
            if err.code != 404:
                raise
        if cluster != seed_.MANAGEMENT and rtype.key in _TABLES:
            table = self.cluster(cluster).table(rtype.key)
            left = self._get(cluster, rtype, k[0], k[1]) if rtype.key == PODS.key else None
            if left is not None:
                table[k] = left  # Terminating (graceful deletion): still there until it stops
            else:
                table.pop(k[1] if rtype.key == NODES.key else k, None)

    def _pod_name(self, c: _Cluster, base: str, namespace: str) -> str:
        while True:
            name = f"{base}-{wl.suffix(self.rng)}"
            if (namespace, name) not in c.pods:
                return name

    def _pod_ip(self, cluster: str, c: _Cluster) -> str:
        del cluster
        c.pod_counter += 1
        n = c.pod_counter
        return f"10.{100 + (n // 65536) % 100}.{(n // 256) % 256}.{n % 256}"


def _phase(name: str) -> float:
    """A fixed fraction in [0, 1) per node: when in each period its kubelet acts."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32


def _micro_time(when: float) -> str:
    """metav1.MicroTime, as Lease renewTime is written."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _heartbeat_only(before: Obj, after: Obj) -> bool:
    """True when a Node changed only in its conditions' lastHeartbeatTime (and version)."""

    def stripped(node: Obj) -> Obj:
        status = dict(node.get("status") or {})
        status["conditions"] = [
            {k: v for k, v in c.items() if k != "lastHeartbeatTime"}
            for c in status.get("conditions") or []
        ]
        meta = {k: v for k, v in node["metadata"].items() if k != "resourceVersion"}
        return {**node, "metadata": meta, "status": status}

    return stripped(before) == stripped(after)


def _cordon(obj: Obj) -> Obj:
    obj.setdefault("spec", {})["unschedulable"] = True
    return obj


def _drainable(pod: Obj) -> bool:
    """What a drain evicts: not DaemonSet pods, mirror pods, or pods already finished."""
    ref = wl.controller_of(pod)
    if ref is not None and ref.get("kind") == "DaemonSet":
        return False
    if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _go_duration(value: Any) -> float:
    """Seconds in a metav1.Duration such as ``10m0s`` (0 when unset or unreadable)."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError:
        return 0.0


def _with_status(obj: Obj, status: Obj) -> Obj:
    obj["status"] = status
    return obj


def _start_containers(obj: Obj, *, when: float, ip: str, host: str) -> Obj:
    obj["status"] = wl.running_status(obj["spec"], when, ip, host)
    return obj


def _set_replicas(obj: Obj, replicas: int) -> Obj:
    obj["spec"]["replicas"] = replicas
    return obj


def _node_ip(node: Obj) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address", ""))
    return ""


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _replica_status(pods: list[Obj], generation: int) -> Obj:
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = sum(1 for p in live if wl.pod_ready(p))
    return {
        "observedGeneration": generation,
        "replicas": len(live),
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
