"""OpenAPI documents: ``/openapi/v2`` (JSON) and ``/openapi/v3`` per group/version, with the
schemas requests are decoded against, found by kind as kubectl finds them."""

from __future__ import annotations

from typing import Any

from gitops.sim import Simulator
from tests.sim.helpers import raw

Obj = dict[str, Any]


def by_gvk(definitions: Obj, group: str, version: str, kind: str) -> Obj:
    [found] = [
        d
        for d in definitions.values()
        if {"group": group, "version": version, "kind": kind}
        in d.get("x-kubernetes-group-version-kind", [])
    ]
    return found


def test_openapi_v2_has_every_kind_with_fields_and_merge_keys(api_sim: Simulator) -> None:
    code, _, doc = raw(api_sim, "/openapi/v2", accept="application/json")
    assert code == 200 and doc["swagger"] == "2.0"
    defs = doc["definitions"]
    lease = by_gvk(defs, "coordination.k8s.io", "v1", "Lease")
    spec = defs[lease["properties"]["spec"]["$ref"].split("/")[-1]]
    assert spec["properties"]["renewTime"]["format"] == "date-time"
    assert spec["properties"]["leaseDurationSeconds"]["type"] == "integer"
    assert "holder" in spec["properties"]["holderIdentity"]["description"]
    pod_spec = defs["V1PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    machine = by_gvk(defs, "cluster.x-k8s.io", "v1beta1", "Machine")
    assert "clusterName" in machine["properties"]["spec"]["properties"]
    assert "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}" in doc["paths"]
    code, _, _ = raw(
        api_sim, "/openapi/v2", accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert code == 406


def test_openapi_v3_index_and_group_documents(api_sim: Simulator) -> None:
    code, _, index = raw(api_sim, "/openapi/v3")
    assert code == 200
    assert {"api/v1", "apis/coordination.k8s.io/v1", "apis/cluster.x-k8s.io/v1beta1"} <= set(
        index["paths"]
    )
    url = index["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
    code, _, doc = raw(api_sim, url)
    assert code == 200 and doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    lease = by_gvk(schemas, "coordination.k8s.io", "v1", "Lease")
    assert lease["properties"]["metadata"]["$ref"] == "#/components/schemas/V1ObjectMeta"
    assert "V1ObjectMeta" in schemas and "V1Pod" not in schemas  # only what the group needs
    patch = doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"][
        "patch"
    ]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
