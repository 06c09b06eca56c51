"""MachineDeployment mode: point a pool's MachineDeployment (or topology worker) at an image.

Adapter layer, talking to the management cluster through ``gitops.kube`` in the
``cluster.x-k8s.io`` version it prefers (``gitops.kube.capi``: v1beta2 when served, else v1beta1).
For a pool naming a MachineDeployment, a roll is two writes, each safe to repeat:

1. the deployment's current infrastructure template is cloned under the content-hashed name
   the plan gives (``mdplan.template_name``), the image's ``source`` at the pool's
   ``imageField``; creating it again after a crash finds it there (AlreadyExists);
2. one merge patch of the deployment, preconditioned on the ``resourceVersion`` it was read
   at: the template reference, ``fleet.gitops.io/image`` on the deployment and on its machine
   template (so the Machines its MachineSet makes say which image they are from), replicas,
   the rolling update's maxSurge/maxUnavailable, ``paused: false``, and what a rollback needs
   (the template and image it ran before). A deployment already pointing at the template is
   not swapped again.

For a topology pool (ClusterClass-managed) gitops writes only the Cluster's
``spec.topology.workers.machineDeployments[]`` entry: the image variable override, replicas and
rolling update; the topology controller clones the template and rolls the deployment it
manages. Cluster API then replaces the machines; the planner watches it do so.
"""

from __future__ import annotations

import copy
from typing import Any

from gitops.fleet.spec import ClusterDocument, NodePool
from gitops.fleet.wellknown import (
    CLUSTER_NAME_LABEL,
    IMAGE_ANNOTATION,
    PREVIOUS_IMAGE_ANNOTATION,
    PREVIOUS_TEMPLATE_ANNOTATION,
    TEMPLATE_BASE_ANNOTATION,
)
from gitops.kube import capi
from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import Conflict, NotFound, call_json, write

GROUP = capi.GROUP
DEFAULT_IMAGE_FIELD = "spec.template.spec.image"
DEFAULT_VARIABLE = "image"


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith("s") else "s")


def _set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def int_or_percent(value: str) -> int | str:
    """A maxSurge/maxUnavailable as the API wants it: an int, or a percent string."""
    return int(value) if value.isdigit() else value


def _strategy(max_surge: str, max_unavailable: str) -> dict[str, Any]:
    rolling = {
        "maxSurge": int_or_percent(max_surge),
        "maxUnavailable": int_or_percent(max_unavailable),
    }
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


def deployment_patch(
    version: str,
    md: dict[str, Any],
    *,
    template: str,
    image: str,
    previous_image: str,
    replicas: int,
    max_surge: str,
    max_unavailable: str,
    min_ready_seconds: int = 0,
) -> dict[str, Any]:
    """The merge patch rolling ``md`` (as read, in ``version``) to ``template``.

    It carries the ``resourceVersion`` read: the precondition that makes a second swap
    impossible (a deployment changed since is refused with 409 and read again).
    """
    meta = md["metadata"]
    annotations = meta.get("annotations") or {}
    current = str(md["spec"]["template"]["spec"]["infrastructureRef"].get("name", ""))
    patch_annotations = {IMAGE_ANNOTATION: image}
    if current != template:
        patch_annotations.update(
            {
                PREVIOUS_TEMPLATE_ANNOTATION: current,
                PREVIOUS_IMAGE_ANNOTATION: annotations.get(IMAGE_ANNOTATION) or previous_image,
                TEMPLATE_BASE_ANNOTATION: annotations.get(TEMPLATE_BASE_ANNOTATION) or current,
            }
        )
    body: dict[str, Any] = {
        "metadata": {"resourceVersion": meta["resourceVersion"], "annotations": patch_annotations},
        "spec": {
            "replicas": replicas,
            "paused": False,
            "template": {
                "metadata": {"annotations": {IMAGE_ANNOTATION: image}},
                "spec": {"infrastructureRef": {"name": template}},
            },
        },
    }
    strategy = _strategy(max_surge, max_unavailable)
    if version == "v1beta1":
        body["spec"]["strategy"] = strategy
        body["spec"]["minReadySeconds"] = min_ready_seconds
    else:
        body["spec"]["rollout"] = {"strategy": strategy}
        body["spec"]["template"]["spec"]["minReadySeconds"] = min_ready_seconds
    return body


