"""The scheduler, as the world plays it: a Pending pod bound to a node that can take it.

Tool layer, the simulated world (``gitops.sim.world``), one of the controllers ``physics.Physics``
combines. A pod is bound to a Ready, schedulable node whose taints it tolerates, after the
reschedule latency; a pod no node can take waits until one can.
"""

from __future__ import annotations

from gitops.sim.api.resources import (
    PODS,
)
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import Key, Obj, PhysicsBase, node_ip, with_status


class Scheduling(PhysicsBase):
    """The scheduler."""

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
                    lambda o: with_status(o, wl.pending_status(now, message)),
                    cluster,
                    PODS,
                    k,
                    subresource="status",
                )
            return
        c.waiting.discard(k)
        ip = self._pod_ip(cluster, c)
        host = node_ip(c.nodes[target])

        def bind(o: Obj) -> Obj:
            o["spec"]["nodeName"] = target
            o["status"] = wl.running_status(o["spec"], now, ip, host)
            return o

        self._write(bind, cluster, PODS, k)
        self._write(
            lambda o: with_status(o, wl.running_status(o["spec"], now, ip, host)),
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
