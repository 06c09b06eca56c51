"""Server-side apply: create-or-update, fieldManager required, managedFields per manager,
conflicts with another manager's fields (409) unless forced. Raw PATCH requests, as kubectl
sends them (``application/apply-patch+yaml``)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from gitops.sim import Simulator
from gitops.sim.api.resources import CONFIGMAPS
from tests.sim.helpers import raw

Obj = dict[str, Any]
PATH = "/api/v1/namespaces/default/configmaps/cfg"


def config_map(**data: str) -> bytes:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}
    return yaml.safe_dump(doc).encode()


def apply(sim: Simulator, body: bytes, query: str) -> tuple[int, Obj]:
    code, _, answer = raw(
        sim,
        f"{PATH}?{query}",
        method="PATCH",
        body=body,
        content_type="application/apply-patch+yaml",
    )
    return code, answer


def test_apply_creates_then_updates_and_drops_what_it_no_longer_applies(api_sim: Simulator) -> None:
    code, created = apply(api_sim, config_map(a="1", b="2"), "fieldManager=alice")
    assert code == 201 and created["data"] == {"a": "1", "b": "2"}
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("alice", "Apply", "v1")
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    code, updated = apply(api_sim, config_map(a="10"), "fieldManager=alice")
    assert code == 200 and updated["data"] == {"a": "10"}
    assert api_sim.store.get("", CONFIGMAPS, "default", "cfg")["data"] == {"a": "10"}


def test_a_field_manager_is_required(api_sim: Simulator) -> None:
    code, answer = apply(api_sim, config_map(a="1"), "")
    assert code == 422 and answer["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
        "apply patch"
    )


def test_another_managers_field_conflicts_unless_forced(api_sim: Simulator) -> None:
    assert apply(api_sim, config_map(a="1"), "fieldManager=alice")[0] == 201
    assert (
        apply(api_sim, config_map(a="1", b="2"), "fieldManager=bob")[0] == 200
    )  # same value: shared
    code, answer = apply(api_sim, config_map(a="3"), "fieldManager=bob")
    assert code == 409 and answer["reason"] == "Conflict"
    assert answer["message"] == (
        'Apply failed with 1 conflict: conflict with "alice" using v1: .data.a'
    )
    assert answer["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    code, forced = apply(api_sim, config_map(a="3"), "fieldManager=bob&force=true")
    assert code == 200 and forced["data"] == {"a": "3"}  # bob no longer applies b: removed
    managers = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert managers == {"bob": {"f:data": {"f:a": {}}}}


def test_an_unknown_field_cannot_be_applied(api_sim: Simulator) -> None:
    doc = yaml.safe_load(config_map(a="1"))
    doc["spec"] = {"foo": 1}
    code, answer = apply(api_sim, json.dumps(doc).encode(), "fieldManager=alice")
    assert code == 400
    assert answer["message"].endswith(".spec: field not declared in schema")
    code, answer = apply(api_sim, json.dumps(doc).encode(), "fieldManager=a&fieldValidation=Strict")
    assert code == 400 and 'strict decoding error: unknown field "spec"' in answer["message"]


def test_dry_run_apply_creates_nothing(api_sim: Simulator) -> None:
    code, _ = apply(api_sim, config_map(a="1"), "fieldManager=alice&dryRun=All")
    assert code == 201 and api_sim.store.count("", CONFIGMAPS) == 0
