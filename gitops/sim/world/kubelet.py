"""The kubelet and the pod garbage collector, as the world plays them.

Tool layer, the simulated world (``gitops.sim.world``), one of the controllers ``physics.Physics``
combines. Pods start on Ready nodes and go with their node; a pod deleted gracefully
(Terminating) is removed at the end of its grace period; every node renews its Lease every 10 s
and reports its status every 5 minutes (heartbeats), each at a fixed phase of its own so that
a large fleet does not beat in step; a cordoned node carries the unschedulable taint.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import partial

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    LEASES,
    NODES,
    PODS,
)
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import Key, Obj, PhysicsBase, node_ip

# Kubernetes' own periods, in seconds at time scale 1 (the world multiplies them by its scale).
LEASE_RENEW_SECONDS = 10.0  # kubelet: leaseDurationSeconds x renewIntervalFraction (0.25)
LEASE_DURATION_SECONDS = 40  # kubelet --node-lease-duration-seconds
NODE_STATUS_REPORT_SECONDS = 300.0  # kubelet nodeStatusReportFrequency (status unchanged)
NODE_LEASE_NAMESPACE = "kube-node-lease"


class Kubelet(PhysicsBase):
    """Every node's kubelet and the pod garbage collector."""

    def _kubelet_sync(self, cluster: str, node_name: str) -> None:
        """Start the pods bound to a Ready node that are still Pending."""
        c = self.cluster(cluster)
        node = c.nodes.get(node_name)
        if node is None or not wl.node_ready(node):
            return
        host = node_ip(node)
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


def _phase(name: str) -> float:
    """A fixed fraction in [0, 1) per node: when in each period its kubelet acts."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32


def _micro_time(when: float) -> str:
    """metav1.MicroTime, as Lease renewTime is written."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _start_containers(obj: Obj, *, when: float, ip: str, host: str) -> Obj:
    obj["status"] = wl.running_status(obj["spec"], when, ip, host)
    return obj
