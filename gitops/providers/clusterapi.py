"""Cluster API machine lifecycle: clone templates, create and delete Machines.

Adapter layer, talking to the management cluster through ``gitops.kube``. A replacement is
made the way a MachineSet makes a Machine: the pool's infrastructure template (and bootstrap
template, when given) is cloned into a new object whose spec is the template's
``spec.template.spec``, the image's ``source`` written at the pool's ``imageField``; then the
Machine is created pointing at the clone. Names are derived from what the machine is *for* (the
node it replaces), so repeating a create after a crash finds the object already there instead
of making a second one. The executor gets typed values back (a ``MachineRef``, translated
``gitops.inventory.Machine`` values); the objects built here are the request bodies only.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitops.fleet.spec import ClusterDocument, Image, NodePool, ObjectReference
from gitops.fleet.wellknown import (
    CLUSTER_NAME_LABEL,
    IMAGE_ANNOTATION,
    PHASE_ANNOTATION,
    PLAN_ID_ANNOTATION,
    POOL_ANNOTATION,
    POOL_LABEL,
    REPLACES_ANNOTATION,
    standalone_machine_labels,
)
from gitops.inventory import Machine
from gitops.kube import capi, translate
from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import Conflict, NotFound, call_json, write
from gitops.kube.refs import MachineRef
from gitops.providers.machinedeployments import MachineDeploymentProvider

GROUP, PLURAL = capi.GROUP, "machines"
MACHINE_FINALIZER = "machine.cluster.x-k8s.io"


@dataclass(frozen=True)
class MachineRequest:
    """What a new machine is for: the pool, its image, its zone and the node it replaces."""

    cluster: ClusterDocument
    pool: NodePool
    image_name: str
    image: Image
    zone: str
    replaces: str  # the node replaced; "" for a scale-up
    plan_id: str
    # For a scale-up, its step in the plan (what tells two of them apart); after failures in
    # the wave, also the attempt, so a retry never reuses a failed Machine's name.
    slot: str = ""


def machine_name(request: MachineRequest) -> str:
    """The idempotency key of a create: unique to what the machine is for, under which plan.

    The plan id hashes the observed inventory, so while the controller has not yet seen its
    own new Machine (or after a crash, before it lists again) the same step gets the same name
    and a repeated create finds the object instead of making a second one.
    """
    key = "/".join(
        (
            request.cluster.name,
            request.pool.name,
            request.replaces,
            request.image_name,
            request.plan_id,
            request.slot,
        )
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:6]
    base = f"{request.cluster.name}-{request.pool.name}"[: 63 - 7]
    return f"{base}-{digest}"


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith("s") else "s")


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def _ref(version: str, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return capi.write_ref(version, obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"])


class ClusterAPIProvider:
    """Creates, lists and deletes a pool's Machines in the management cluster."""

    def __init__(
        self,
        management: Kube,
        *,
        template_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = management
        # Cluster API treats templates as immutable (a change is a new template), so a batch
        # of replacements clones from one read rather than one read per machine; the TTL bounds
        # how long a template edited in place anyway goes unseen.
        self.template_ttl = template_ttl
        self.clock = clock
        self._templates: dict[tuple[str, str, str, str], tuple[float, dict[str, Any]]] = {}
        # Pools that name a MachineDeployment are rolled through it instead (MachineDeployment
        # mode): the same management cluster, another kind of write.
        self.deployments = MachineDeploymentProvider(management)

    @property
    def version(self) -> str:
        """The Cluster API version Machines are written and read in: v1beta2 when the
        management cluster serves it, else v1beta1 (discovered once)."""
        return capi.version(self.kube)

    # -- reading -------------------------------------------------------------------------

    def get_template(self, ref: ObjectReference, namespace: str) -> dict[str, Any]:
        key = (ref.api_version, ref.kind, ref.namespace or namespace, ref.name)
        cached = self._templates.get(key)
        if cached is not None and self.clock() - cached[0] < self.template_ttl:
            return copy.deepcopy(cached[1])
        template = self._read_template(ref, namespace)
        self._templates[key] = (self.clock(), template)
        return copy.deepcopy(template)

    def _read_template(self, ref: ObjectReference, namespace: str) -> dict[str, Any]:
        group, version = _group_version(ref.api_version)
        return call_json(
            f"reading {ref.kind} {namespace}/{ref.name}",
            self.kube.custom.get_namespaced_custom_object,
            group,
            version,
            ref.namespace or namespace,
            _plural(ref.kind),
            ref.name,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def list_machines(
        self, cluster: ClusterDocument, pool: str | None = None
    ) -> tuple[Machine, ...]:
        """The cluster's Machines (of one pool when given), straight from the API server."""
        selector = f"{CLUSTER_NAME_LABEL}={cluster.name}" + (
            f",{POOL_LABEL}={pool}" if pool else ""
        )
        body = call_json(
            f"listing Machines of {cluster.name}",
            self.kube.custom.list_namespaced_custom_object,
            GROUP,
            self.version,
            cluster.namespace,
            PLURAL,
            label_selector=selector,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return tuple(translate.machine(m) for m in body.get("items") or [])

    # -- building ------------------------------------------------------------------------

    def clone_template(
        self,
        ref: ObjectReference,
        namespace: str,
        name: str,
        labels: dict[str, str],
        image_field: str | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """The object a template stamps out, named ``name``, with the image set when asked."""
        template = copy.deepcopy(self.get_template(ref, namespace))
        if image_field and source is not None:
            _set_path(template, image_field, source)
        spec = ((template.get("spec") or {}).get("template") or {}).get("spec") or {}
        template_meta = ((template.get("spec") or {}).get("template") or {}).get("metadata") or {}
        return {
            "apiVersion": ref.api_version,
            "kind": ref.kind.removesuffix("Template"),
            "metadata": {
                "name": name,
                "namespace": ref.namespace or namespace,
                "labels": {**(template_meta.get("labels") or {}), **labels},
                "annotations": {
                    **(template_meta.get("annotations") or {}),
                    "cluster.x-k8s.io/cloned-from-name": ref.name,
                    "cluster.x-k8s.io/cloned-from-groupkind": f"{ref.kind}.{_group_version(ref.api_version)[0]}",
                },
            },
            "spec": copy.deepcopy(spec),
        }

    def machine_for(
        self, request: MachineRequest, infra: dict[str, Any], bootstrap: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The Machine to create, in the version the management cluster speaks."""
        cluster, pool = request.cluster, request.pool
        version = self.version
        boot: dict[str, Any]
        if bootstrap is not None:
            boot = {"configRef": _ref(version, bootstrap)}
        else:
            boot = {"dataSecretName": f"{cluster.name}-{pool.name}-bootstrap"}
        return {
            "apiVersion": f"{GROUP}/{version}",
            "kind": "Machine",
            "metadata": {
                "name": machine_name(request),
                "namespace": cluster.namespace,
                "labels": standalone_machine_labels(cluster.name, pool.name),
                "annotations": {
                    POOL_ANNOTATION: pool.name,
                    IMAGE_ANNOTATION: request.image_name,
                    PLAN_ID_ANNOTATION: request.plan_id,
                    REPLACES_ANNOTATION: request.replaces,
                    PHASE_ANNOTATION: "provisioning",
                },
            },
            "spec": {
                "clusterName": cluster.name,
                "version": cluster.spec.kubernetes_version,
                "bootstrap": boot,
                "infrastructureRef": _ref(version, infra),
                "failureDomain": request.zone,
                # Cluster API drains a Machine it deletes; the executor drained it already,
                # so this only bounds a second drain (after onDrainTimeout: force) by the
                # pool's own drain timeout instead of Cluster API's default of forever.
                **capi.write_drain_timeout(version, pool.update.drain_timeout),
            },
        }

    # -- writing -------------------------------------------------------------------------

    def create_replacement(self, request: MachineRequest) -> MachineRef:
        """Create (or find, when a previous attempt already did) the machine for ``request``."""
        cluster, pool = request.cluster, request.pool
        template = pool.machine_template
        if template is None:
            raise NotFound(f"pool {cluster.name}/{pool.name} declares no machineTemplate to clone")
        name = machine_name(request)
        labels = standalone_machine_labels(cluster.name, pool.name)
        infra = self.clone_template(
            template.infrastructure_ref,
            cluster.namespace,
            name,
            labels,
            template.image_field,
            request.image.source,
        )
        self._create(infra)
        bootstrap = None
        if template.bootstrap_ref is not None:
            bootstrap = self.clone_template(template.bootstrap_ref, cluster.namespace, name, labels)
            self._create(bootstrap)
        machine = self.machine_for(request, infra, bootstrap)
        self._create(machine)
        return MachineRef(cluster.namespace, name)

    def _create(self, obj: dict[str, Any]) -> None:
        group, version = _group_version(obj["apiVersion"])
        meta = obj["metadata"]
        try:
            write(
                f"creating {obj['kind']} {meta['namespace']}/{meta['name']}",
                self.kube.custom.create_namespaced_custom_object,
                group,
                version,
                meta["namespace"],
                _plural(obj["kind"]),
                obj,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except Conflict as err:
            if err.reason != "AlreadyExists":
                raise
            # A previous attempt (before a crash) created it: creating is idempotent by name.

    def annotate_machine(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        write(
            f"annotating Machine {namespace}/{name}",
            self.kube.custom.patch_namespaced_custom_object,
            GROUP,
            self.version,
            namespace,
            PLURAL,
            name,
            {"metadata": {"annotations": annotations}},
            _request_timeout=REQUEST_TIMEOUT,
        )

    def delete_machine(self, namespace: str, name: str) -> None:
        """Delete a Machine (Cluster API drains nothing here: the executor drained it first)."""
        with contextlib.suppress(NotFound):  # already gone: deleting is idempotent
            write(
                f"deleting Machine {namespace}/{name}",
                self.kube.custom.delete_namespaced_custom_object,
                GROUP,
                self.version,
                namespace,
                PLURAL,
                name,
                _request_timeout=REQUEST_TIMEOUT,
            )
