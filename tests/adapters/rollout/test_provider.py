"""The Cluster API provider against the simulator: clone, create, stay idempotent, stay valid.

``ClusterAPIProvider.create_replacement`` must make a Machine the way a MachineSet does: clone
the pool's ``SimMachineTemplate`` into a ``SimMachine`` whose spec is the template's, with the
image's source written at the pool's ``imageField``; then create the Machine pointing at it,
carrying the labels and annotations the planner reads back. Creating twice for the same step
creates nothing new. Machines are written in the version the management cluster serves best:
v1beta2 (references by ``apiGroup``, ``spec.deletion``) by default, v1beta1 against a server
that serves only v1beta1. Every Machine it builds, as sent and as the server returns it in the
version written, validates against the upstream CRD schema of that version, read in place from
``../shared/crds``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from gitops.fleet.wellknown import (
    CLUSTER_NAME_LABEL,
    IMAGE_ANNOTATION,
    PHASE_ANNOTATION,
    PLAN_ID_ANNOTATION,
    POOL_ANNOTATION,
    POOL_LABEL,
    REPLACES_ANNOTATION,
)
from gitops.kube.refs import MachineRef
from gitops.providers.clusterapi import ClusterAPIProvider, MachineRequest, machine_name
from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.invariants import load_events
from tests.sim.crds import assert_valid_crd

VERSIONS = pytest.mark.parametrize("capi_version", ["v1beta2", "v1beta1"])

SIM_GROUP, SIM_VERSION = "infrastructure.cluster.x-k8s.io", "v1alpha1"


def _request(r: Rollout, *, replaces: str = "canary-workers-old01", plan_id: str = "p1") -> Any:
    cluster = r.fleet.cluster("canary")
    assert cluster is not None
    pool = cluster.pool("workers")
    assert pool is not None
    return MachineRequest(
        cluster=cluster,
        pool=pool,
        image_name="os-2",
        image=r.fleet.images["os-2"],
        zone="z-b",
        replaces=replaces,
        plan_id=plan_id,
    )


def _get(r: Rollout, group: str, version: str, plural: str, namespace: str, name: str) -> Any:
    response = r.management.custom.get_namespaced_custom_object(
        group, version, namespace, plural, name, _preload_content=False
    )
    return json.loads(response.data)


def _count(r: Rollout, group: str, version: str, plural: str, namespace: str) -> int:
    response = r.management.custom.list_namespaced_custom_object(
        group, version, namespace, plural, _preload_content=False
    )
    return len(json.loads(response.data)["items"])


@VERSIONS
def test_create_replacement_clones_the_template_and_builds_the_machine(
    rollout: Callable[..., Rollout], capi_version: str
) -> None:
    r = rollout(initial="previous", capi_version=capi_version)
    request = _request(r)
    template_ref = request.pool.machine_template.infrastructure_ref
    ns = request.cluster.namespace
    template = _get(r, SIM_GROUP, SIM_VERSION, "simmachinetemplates", ns, template_ref.name)
    assert template["spec"]["template"]["spec"]["image"] == "registry/os:v1"  # the old image

    provider = ClusterAPIProvider(r.management)
    created = provider.create_replacement(request)
    name = created.name
    assert created == MachineRef(ns, machine_name(request))

    # The clone: the template's spec with the new image at imageField, labelled, traced back.
    clone = _get(r, SIM_GROUP, SIM_VERSION, "simmachines", ns, name)
    assert clone["kind"] == "SimMachine"
    expected_spec = copy.deepcopy(template["spec"]["template"]["spec"])
    expected_spec["image"] = "registry/os:v2"
    assert {k: clone["spec"][k] for k in expected_spec} == expected_spec
    assert clone["metadata"]["labels"][CLUSTER_NAME_LABEL] == "canary"
    assert clone["metadata"]["labels"][POOL_LABEL] == "workers"
    assert clone["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"] == (
        template_ref.name
    )
    assert clone["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-groupkind"] == (
        f"SimMachineTemplate.{SIM_GROUP}"
    )

    # The Machine, as the server holds it, in the version it was written in.
    assert provider.version == capi_version
    machine = _get(r, "cluster.x-k8s.io", capi_version, "machines", ns, name)
    assert machine["apiVersion"] == f"cluster.x-k8s.io/{capi_version}"
    meta, spec = machine["metadata"], machine["spec"]
    assert meta["labels"][CLUSTER_NAME_LABEL] == "canary"
    assert meta["labels"][POOL_LABEL] == "workers"
    assert {
        k: meta["annotations"][k]
        for k in (
            POOL_ANNOTATION,
            IMAGE_ANNOTATION,
            PLAN_ID_ANNOTATION,
            REPLACES_ANNOTATION,
            PHASE_ANNOTATION,
        )
    } == {
        POOL_ANNOTATION: "workers",
        IMAGE_ANNOTATION: "os-2",
        PLAN_ID_ANNOTATION: "p1",
        REPLACES_ANNOTATION: "canary-workers-old01",
        PHASE_ANNOTATION: "provisioning",
    }
    assert spec["clusterName"] == "canary"
    assert spec["version"] == "v1.31.4"
    assert spec["bootstrap"] == {"dataSecretName": "canary-workers-bootstrap"}
    drain = int(request.pool.update.drain_timeout)
    if capi_version == "v1beta2":
        assert spec["infrastructureRef"] == {
            "apiGroup": SIM_GROUP,
            "kind": "SimMachine",
            "name": name,
        }
        assert spec["deletion"] == {"nodeDrainTimeoutSeconds": drain}
    else:
        assert spec["infrastructureRef"] == {
            "apiVersion": f"{SIM_GROUP}/{SIM_VERSION}",
            "kind": "SimMachine",
            "name": name,
            "namespace": ns,
        }
        assert spec["nodeDrainTimeout"] == "30m0s" and drain == 1800
    assert spec["failureDomain"] == "z-b"

    # Valid against the upstream CRD, as built (from the clone it points at) and as served.
    built = provider.machine_for(request, clone, None)
    assert built["apiVersion"] == f"cluster.x-k8s.io/{capi_version}"
    assert_valid_crd(built)
    assert_valid_crd(machine)
    # Read back, both shapes give the same typed values.
    (seen,) = [m for m in provider.list_machines(request.cluster, "workers") if m.name == name]
    assert seen.infrastructure is not None
    assert (seen.infrastructure.group, seen.infrastructure.kind, seen.infrastructure.name) == (
        SIM_GROUP,
        "SimMachine",
        name,
    )
    assert seen.infrastructure.namespace == ns
    assert seen.drain_timeout == drain


@VERSIONS
def test_creating_twice_for_the_same_step_creates_nothing_new(
    rollout: Callable[..., Rollout], capi_version: str
) -> None:
    r = rollout(initial="previous", capi_version=capi_version)
    provider = ClusterAPIProvider(r.management)
    ns = "canary"
    machines_before = _count(r, "cluster.x-k8s.io", capi_version, "machines", ns)
    clones_before = _count(r, SIM_GROUP, SIM_VERSION, "simmachines", ns)
    first = provider.create_replacement(_request(r))
    again = provider.create_replacement(_request(r))  # a retry, or a restart after a crash
    assert again == first
    assert _count(r, "cluster.x-k8s.io", capi_version, "machines", ns) == machines_before + 1
    assert _count(r, SIM_GROUP, SIM_VERSION, "simmachines", ns) == clones_before + 1
    # The world records a Machine's creation on its next tick, not in the request: wait for it.
    deadline = time.monotonic() + 10
    while not (created := [e for e in load_events(r.audit) if e.get("event") == "machine-created"]):
        assert time.monotonic() < deadline, "the world never recorded the Machine"
        time.sleep(0.02)
    assert [e["machine"] for e in created] == [first.name]
    # The repeat reached the server and was answered AlreadyExists, not skipped from memory.
    conflicts = [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request" and e["verb"] == "create" and e["code"] == 409
    ]
    assert {e["resource"] for e in conflicts} == {"machines", "simmachines"}
    # Another step (another node, or the same node under another plan) is another Machine.
    other = provider.create_replacement(_request(r, replaces="canary-workers-old02"))
    assert other.name != first.name
    assert _count(r, "cluster.x-k8s.io", capi_version, "machines", ns) == machines_before + 2


@VERSIONS
def test_a_bootstrap_template_is_referenced_and_the_machine_stays_valid(
    rollout: Callable[..., Rollout], capi_version: str
) -> None:
    """With a bootstrap template the Machine names the clone as configRef (built offline: the
    simulator serves no bootstrap provider) and still validates against the CRD."""
    r = rollout(initial="previous", capi_version=capi_version)
    request = _request(r)
    provider = ClusterAPIProvider(r.management)
    infra = {
        "apiVersion": f"{SIM_GROUP}/{SIM_VERSION}",
        "kind": "SimMachine",
        "metadata": {"name": "m", "namespace": "canary"},
    }
    bootstrap = {
        "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
        "kind": "KubeadmConfig",
        "metadata": {"name": "m", "namespace": "canary"},
    }
    machine = provider.machine_for(request, infra, bootstrap)
    expected: dict[str, str] = {"kind": "KubeadmConfig", "name": "m"}
    if capi_version == "v1beta2":
        expected["apiGroup"] = "bootstrap.cluster.x-k8s.io"
    else:
        expected.update(apiVersion="bootstrap.cluster.x-k8s.io/v1beta1", namespace="canary")
    assert machine["spec"]["bootstrap"] == {"configRef": expected}
    assert_valid_crd(machine)


def test_list_a_pools_machines_and_delete_one_idempotently(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="declared")
    provider = ClusterAPIProvider(r.management)
    canary = r.fleet.cluster("canary")
    assert canary is not None
    pool = [m.name for m in provider.list_machines(canary, "workers")]
    everything = provider.list_machines(canary)
    assert len(pool) == 2 and len(everything) == 2  # canary has one pool of two nodes
    assert all(m.pool == "workers" and m.namespace == canary.namespace for m in everything)
    assert provider.list_machines(canary, "no-such-pool") == ()
    provider.delete_machine(canary.namespace, pool[0])
    provider.delete_machine(canary.namespace, pool[0])  # deleting twice is not an error
    provider.delete_machine(canary.namespace, "never-existed")
    deletes = [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request" and e["verb"] == "delete" and e["resource"] == "machines"
    ]
    assert [e["code"] for e in deletes][:1] == [200]
