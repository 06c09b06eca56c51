"""PATCH semantics: JSON merge, strategic merge (merge keys, directives) and JSON patch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.patch import JSON_PATCH, MERGE, STRATEGIC, apply_patch
from gitops.sim.api.resources import MACHINES, NODES, PODS

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "side:1"},
        ],
        "tolerations": [{"key": "t1", "operator": "Exists"}],
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Initialized", "status": "True"},
        ]
    },
}
NODE: dict[str, Any] = {
    "metadata": {"name": "n"},
    "spec": {
        "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "DiskPressure", "status": "False"},
        ]
    },
}


def patch(kind: str, obj: dict[str, Any], body: Any, rtype: Any = PODS) -> dict[str, Any]:
    return apply_patch(kind, obj, json.dumps(body).encode(), rtype)


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists() -> None:
    out = patch(
        MERGE,
        POD,
        {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"containers": [{"name": "only"}]}},
    )
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["spec"]["containers"] == [{"name": "only"}]
    assert POD["metadata"]["labels"] == {"a": "1", "b": "2"}  # the original is untouched


def test_strategic_merge_merges_containers_by_name() -> None:
    out = patch(
        STRATEGIC,
        POD,
        {
            "spec": {
                "containers": [{"name": "side", "image": "side:2"}, {"name": "new", "image": "n:1"}]
            }
        },
    )
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [
        ("app", "app:1"),
        ("side", "side:2"),
        ("new", "n:1"),
    ]
    assert out["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_strategic_merge_merges_conditions_by_type_and_replaces_taints() -> None:
    out = patch(
        STRATEGIC, NODE, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, NODES
    )
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "False"},
        {"type": "DiskPressure", "status": "False"},
    ]
    out = patch(STRATEGIC, NODE, {"spec": {"taints": [{"key": "c", "effect": "NoExecute"}]}}, NODES)
    assert out["spec"]["taints"] == [{"key": "c", "effect": "NoExecute"}]


def test_strategic_merge_directives() -> None:
    out = patch(STRATEGIC, POD, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    out = patch(STRATEGIC, POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert out["metadata"]["finalizers"] == []
    out = patch(STRATEGIC, POD, {"metadata": {"finalizers": ["y"]}})
    assert out["metadata"]["finalizers"] == ["x", "y"]  # merged as a set, unlike a merge patch
    out = patch(STRATEGIC, POD, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert out["metadata"]["labels"] == {"z": "9"}
    out = patch(
        STRATEGIC,
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "app:2"}],
            }
        },
    )
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [
        ("side", "side:1"),
        ("app", "app:2"),
    ]


def test_strategic_merge_is_refused_for_custom_resources() -> None:
    with pytest.raises(ApiError) as info:
        patch(STRATEGIC, {"metadata": {"name": "m"}}, {"spec": {}}, MACHINES)
    assert (info.value.code, info.value.reason) == (415, "UnsupportedMediaType")


def test_json_patch_and_its_failures() -> None:
    out = patch(
        JSON_PATCH,
        NODE,
        [
            {"op": "add", "path": "/spec/unschedulable", "value": True},
            {"op": "remove", "path": "/spec/taints/0"},
        ],
        NODES,
    )
    assert out["spec"]["unschedulable"] is True
    assert [t["key"] for t in out["spec"]["taints"]] == ["b"]
    with pytest.raises(ApiError) as info:
        patch(JSON_PATCH, NODE, [{"op": "test", "path": "/metadata/name", "value": "other"}], NODES)
    assert info.value.code == 422
    with pytest.raises(ApiError) as info:
        patch(JSON_PATCH, NODE, {"op": "add"}, NODES)
    assert info.value.code == 400


def test_unknown_patch_types_and_bad_bodies() -> None:
    with pytest.raises(ApiError) as info:
        apply_patch("application/json", NODE, b"{}", NODES)
    assert info.value.code == 415
    with pytest.raises(ApiError) as info:
        apply_patch(MERGE, NODE, b"{not json", NODES)
    assert info.value.code == 400
