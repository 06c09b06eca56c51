"""Cluster API's topology controller, simulated for workers: a ClusterClass-owned Cluster's
``spec.topology.workers.machineDeployments[]`` drive their managed MachineDeployments.

Tool layer (``gitops.sim.world``), part of the physics (``physics.Physics``), enough of
upstream's ``internal/controllers/topology`` and ``exp/topology`` for the template swap and
replicas. Per worker of a Cluster with ``spec.topology``:

* the worker's class in the ClusterClass names an infrastructure template
  (``infrastructure.templateRef``); the worker's ``variables.overrides`` (falling back to
  ``spec.topology.variables``) are applied to a copy of it through the class's inline patches
  (``patches[].definitions[]`` whose selector matches the template's apiVersion and kind and the
  worker's class, ``jsonPatches[]`` with ``value`` or ``valueFrom.variable``);
* when the result differs from the template the managed MachineDeployment references, the
  result is created under a new, content-hashed name (upstream rotates templates the same way)
  and the deployment is pointed at it;
* the worker's ``replicas``, ``rollout.strategy``, ``minReadySeconds`` and ``metadata.labels``
  go to the deployment,
  created (labelled ``topology.cluster.x-k8s.io/owned`` and ``.../deployment-name``, owned by
  the Cluster) when missing.

A client (gitops) writes the Cluster's worker entry only; this controller writes the
MachineDeployment and the templates, never Machines or MachineSets.
"""

from __future__ import annotations

import copy
from typing import Any

from gitops.sim.api.resources import (
    CLUSTERCLASSES,
    CLUSTERS,
    MACHINEDEPLOYMENTS,
    SIMMACHINETEMPLATES,
)
from gitops.sim.world import capi
from gitops.sim.world import seed as seed_
from gitops.sim.world.base import Obj, PhysicsBase, key_of

MGMT = seed_.MANAGEMENT


def variables_of(cluster: Obj, worker: Obj) -> dict[str, Any]:
    """Variable values for one worker: its overrides over the Cluster's topology variables."""
    values = {
        v.get("name"): v.get("value") for v in cluster["spec"]["topology"].get("variables") or []
    }
    for v in (worker.get("variables") or {}).get("overrides") or []:
        values[v.get("name")] = v.get("value")
    return values


def apply_patches(template: Obj, cls: Obj, worker_class: str, values: dict[str, Any]) -> Obj:
    """``template`` with the ClusterClass's inline patches for ``worker_class`` applied."""
    out = copy.deepcopy(template)
    for patch in cls["spec"].get("patches") or []:
        for definition in patch.get("definitions") or []:
            selector = definition.get("selector") or {}
            names = (
                (selector.get("matchResources") or {}).get("machineDeploymentClass") or {}
            ).get("names") or []
            if (
                selector.get("apiVersion") != template.get("apiVersion")
                or selector.get("kind") != template.get("kind")
                or worker_class not in names
            ):
                continue
            for op in definition.get("jsonPatches") or []:
                source = op.get("valueFrom") or {}
                if "variable" in source:
                    if source["variable"] not in values:
                        continue  # an unset variable patches nothing, as upstream skips it
                    value = values[source["variable"]]
                else:
                    value = op.get("value")
                _json_patch(out, str(op.get("op")), str(op.get("path")), value)
    return out


def _json_patch(obj: Obj, op: str, pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node: Any = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if node is None:
            return
    if not isinstance(node, dict):
        return
    if op == "remove":
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)