def topology_patch(
    version: str,
    cluster: dict[str, Any],
    *,
    worker: str,
    variable: str,
    image: str,
    source: str,
    replicas: int,
    max_surge: str,
    max_unavailable: str,
    min_ready_seconds: int = 0,
) -> dict[str, Any] | None:
    """The merge patch of ``cluster``'s topology worker ``worker`` (None: nothing to change).

    A merge patch replaces lists whole, so it carries every worker, the others unchanged, and
    the ``resourceVersion`` read so that a concurrent change is not overwritten.
    """
    workers = copy.deepcopy(
        ((cluster["spec"].get("topology") or {}).get("workers") or {}).get("machineDeployments")
        or []
    )
    entry = next((w for w in workers if w.get("name") == worker), None)
    if entry is None:
        meta = cluster["metadata"]
        raise NotFound(
            f"Cluster {meta['namespace']}/{meta['name']} has no topology worker {worker}"
        )
    before = copy.deepcopy(entry)
    variables = entry.setdefault("variables", {})
    overrides = [o for o in variables.get("overrides") or [] if o.get("name") != variable]
    variables["overrides"] = [*overrides, {"name": variable, "value": source}]
    entry["replicas"] = replicas
    entry["minReadySeconds"] = min_ready_seconds  # the pool's soak, per new machine
    # The worker's metadata labels reach the Machines its deployment makes: the image as a
    # label tells the planner which Machines are the new template's (failure budget, soak).
    entry.setdefault("metadata", {}).setdefault("labels", {})[IMAGE_ANNOTATION] = image
    strategy = _strategy(max_surge, max_unavailable)
    if version == "v1beta1":
        entry["strategy"] = strategy
    else:
        entry["rollout"] = {"strategy": strategy}
    if entry == before:
        return None
    return {
        "metadata": {"resourceVersion": cluster["metadata"]["resourceVersion"]},
        "spec": {"topology": {"workers": {"machineDeployments": workers}}},
    }


