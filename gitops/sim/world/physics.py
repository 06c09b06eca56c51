"""Physics: what happens in the simulated world on its own, after the objects are seeded.

Tool layer, the simulated world (``gitops.sim.world``). ``Physics`` wires the controllers and
machines a real fleet has, one module each, reacting to the store's events:

* ``machines``: the infrastructure provider and Cluster API's Machine controller (provisioning,
  boot, labels copied onto Nodes, deletion with drain);
* ``kubelet``: the kubelet and the pod garbage collector (pods start and stop, graceful
  termination, heartbeats and node Leases);
* ``scheduling``: the scheduler (Pending pods bound to nodes that can take them);
* ``workloads``: the ReplicaSet, Deployment and DaemonSet controllers;
* ``disruption``: the disruption controller (PDB status) and the eviction subresource's decision.

This module keeps the informer side: events in, caches and dirty sets updated, the controllers
called. Threading: the store calls ``on_event`` on the writer's thread; it only queues the
event. ``run_pending`` (the world's physics thread, or ``ManualClock.advance`` in tests) applies
queued events to the world's own caches, then runs due actions, under the world's lock. Actions
write to the store while holding that lock, which is safe because ``on_event`` never takes it.
It must never sleep, never read the wall clock (only its ``Clock``) and never draw randomness
other than from its seeded ``random.Random``. Kubernetes' own periods (grace periods,
heartbeats, drain retries, ``nodeDrainTimeout``) are multiplied by the time scale, as the
latencies are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gitops.fleet.wellknown import MACHINE_ANNOTATION, POOL_LABEL, ZONE_LABEL
from gitops.sim.api.conversion import to_v1beta1
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    CLUSTERCLASSES,
    CLUSTERS,
    DAEMONSETS,
    DEPLOYMENTS,
    MACHINEDEPLOYMENTS,
    MACHINES,
    MACHINESETS,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
    SIMMACHINES,
    api_version_getter,
)
from gitops.sim.api.store import Event
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import TABLES, ClusterCache, Obj, key_of
from gitops.sim.world.kubelet import Kubelet
from gitops.sim.world.machinedeployments import MachineDeploymentController
from gitops.sim.world.machines import Machines
from gitops.sim.world.machinesets import MachineSetController
from gitops.sim.world.scheduling import Scheduling
from gitops.sim.world.topology import TopologyController
from gitops.sim.world.workloads import WorkloadControllers

# Cluster API kinds whose changes dirty their namespace for the MachineSet, MachineDeployment
# and topology controllers.
_CAPI = {MACHINES.key, MACHINESETS.key, MACHINEDEPLOYMENTS.key, CLUSTERS.key, CLUSTERCLASSES.key}
_WATCHED = TABLES | _CAPI | {SIMMACHINES.key}


class Physics(
    Machines,
    Kubelet,
    Scheduling,
    WorkloadControllers,
    MachineSetController,
    MachineDeploymentController,
    TopologyController,
):
    """The simulated controllers and machines, fed by the store's events; see the module
    docstring. (``Machines`` brings ``Disruption``: drains go through the eviction decision.)"""

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
                        self._machines[key_of(obj)] = obj
                        if (obj.get("status") or {}).get("nodeRef"):
                            self._started.add(obj["metadata"]["uid"])
                elif rkey in TABLES:
                    table = self.cluster(name).table(rkey)
                    table[obj["metadata"]["name"] if rkey == NODES.key else key_of(obj)] = obj
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
            for rtype in (MACHINESETS, MACHINEDEPLOYMENTS, CLUSTERS):
                for obj in self.store.list(seed_.MANAGEMENT, rtype)[0]:
                    self._dirty_capi.add(obj["metadata"]["namespace"])
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
        if ev.resource.key in _CAPI:
            self._dirty_capi.add(ev.object["metadata"].get("namespace") or "")
        if ev.resource is SIMMACHINES or ev.resource.key == SIMMACHINES.key:
            if ev.type == "ADDED":
                waiting = self._waiting_infra.pop(key_of(ev.object), None)
                if waiting is not None:
                    self.scheduler.call_later(0.0, partial(self._start_machine, waiting))
            return
        if ev.resource.key != MACHINES.key:
            return
        # The store announces the stored (v1beta2) form; the machine controller reads v1beta1.
        obj, k = to_v1beta1(ev.object, api_version_getter), key_of(ev.object)
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
        old_view = None
        if ev.type == "MODIFIED" and ev.old is not None:
            old_view = to_v1beta1(ev.old, api_version_getter)
        self._machine_seen(obj, old_view)

    def _workload_event(self, ev: Event) -> None:
        c = self.cluster(ev.cluster)
        rkey = ev.resource.key
        if rkey not in TABLES:
            return
        table = c.table(rkey)
        obj = ev.object
        k: Any = obj["metadata"]["name"] if rkey == NODES.key else key_of(obj)
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
        self, cluster: str, c: ClusterCache, etype: str, node: Obj, before: Obj | None
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
        self, cluster: str, c: ClusterCache, etype: str, pod: Obj, before: Obj | None
    ) -> None:
        k = key_of(pod)
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
        self, cluster: str, c: ClusterCache, etype: str, pdb: Obj, before: Obj | None
    ) -> None:
        del c
        if etype == "DELETED":
            return
        status = pdb.get("status") or {}
        if before is None or status.get("observedGeneration") != pdb["metadata"].get("generation"):
            self._dirty_pdb.add((cluster, pdb["metadata"]["namespace"]))

    def _deployment_event(
        self, cluster: str, c: ClusterCache, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_deploy.add((cluster, key_of(obj)))
        self._dirty_pdb.add((cluster, obj["metadata"]["namespace"]))

    def _replicaset_event(
        self, cluster: str, c: ClusterCache, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_rs.add((cluster, key_of(obj)))
            self._dirty_status.add((cluster, REPLICASETS.key, key_of(obj)))
        self._dirty_pdb.add((cluster, obj["metadata"]["namespace"]))

    def _daemonset_event(
        self, cluster: str, c: ClusterCache, etype: str, obj: Obj, before: Obj | None
    ) -> None:
        del c
        if etype != "DELETED" and (before is None or before.get("spec") != obj.get("spec")):
            self._dirty_ds.add(cluster)
            self._dirty_status.add((cluster, DAEMONSETS.key, key_of(obj)))

    def _reconcile_capi(self, ns: str) -> None:
        """Cluster API's controllers on one namespace: topology first (it writes deployments),
        sets' status, deployments (they scale sets), sets (they make and delete Machines),
        deployments' status from the sets'."""
        self._reconcile_topology(ns)
        self._reconcile_machinesets(ns)
        self._reconcile_deployments(ns)
        self._reconcile_machinesets(ns)
        self._deployment_statuses(ns)

    def _reconcile_dirty(self) -> bool:
        did = False
        while self._dirty_capi:
            ns = self._dirty_capi.pop()
            self._guarded(partial(self._reconcile_capi, ns))
            did = True
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


def _rv(obj: Obj) -> int:
    return int(obj["metadata"].get("resourceVersion") or 0)


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
