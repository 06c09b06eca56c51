"""Both Cluster API shapes read into the same typed values; the version chosen by discovery.

Pure: ``gitops.kube.capi`` and ``gitops.kube.translate`` on hand-written wire objects, one
Machine spelled as v1beta1 and as v1beta2 (as upstream's conversion spells it), read alike.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitops.inventory import Condition, ObjectRef
from gitops.kube import capi, translate
from gitops.kube.errors import BadConfig

T0 = "2026-01-01T00:00:00Z"
READY = {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": T0}
UP_TO_DATE = {
    "type": "UpToDate",
    "status": "False",
    "reason": "NotUpToDate",
    "lastTransitionTime": T0,
}
OLD_READY = {"type": "Ready", "status": "False", "severity": "Warning", "lastTransitionTime": T0}


def _meta() -> dict[str, Any]:
    return {"name": "m1", "namespace": "prod", "labels": {"node.cluster.x-k8s.io/pool": "gpu"}}


def v1beta1_machine() -> dict[str, Any]:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": _meta(),
        "spec": {
            "clusterName": "prod",
            "bootstrap": {
                "configRef": {
                    "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
                    "kind": "KubeadmConfig",
                    "name": "m1",
                    "namespace": "prod",
                }
            },
            "infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
                "kind": "AWSMachine",
                "name": "m1",
                "namespace": "prod",
            },
            "nodeDrainTimeout": "1h30m0s",
            "failureDomain": "eu-1a",
            "version": "v1.31.4",
        },
        "status": {
            "phase": "Running",
            "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "u"},
            "infrastructureReady": True,
            "bootstrapReady": True,
            "failureReason": "UpdateError",
            "failureMessage": "boom",
            "conditions": [OLD_READY],
            "v1beta2": {"conditions": [READY, UP_TO_DATE]},
        },
    }


def v1beta2_machine() -> dict[str, Any]:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Machine",
        "metadata": _meta(),
        "spec": {
            "clusterName": "prod",
            "bootstrap": {
                "configRef": {
                    "apiGroup": "bootstrap.cluster.x-k8s.io",
                    "kind": "KubeadmConfig",
                    "name": "m1",
                }
            },
            "infrastructureRef": {
                "apiGroup": "infrastructure.cluster.x-k8s.io",
                "kind": "AWSMachine",
                "name": "m1",
            },
            "deletion": {"nodeDrainTimeoutSeconds": 5400},
            "failureDomain": "eu-1a",
            "version": "v1.31.4",
        },
        "status": {
            "phase": "Running",
            "nodeRef": {"name": "node-1"},
            "initialization": {
                "infrastructureProvisioned": True,
                "bootstrapDataSecretCreated": True,
            },
            "conditions": [READY, UP_TO_DATE],
            "deprecated": {
                "v1beta1": {
                    "failureReason": "UpdateError",
                    "failureMessage": "boom",
                    "conditions": [OLD_READY],
                }
            },
        },
    }


def test_a_machine_reads_the_same_in_either_version() -> None:
    old, new = translate.machine(v1beta1_machine()), translate.machine(v1beta2_machine())
    assert old == new
    assert new.infrastructure == ObjectRef(
        "infrastructure.cluster.x-k8s.io", "AWSMachine", "m1", "prod"
    )
    assert new.bootstrap == ObjectRef("bootstrap.cluster.x-k8s.io", "KubeadmConfig", "m1", "prod")
    assert new.drain_timeout == 5400.0
    assert new.node == "node-1" and new.zone == "eu-1a" and new.pool == "gpu"
    assert new.infrastructure_ready
    assert new.failure == "UpdateError: boom"
    ready = new.condition("Ready")
    assert ready is not None and ready.status == "True"  # the v1beta2 meaning, not the old one
    assert new.condition("UpToDate") == Condition(
        "UpToDate", "False", "NotUpToDate", "", translate.timestamp(T0)
    )


def test_the_older_conditions_read_from_either_place() -> None:
    assert capi.v1beta1_conditions(v1beta1_machine()) == [OLD_READY]
    assert capi.v1beta1_conditions(v1beta2_machine()) == [OLD_READY]
    assert capi.conditions(v1beta1_machine()) == capi.conditions(v1beta2_machine())


def test_unset_fields_read_as_unset_in_either_version() -> None:
    for obj in (v1beta1_machine(), v1beta2_machine()):
        del obj["status"]
        obj["spec"].pop("nodeDrainTimeout", None)
        obj["spec"].pop("deletion", None)
        machine = translate.machine(obj)
        assert machine.drain_timeout is None
        assert (
            not machine.infrastructure_ready and machine.failure == "" and machine.conditions == ()
        )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("0", 0.0),
        ("45s", 45.0),
        ("30m0s", 1800.0),
        ("1h30m0s", 5400.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert capi.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten", "10x", "m10"])
def test_not_a_go_duration(text: str) -> None:
    assert capi.duration(text) is None


@pytest.mark.parametrize("seconds", [0, 45, 60, 1800, 3600, 5400, 90061])
def test_durations_written_read_back(seconds: int) -> None:
    assert capi.duration(capi.go_duration(seconds)) == seconds


def test_an_infrastructure_machine_is_provisioned_on_either_contract() -> None:
    assert capi.infra_provisioned({"status": {"ready": True}})
    assert capi.infra_provisioned({"status": {"initialization": {"provisioned": True}}})
    # A v1beta2-contract provider that still fills the old field is read by the new one.
    assert not capi.infra_provisioned(
        {"status": {"ready": True, "initialization": {"provisioned": False}}}
    )
    assert not capi.infra_provisioned({"status": {}})
    assert not capi.infra_provisioned({})


def test_references_are_written_in_the_shape_of_the_version() -> None:
    args = ("infrastructure.cluster.x-k8s.io/v1beta1", "AWSMachine", "m", "ns")
    assert capi.write_ref("v1beta2", *args) == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "AWSMachine",
        "name": "m",
    }
    assert capi.write_ref("v1beta1", *args) == {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "AWSMachine",
        "name": "m",
        "namespace": "ns",
    }
    assert capi.write_drain_timeout("v1beta2", 600) == {
        "deletion": {"nodeDrainTimeoutSeconds": 600}
    }
    assert capi.write_drain_timeout("v1beta1", 600) == {"nodeDrainTimeout": "10m0s"}


def _groups(*versions: str) -> dict[str, Any]:
    cluster_api = {
        "name": "cluster.x-k8s.io",
        "versions": [{"groupVersion": f"cluster.x-k8s.io/{v}", "version": v} for v in versions],
    }
    return {"kind": "APIGroupList", "groups": [{"name": "apps", "versions": []}, cluster_api]}


def test_v1beta2_is_spoken_when_served_else_v1beta1() -> None:
    assert capi.choose(capi.served(_groups("v1beta2", "v1beta1"))) == "v1beta2"
    assert capi.choose(capi.served(_groups("v1beta1", "v1beta2"))) == "v1beta2"
    assert capi.choose(capi.served(_groups("v1beta1"))) == "v1beta1"
    assert capi.choose(capi.served(_groups("v1beta2"))) == "v1beta2"


def test_a_server_without_a_version_gitops_speaks_is_refused_clearly() -> None:
    with pytest.raises(BadConfig, match=r"serves no Cluster API version.*served: none"):
        capi.choose(capi.served({"groups": []}))
    with pytest.raises(BadConfig, match=r"served: v1alpha4"):
        capi.choose(capi.served(_groups("v1alpha4")))