class MachineDeploymentProvider:
    """Rolls, pauses and reads MachineDeployments and topology workers."""

    def __init__(self, management: Kube) -> None:
        self.kube = management

    @property
    def version(self) -> str:
        """The ``cluster.x-k8s.io`` version spoken: discovered once per client, on first use."""
        return capi.version(self.kube)

    # -- reading -------------------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return call_json(
            f"reading {plural} {namespace}/{name}",
            self.kube.custom.get_namespaced_custom_object,
            GROUP,
            self.version,
            namespace,
            plural,
            name,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _template_gv(self, ref: dict[str, Any]) -> tuple[str, str]:
        """(group, version) of an infrastructure reference in either contract."""
        if "apiVersion" in ref:
            group, _, version = str(ref["apiVersion"]).rpartition("/")
            return group, version
        group = str(ref.get("apiGroup", ""))
        return group, capi.preferred(self.kube, group)

    # -- writing -------------------------------------------------------------------------

    def roll(
        self,
        cluster: ClusterDocument,
        pool: NodePool,
        *,
        template: str,
        image: str,
        source: str,
        previous_image: str,
        replicas: int,
        max_surge: str,
        max_unavailable: str,
        min_ready_seconds: int = 0,
    ) -> bool:
        """Point the pool's MachineDeployment at ``template``; True when this call swapped it."""
        ref = pool.machine_deployment
        assert ref is not None and ref.name is not None
        namespace = cluster.namespace
        md = self.get("machinedeployments", namespace, ref.name)
        current = str(md["spec"]["template"]["spec"]["infrastructureRef"].get("name", ""))
        swap = current != template
        if swap:
            field = pool.machine_template.image_field if pool.machine_template else None
            infra = md["spec"]["template"]["spec"]["infrastructureRef"]
            self._clone(infra, namespace, template, field or DEFAULT_IMAGE_FIELD, source, cluster)
        body = deployment_patch(
            self.version,
            md,
            template=template,
            image=image,
            previous_image=previous_image,
            replicas=replicas,
            max_surge=max_surge,
            max_unavailable=max_unavailable,
            min_ready_seconds=min_ready_seconds,
        )
        self._patch("machinedeployments", namespace, ref.name, body)
        return swap

    def _clone(
        self,
        ref: dict[str, Any],
        namespace: str,
        name: str,
        image_field: str,
        source: str,
        cluster: ClusterDocument,
    ) -> None:
        """Create ``name``, a copy of the template ``ref`` names with ``source`` at the field."""
        group, version = self._template_gv(ref)
        kind = str(ref.get("kind", ""))
        original = call_json(
            f"reading {kind} {namespace}/{ref.get('name')}",
            self.kube.custom.get_namespaced_custom_object,
            group,
            version,
            namespace,
            _plural(kind),
            ref.get("name", ""),
            _request_timeout=REQUEST_TIMEOUT,
        )
        clone: dict[str, Any] = {
            "apiVersion": f"{group}/{version}",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    **((original.get("metadata") or {}).get("labels") or {}),
                    CLUSTER_NAME_LABEL: cluster.name,
                },
                "annotations": {
                    "cluster.x-k8s.io/cloned-from-name": str(ref.get("name", "")),
                    "cluster.x-k8s.io/cloned-from-groupkind": f"{kind}.{group}",
                },
            },
            "spec": copy.deepcopy(original.get("spec") or {}),
        }
        _set_path(clone, image_field, source)
        try:
            write(
                f"creating {kind} {namespace}/{name}",
                self.kube.custom.create_namespaced_custom_object,
                group,
                version,
                namespace,
                _plural(kind),
                clone,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except Conflict as err:
            if err.reason != "AlreadyExists":
                raise
            # Made by an earlier attempt (before a crash): its name is its content.

    def _patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        write(
            f"patching {plural} {namespace}/{name}",
            self.kube.custom.patch_namespaced_custom_object,
            GROUP,
            self.version,
            namespace,
            plural,
            name,
            body,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def roll_topology(
        self,
        cluster: ClusterDocument,
        pool: NodePool,
        *,
        image: str,
        source: str,
        replicas: int,
        max_surge: str,
        max_unavailable: str,
        min_ready_seconds: int = 0,
    ) -> bool:
        """Write the pool's topology worker entry; True when it changed anything."""
        ref = pool.machine_deployment
        assert ref is not None and ref.topology is not None
        obj = self.get("clusters", cluster.namespace, cluster.name)
        body = topology_patch(
            self.version,
            obj,
            worker=ref.topology,
            variable=ref.image_variable or DEFAULT_VARIABLE,
            image=image,
            source=source,
            replicas=replicas,
            max_surge=max_surge,
            max_unavailable=max_unavailable,
            min_ready_seconds=min_ready_seconds,
        )
        if body is None:
            return False
        self._patch("clusters", cluster.namespace, cluster.name, body)
        return True

    def pause(self, cluster: ClusterDocument, pool: NodePool) -> None:
        """Stop Cluster API rolling the pool: ``spec.paused`` on its MachineDeployment; for a
        topology pool, on the Cluster (upstream pauses every controller of its objects)."""
        ref = pool.machine_deployment
        assert ref is not None
        if ref.name is not None:
            self._patch(
                "machinedeployments", cluster.namespace, ref.name, {"spec": {"paused": True}}
            )
        else:
            self._patch("clusters", cluster.namespace, cluster.name, {"spec": {"paused": True}})
