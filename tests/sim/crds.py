"""The upstream Cluster API CRDs, read in place from ../shared/crds, as JSON Schemas.

A helper for the tests that prove objects valid (never copied into the project; without the
files the proofs fail rather than skip). ``to_json_schema`` turns a CRD version's structural
OpenAPI v3 schema into a draft-7 JSON Schema: ``x-kubernetes-*`` markers dropped, ``nullable``
and int-or-string spelled out, ``date-time`` checked by pattern; unknown fields are errors (a
real server would prune them, so none may slip by).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"
DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
PLURALS = {
    "Machine": "machines",
    "MachineSet": "machinesets",
    "MachineDeployment": "machinedeployments",
    "Cluster": "clusters",
}
Obj = dict[str, Any]


def to_json_schema(node: Any) -> Any:
    """An OpenAPI v3 (structural, Kubernetes flavoured) schema as a draft-7 JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "nullable"):
            continue
        if key == "format":
            if value == "date-time":
                out["pattern"] = DATE_TIME
            continue  # int32/int64 and the like add nothing a type check misses here
        out[key] = (
            {k: to_json_schema(v) for k, v in value.items()}
            if key in ("properties", "patternProperties")
            else to_json_schema(value)
        )
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def close(schema: Obj) -> None:
    """Unknown fields would be pruned by a real server: treat them as errors."""
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            close(sub)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        close(schema["items"])


@functools.cache
def crd_schema(kind: str, version: str) -> Obj:
    path = CRDS / f"cluster.x-k8s.io_{PLURALS[kind]}.yaml"
    assert path.exists(), f"the upstream {kind} CRD must be at {path} (shared/ beside the project)"
    crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)  # the files are large
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = to_json_schema(served["schema"]["openAPIV3Schema"])
    schema["additionalProperties"] = False  # apiVersion, kind, metadata, spec, status only
    for sub in ("spec", "status"):
        close(schema["properties"][sub])
    return schema


@functools.cache
def _validator(kind: str, version: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(crd_schema(kind, version))


def crd_problems(obj: Obj) -> list[str]:
    """How ``obj`` breaks the upstream CRD of its kind, in the version its apiVersion names."""
    version = str(obj["apiVersion"]).rpartition("/")[2]
    validator = _validator(str(obj["kind"]), version)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]


def assert_valid_crd(obj: Obj) -> None:
    found = crd_problems(obj)
    name = obj.get("metadata", {}).get("name")
    assert not found, f"{obj['apiVersion']} {obj['kind']} {name} breaks the CRD schema: {found}"