class TopologyController(PhysicsBase):
    """See the module docstring; ``_reconcile_topology(namespace)`` is its entry point."""

    def _reconcile_topology(self, ns: str) -> None:
        for cluster in self.store.list(MGMT, CLUSTERS, ns)[0]:
            topology = cluster["spec"].get("topology")
            if (
                not topology
                or cluster["metadata"].get("deletionTimestamp")
                or cluster["spec"].get("paused")
            ):
                continue
            ref = topology.get("classRef") or {}
            cls = self._get(MGMT, CLUSTERCLASSES, ref.get("namespace") or ns, ref.get("name", ""))
            if cls is None:
                continue
            for worker in (topology.get("workers") or {}).get("machineDeployments") or []:
                self._reconcile_worker(cluster, cls, worker)

    def _reconcile_worker(self, cluster: Obj, cls: Obj, worker: Obj) -> None:
        ns, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        worker_class = next(
            (
                w
                for w in (cls["spec"].get("workers") or {}).get("machineDeployments") or []
                if w.get("class") == worker.get("class")
            ),
            None,
        )
        if worker_class is None:
            return
        ref = (worker_class.get("infrastructure") or {}).get("templateRef") or {}
        template = self._get(MGMT, SIMMACHINETEMPLATES, ns, ref.get("name", ""))
        if template is None:
            return
        desired = apply_patches(
            template, cls, str(worker.get("class")), variables_of(cluster, worker)
        )
        md = self._managed_deployment(ns, name, str(worker["name"]))
        current_name = ""
        if md is not None:
            current_name = md["spec"]["template"]["spec"]["infrastructureRef"].get("name", "")
        current = self._get(MGMT, SIMMACHINETEMPLATES, ns, current_name) if current_name else None
        if current is None or current.get("spec") != desired.get("spec"):
            current_name = self._rotate(name, str(worker["name"]), template, desired)
        if md is None:
            self._create_managed(cluster, worker, current_name)
        else:
            self._update_managed(md, worker, current_name)

    def _managed_deployment(self, ns: str, cluster: str, worker: str) -> Obj | None:
        selector = (
            f"{capi.TOPOLOGY_OWNED_LABEL},{capi.TOPOLOGY_DEPLOYMENT_LABEL}={worker},"
            f"cluster.x-k8s.io/cluster-name={cluster}"
        )
        found = self.store.list(MGMT, MACHINEDEPLOYMENTS, ns, label_selector=selector)[0]
        return found[0] if found else None

    def _rotate(self, cluster: str, worker: str, template: Obj, desired: Obj) -> str:
        """The patched template under its content-hashed name (created once)."""
        ns = template["metadata"]["namespace"]
        name = seed_.topology_template_name(cluster, worker, desired["spec"])
        if self._get(MGMT, SIMMACHINETEMPLATES, ns, name) is None:
            clone = {
                "apiVersion": template["apiVersion"],
                "kind": template["kind"],
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {
                        "cluster.x-k8s.io/cluster-name": cluster,
                        capi.TOPOLOGY_OWNED_LABEL: "",
                        capi.TOPOLOGY_DEPLOYMENT_LABEL: worker,
                    },
                    "annotations": {
                        "cluster.x-k8s.io/cloned-from-name": template["metadata"]["name"],
                        "cluster.x-k8s.io/cloned-from-groupkind": f"{seed_.SIM_TEMPLATE}.{capi.INFRA_GROUP}",
                    },
                },
                "spec": copy.deepcopy(desired["spec"]),
            }
            self._create(MGMT, SIMMACHINETEMPLATES, clone)
        return name

    def _create_managed(self, cluster: Obj, worker: Obj, template: str) -> None:
        name = cluster["metadata"]["name"]
        ns = cluster["metadata"]["namespace"]
        md_name = capi.managed_deployment_name(name, str(worker["name"]))
        labels = {
            "cluster.x-k8s.io/cluster-name": name,
            capi.TOPOLOGY_OWNED_LABEL: "",
            capi.TOPOLOGY_DEPLOYMENT_LABEL: str(worker["name"]),
        }
        selector = {"cluster.x-k8s.io/cluster-name": name, capi.DEPLOYMENT_NAME_LABEL: md_name}
        version = cluster["spec"]["topology"].get("version")
        spec: Obj = {
            "clusterName": name,
            "replicas": int(worker.get("replicas", 1)),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {
                        **((worker.get("metadata") or {}).get("labels") or {}),
                        **labels,
                        **selector,
                    }
                },
                "spec": {
                    "clusterName": name,
                    "bootstrap": {"dataSecretName": f"{name}-{worker.get('class')}-bootstrap"},
                    "infrastructureRef": {
                        "apiGroup": capi.INFRA_GROUP,
                        "kind": seed_.SIM_TEMPLATE,
                        "name": template,
                    },
                    **({"version": version} if version else {}),
                },
            },
        }
        strategy = (worker.get("rollout") or {}).get("strategy")
        if strategy:
            spec["rollout"] = {"strategy": copy.deepcopy(strategy)}
        if "minReadySeconds" in worker:
            spec["template"]["spec"]["minReadySeconds"] = int(worker["minReadySeconds"])
        md = {
            "apiVersion": capi.API_VERSION,
            "kind": "MachineDeployment",
            "metadata": {
                "name": md_name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [capi.owner_ref(cluster, controller=False)],
            },
            "spec": spec,
        }
        self._create(MGMT, MACHINEDEPLOYMENTS, md)

    def _update_managed(self, md: Obj, worker: Obj, template: str) -> None:
        def update(o: Obj) -> Obj:
            spec = o["spec"]
            spec["template"]["spec"]["infrastructureRef"]["name"] = template
            if "replicas" in worker:
                spec["replicas"] = int(worker["replicas"])
            strategy = (worker.get("rollout") or {}).get("strategy")
            if strategy:
                spec.setdefault("rollout", {})["strategy"] = copy.deepcopy(strategy)
            if "minReadySeconds" in worker:
                spec["template"]["spec"]["minReadySeconds"] = int(worker["minReadySeconds"])
            labels = (worker.get("metadata") or {}).get("labels") or {}
            if labels:
                spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(labels)
            return o

        self._write(update, MGMT, MACHINEDEPLOYMENTS, key_of(md))
