"""OpenAPI documents for the served kinds: ``/openapi/v2`` and ``/openapi/v3`` (per group/version).

Tool layer (``gitops.sim.api``), called by the HTTP server. The schemas are the ones requests are
decoded against (``schema.definitions``: derived from the official client's models for
built-in kinds, the Machine CRD subset for Machines), so ``kubectl explain`` shows the fields
the simulator accepts, kubectl's client-side apply finds each list's patch merge key, and
kubectl create/apply see that the server validates fields (``fieldValidation``). Each kind's
definition carries ``x-kubernetes-group-version-kind`` as upstream's do. JSON only: a client
that accepts only protobuf for v2 is answered 406 (see ``handler.py``). Pure data; no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from gitops.sim.api.kinds import ResourceType
from gitops.sim.api.patch import MERGE_KEYS, MERGE_PRIMITIVES
from gitops.sim.api.resources import CAPI_VERSIONS, SERVED, SUBRESOURCE_VERBS, groups, served
from gitops.sim.api.schema import EVICTION, definitions, root_class

Obj = dict[str, Any]
_FORMATS = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "format": "int32"},
    "number": {"type": "number", "format": "double"},
    "boolean": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
    "time": {"type": "string", "format": "date-time"},
    "microtime": {"type": "string", "format": "date-time"},
    "quantity": {"type": "string"},
    "any": {},
}
_QUERY = ("dryRun", "fieldManager", "fieldValidation")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema(node: Obj, ref: str, name: str = "") -> Obj:
    t = node["t"]
    if t == "ref":
        out: Obj = {"$ref": ref + node["name"]}
    elif t == "object":
        props = {k: _schema(v, ref, k) for k, v in node["props"].items()}
        out = {"type": "object", "properties": props}
    elif t == "list":
        out = {"type": "array", "items": _schema(node["items"], ref)}
        if name in MERGE_KEYS:
            out["x-kubernetes-patch-merge-key"] = MERGE_KEYS[name]
            out["x-kubernetes-patch-strategy"] = "merge"
        elif name in MERGE_PRIMITIVES:
            out["x-kubernetes-patch-strategy"] = "merge"
    elif t == "map":
        out = {"type": "object", "additionalProperties": _schema(node["values"], ref)}
    else:
        out = dict(_FORMATS[t])
    if node.get("description") and "$ref" not in out:
        out["description"] = node["description"]
    return out


def _kinds() -> dict[str, ResourceType]:
    return {root_class(r): r for r in SERVED}


def _definitions(ref: str, names: set[str] | None = None) -> Obj:
    kinds = _kinds()
    out: Obj = {}
    for name, definition in sorted(definitions().items()):
        if names is not None and name not in names:
            continue
        props = {k: _schema(v, ref, k) for k, v in definition["props"].items()}
        schema: Obj = {"type": "object", "properties": props}
        if definition.get("preserve"):
            schema["x-kubernetes-preserve-unknown-fields"] = True
        r = kinds.get(name)
        if r is not None:
            schema["x-kubernetes-group-version-kind"] = [
                {"group": r.group, "version": r.version, "kind": r.kind}
            ]
        out[name] = schema
    return out


def _reachable(roots: list[str]) -> set[str]:
    defs = definitions()
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        stack = list(defs[name]["props"].values())
        while stack:
            node = stack.pop()
            if node["t"] == "ref":
                pending.append(node["name"])
            elif node["t"] == "list":
                stack.append(node["items"])
            elif node["t"] == "map":
                stack.append(node["values"])
            elif node["t"] == "object":
                stack.extend(node["props"].values())
    return seen


def _operations(r: ResourceType, ref: str, v3: bool) -> Obj:
    """The path items of one resource: collection, item and subresources."""
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    base = "/" + _gv_path(r.group, r.version)
    scope = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    body_ref = {"$ref": ref + root_class(r)}
    query = [
        {"name": n, "in": "query", "type": "string", "uniqueItems": True}
        if not v3
        else {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for n in _QUERY
    ]

    def op(action: str, verb: str, with_body: bool) -> Obj:
        ok = (
            {"description": "OK", "content": {"application/json": {"schema": body_ref}}}
            if v3
            else {"description": "OK", "schema": body_ref}
        )
        params = list(query)
        out: Obj = {
            "operationId": f"{verb}{r.kind}",
            "responses": {"200": ok},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        if with_body:
            if v3:
                out["requestBody"] = {"content": {"*/*": {"schema": body_ref}}}
            else:
                params.append({"name": "body", "in": "body", "required": True, "schema": body_ref})
        out["parameters"] = params
        return out

    paths: Obj = {}
    collection: Obj = {}
    item: Obj = {}
    if "list" in r.verbs:
        collection["get"] = op("list", "list", False)
    if "create" in r.verbs:
        collection["post"] = op("post", "create", True)
    if "get" in r.verbs:
        item["get"] = op("get", "read", False)
    if "update" in r.verbs:
        item["put"] = op("put", "replace", True)
    if "patch" in r.verbs:
        item["patch"] = op("patch", "patch", True)
    if "delete" in r.verbs:
        item["delete"] = op("delete", "delete", False)
    if collection:
        paths[scope] = collection
    if item:
        paths[f"{scope}/{{name}}"] = item
    for sub in r.subresources:
        verbs = SUBRESOURCE_VERBS.get(sub, ("get",))
        entry: Obj = {}
        if sub == "status":
            entry = {"get": item.get("get"), "put": item.get("put"), "patch": item.get("patch")}
        elif "create" in verbs and sub == "eviction":
            entry = {"post": {**op("post", "create", False), "operationId": "createEviction"}}
        paths[f"{scope}/{{name}}/{sub}"] = {k: v for k, v in entry.items() if v}
    return paths


@functools.cache
def v2(capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> bytes:
    """The whole ``/openapi/v2`` (swagger 2.0) document, serialized once."""
    ref = "#/definitions/"
    paths: Obj = {}
    for r in sorted(served(capi_versions), key=lambda r: (r.group, r.version, r.plural)):
        paths.update(_operations(r, ref, v3=False))
    doc = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes (gitops simulator)", "version": "v1.31.4"},
        "paths": paths,
        "definitions": _definitions(ref),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def v3_index(capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> Obj:
    """``/openapi/v3``: one document per served group/version, addressed with its hash."""
    paths = {}
    for group, versions in groups(capi_versions).items():
        for version in versions:
            gv = _gv_path(group, version)
            digest = hashlib.sha256(v3(group, version) or b"").hexdigest()[:32].upper()
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


@functools.cache
def v3(group: str, version: str) -> bytes | None:
    """The OpenAPI 3.0 document of one group/version (None if not served), serialized once."""
    kinds = [r for r in SERVED if r.group == group and r.version == version]
    if not kinds:
        return None
    ref = "#/components/schemas/"
    paths: Obj = {}
    roots = [root_class(r) for r in kinds]
    if any("eviction" in r.subresources for r in kinds):
        roots.append(EVICTION)
    for r in sorted(kinds, key=lambda r: r.plural):
        paths.update(_operations(r, ref, v3=True))
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (gitops simulator)", "version": "v1.31.4"},
        "paths": paths,
        "components": {"schemas": _definitions(ref, _reachable(roots))},
    }
    return json.dumps(doc, separators=(",", ":")).encode()
