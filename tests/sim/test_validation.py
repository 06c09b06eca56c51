"""Writes are decoded and validated as a real API server does: unknown fields per
``fieldValidation``, values of the wrong type, label and annotation syntax, immutable fields.
Against a running simulator with the official client (dict bodies, sent as they are)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from gitops.sim import Simulator
from gitops.sim.api.resources import LEASES, MACHINES, NODES
from tests.sim.conftest import machine
from tests.sim.helpers import raw

Obj = dict[str, Any]
NOW = "2026-12-04T21:00:00.000000Z"


def lease(name: str = "l1", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": NOW, **spec},
    }


def refusal(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ApiException) as info:
        call()
    body = json.loads(info.value.body)
    return info.value.status, body["reason"], body["message"]


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore", None])
def test_unknown_fields_follow_field_validation(api_sim: Simulator, mode: str | None) -> None:
    query = f"?fieldValidation={mode}" if mode else ""
    body = json.dumps(lease(foo="bar") | {"extra": 1}).encode()
    code, headers, answer = raw(
        api_sim,
        f"/apis/coordination.k8s.io/v1/namespaces/default/leases{query}",
        method="POST",
        body=body,
        content_type="application/json",
    )
    if mode == "Strict":
        assert code == 400 and answer["reason"] == "BadRequest"
        assert answer["message"] == (
            'Lease in version "v1" cannot be handled as a Lease: strict decoding error: '
            'unknown field "spec.foo", unknown field "extra"'
        )
        return
    assert code == 201
    assert "foo" not in answer["spec"] and "extra" not in answer
    stored = api_sim.store.get("", LEASES, "default", "l1")
    assert "foo" not in stored["spec"] and "extra" not in stored
    warning = headers.get("Warning", "")
    if mode == "Ignore":
        assert warning == ""
    else:  # Warn is the default
        assert '299 - "unknown field \\"spec.foo\\""' in warning


def test_duplicate_fields_are_strict_errors(api_sim: Simulator) -> None:
    body = b'{"metadata": {"name": "d", "name": "d"}, "data": {"a": "1"}}'
    code, _, answer = raw(
        api_sim,
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        method="POST",
        body=body,
        content_type="application/json",
    )
    assert code == 400 and 'duplicate field "metadata.name"' in answer["message"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"renewTime": "yesterday"},
            'Lease in version "v1" cannot be handled as a Lease: parsing time "yesterday" as '
            '"2006-01-02T15:04:05.000000Z07:00": cannot parse "yesterday" as "2006"',
        ),
        (
            {"renewTime": "2026-12-04T21:00:00Z"},  # a MicroTime needs its six digits
            'parsing time "2026-12-04T21:00:00Z" as "2006-01-02T15:04:05.000000Z07:00"',
        ),
        (
            {"leaseDurationSeconds": 15.5},
            "json: cannot unmarshal number 15.5 into Go struct field "
            "LeaseSpec.spec.leaseDurationSeconds of type int32",
        ),
        (
            {"holderIdentity": 7},
            "json: cannot unmarshal number 7 into Go struct field LeaseSpec.spec.holderIdentity "
            "of type string",
        ),
    ],
)
def test_values_of_the_wrong_type_are_400(api_sim: Simulator, spec: Obj, message: str) -> None:
    # Sent raw: the official client (pydantic models) refuses such bodies before sending.
    code, _, answer = raw(
        api_sim,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        method="POST",
        body=json.dumps(lease(**spec)).encode(),
        content_type="application/json",
    )
    assert (code, answer["reason"]) == (400, "BadRequest")
    assert message in answer["message"]
    assert api_sim.store.count("", LEASES) == 0


def test_patches_are_decoded_too(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node({"metadata": {"name": "n1"}})
    code, _, text = refusal(lambda: core.patch_node("n1", {"spec": {"unschedulable": "yes"}}))
    assert code == 400 and "NodeSpec.spec.unschedulable of type bool" in text
    code, _, text = refusal(
        lambda: core.patch_node(
            "n1",
            {"spec": {"taints": [{"key": "k", "effect": "NoSchedule", "x": 1}]}},
            field_validation="Strict",
        )
    )
    assert code == 400 and 'unknown field "spec.taints[0].x"' in text
    core.patch_node("n1", {"spec": {"podCIDR": "10.0.0.0/24", "nope": True}})
    assert "nope" not in api_sim.store.get("c1", NODES, None, "n1")["spec"]


def test_machines_drop_or_refuse_unknown_fields_and_keep_their_422(
    api_sim: Simulator, mgmt: k8s.ApiClient
) -> None:
    custom = k8s.CustomObjectsApi(mgmt)
    body = machine("m1") | {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine"}
    body["spec"]["foo"] = "bar"
    code, _, text = refusal(
        lambda: custom.create_namespaced_custom_object(
            "cluster.x-k8s.io", "v1beta1", "default", "machines", body, field_validation="Strict"
        )
    )
    assert code == 400 and 'unknown field "spec.foo"' in text
    custom.create_namespaced_custom_object(
        "cluster.x-k8s.io", "v1beta1", "default", "machines", body
    )
    assert "foo" not in api_sim.store.get("", MACHINES, "default", "m1")["spec"]
    body["metadata"]["name"] = "m2"
    body["spec"]["clusterName"] = 3
    code, reason, _ = refusal(
        lambda: custom.create_namespaced_custom_object(
            "cluster.x-k8s.io", "v1beta1", "default", "machines", body
        )
    )
    assert (code, reason) == (422, "Invalid")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"bad key!": "x"},
            'metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
        ({"a/b/c": "x"}, 'Invalid value: "a/b/c": a qualified name must consist of'),
        ({"Example.com/k": "x"}, "prefix part a lowercase RFC 1123 subdomain must consist of"),
        ({"k" * 64: "x"}, "name part must be no more than 63 characters"),
        ({"k": "v" * 64}, f'Invalid value: "{"v" * 64}": must be no more than 63 characters'),
        ({"k": "-v"}, 'Invalid value: "-v": a valid label must be an empty string or consist of'),
    ],
)
def test_label_syntax_is_refused_as_upstream(
    c1: k8s.ApiClient, labels: dict[str, str], message: str
) -> None:
    core = k8s.CoreV1Api(c1)
    code, reason, text = refusal(
        lambda: core.create_node({"metadata": {"name": "n1", "labels": labels}})
    )
    assert (code, reason) == (422, "Invalid")
    assert text.startswith('Node "n1" is invalid: ') and message in text
    core.create_node({"metadata": {"name": "n1", "labels": {"example.com/ok_1.x": ""}}})
    code, _, text = refusal(lambda: core.patch_node("n1", {"metadata": {"labels": labels}}))
    assert code == 422 and message in text


def test_annotation_keys_are_qualified_names_but_values_are_free(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node({"metadata": {"name": "n1", "annotations": {"a.io/k": "any value: " * 20}}})
    code, _, text = refusal(
        lambda: core.patch_node("n1", {"metadata": {"annotations": {"not valid": "x"}}})
    )
    assert code == 422 and 'metadata.annotations: Invalid value: "not valid"' in text


def test_immutable_fields(api_sim: Simulator, c1: k8s.ApiClient, mgmt: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    node = core.create_node({"metadata": {"name": "n1"}})
    code, _, text = refusal(lambda: core.patch_node("n1", {"metadata": {"uid": "other"}}))
    assert code == 422 and 'metadata.uid: Invalid value: "other": field is immutable' in text
    assert core.read_node("n1").metadata.uid == node.metadata.uid
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "data": {"k": "dg=="}, "immutable": True}
    )
    code, _, text = refusal(
        lambda: core.patch_namespaced_secret("s", "default", {"data": {"k": "dw=="}})
    )
    assert code == 422 and "data: Forbidden: field is immutable when `immutable` is set" in text
    core.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"still": "ok"}}})
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a:1"}]}}
    core.create_namespaced_pod("default", pod)
    core.patch_namespaced_pod(
        "p", "default", {"spec": {"containers": [{"name": "a", "image": "a:2"}]}}
    )
    code, _, text = refusal(
        lambda: core.patch_namespaced_pod("p", "default", {"spec": {"restartPolicy": "Never"}})
    )
    assert code == 422 and "spec: Forbidden: pod updates may not change fields" in text
    custom = k8s.CustomObjectsApi(mgmt)
    body = machine("m1") | {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine"}
    custom.create_namespaced_custom_object(
        "cluster.x-k8s.io", "v1beta1", "default", "machines", body
    )
    code, _, text = refusal(
        lambda: custom.patch_namespaced_custom_object(
            "cluster.x-k8s.io",
            "v1beta1",
            "default",
            "machines",
            "m1",
            {"spec": {"clusterName": "c2"}},
        )
    )
    assert code == 422 and "spec.clusterName: Forbidden: field is immutable" in text


def test_a_base64_slip_in_secret_data_is_400(api_sim: Simulator) -> None:
    body = {"metadata": {"name": "s"}, "data": {"k": "not base64!"}}
    code, _, answer = raw(
        api_sim,
        "/api/v1/namespaces/default/secrets",
        method="POST",
        body=json.dumps(body).encode(),
        content_type="application/json",
    )
    assert code == 400 and "illegal base64 data at input byte 3" in answer["message"]
