"""The disruption controller (PodDisruptionBudget status) and the eviction subresource's decision.

Tool layer, the simulated world (``gitops.sim.world``), one of the controllers ``physics.Physics``
combines. PDB status is computed as the disruption controller does; ``evict`` is registered by
the world as the store's pods/eviction handler (the API machinery never imports the world): 429
with the API server's wording when a budget would be violated, 500 when more than one budget
selects the pod, otherwise the pod is deleted with the request's grace period.
"""

from __future__ import annotations

from functools import partial

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    DEPLOYMENTS,
    PDBS,
    PODS,
    REPLICASETS,
)
from gitops.sim.api.selectors import selector_matches
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import ClusterCache, Obj, PhysicsBase, key_of, with_status

PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget."
TOO_MANY_PDBS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


class Disruption(PhysicsBase):
    """The disruption controller and the eviction subresource's decision."""

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
                    partial(with_status, status=status), cluster, PDBS, k, subresource="status"
                )

    @staticmethod
    def _scales(c: ClusterCache, namespace: str) -> dict[str, tuple[str, int]]:
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

    def _live_scales(self, cluster: str, namespace: str) -> dict[str, tuple[str, int]]:
        c = ClusterCache()
        # Read-only views of the stored objects: only their scale fields are read here.
        for rs in self.store.list(cluster, REPLICASETS, namespace, copy=False)[0]:
            c.replicasets[key_of(rs)] = rs
        for d in self.store.list(cluster, DEPLOYMENTS, namespace, copy=False)[0]:
            c.deployments[key_of(d)] = d
        return self._scales(c, namespace)

    def _check_budget(self, cluster: str, namespace: str, budget: Obj, pod: Obj) -> None:
        pods = self.store.list(cluster, PODS, namespace, copy=False)[0]
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
        # Everything read under the world lock is a read-only view of the stored objects (the
        # store replaces objects, never changes them in place): copying the namespace's pods
        # and budgets to read a few fields held the lock long enough to stall a burst.
        with self.lock:
            pod = self.store.get(cluster, PODS, namespace, name, copy=False)
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
                    for b in self.store.list(cluster, PDBS, namespace, copy=False)[0]
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
                pods = self.store.list(cluster, PODS, namespace, copy=False)[0]
                status = wl.pdb_status(
                    budget, pods, self._live_scales(cluster, namespace), self.clock.now()
                )
                self._write(
                    lambda o: with_status(o, status),
                    cluster,
                    PDBS,
                    key_of(budget),
                    subresource="status",
                )
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
