"""Decoding request bodies against the served kinds' schemas, as the API server's decoder does.

Tool layer (``gitops.sim.api``), called by the HTTP server (``handler.py``) on every create, update,
patch and eviction, and by ``openapi.py`` to publish the same schemas. The built-in kinds'
schemas are derived from the official client's model classes (``gitops.sim.api.schemas``); the
Machine's is the v1beta1 CRD subset ``resources.MACHINE_SPEC_SCHEMA`` (the store refuses what
breaks its constraints with 422); the simulated provider's kinds keep unknown fields, as a CRD
with ``x-kubernetes-preserve-unknown-fields`` does.

``decode`` reports what the server's decoder reports: fields not in the schema (dropped, as the
decoder and a structural schema drop them, and reported for ``fieldValidation``), duplicate
fields, and values of the wrong type (a built-in kind's body that does not decode is 400). It
changes nothing but the body it is given and never touches the store.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from gitops.sim.api.capischemas import SPEC_SCHEMAS
from gitops.sim.api.kinds import ResourceType
from gitops.sim.api.resources import (
    CAPI,
    EVENTS,
    RESOURCES,
    SERVED,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)

Obj = dict[str, Any]

EVICTION = "V1Eviction"  # the body of a pods/eviction create
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_TIME_LAYOUT = "2006-01-02T15:04:05Z07:00"
_MICROTIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_GO_TYPES = {
    "string": "string",
    "integer": "int32",  # most API integers; the message only names the type
    "number": "float64",
    "boolean": "bool",
    "bytes": "[]uint8",
}
_CUSTOM = {SIMMACHINES.key, SIMMACHINETEMPLATES.key} | {r.key for r in SERVED if r.group == CAPI}
_lock = threading.Lock()


def root_class(rtype: ResourceType) -> str:
    """The definition a kind's objects decode as (its client model class for built-ins; for
    Cluster API kinds, the CRD's name as the API server publishes it, one per version)."""
    if rtype.group == CAPI:
        return f"io.x-k8s.cluster.{rtype.version}.{rtype.kind}"
    if rtype.key in _CUSTOM:
        return rtype.kind
    return "CoreV1Event" if rtype is EVENTS else f"V1{rtype.kind}"


def is_custom(rtype: ResourceType) -> bool:
    """Served from a CRD: type errors are the schema validator's 422, not a decoding 400."""
    return rtype.key in _CUSTOM


@functools.cache
def definitions() -> dict[str, Obj]:
    """Every definition the simulator serves, by name (see ``gitops.sim.api.schemas``)."""
    with _lock:
        # Not a cycle: importing the official client's models takes a while, and only a
        # running simulator needs them (Simulator.start derives them once, before serving).
        from gitops.sim.api.schemas import definitions as derive

        roots = [root_class(r) for r in RESOURCES.values() if r.key not in _CUSTOM]
        out = derive([*roots, EVICTION])
        meta = {"t": "ref", "name": "V1ObjectMeta"}
        head = {"apiVersion": {"t": "string"}, "kind": {"t": "string"}, "metadata": meta}
        for r in SERVED:
            if r.group == CAPI:
                spec = from_json_schema(SPEC_SCHEMAS[(r.kind, r.version)])
                out[root_class(r)] = {
                    "go": r.kind,
                    "props": {**head, "spec": spec, "status": {"t": "any"}},
                }
        for r in (SIMMACHINES, SIMMACHINETEMPLATES):
            out[r.kind] = {"go": r.kind, "props": dict(head), "preserve": True}
        return out


def from_json_schema(schema: Obj) -> Obj:
    """A node of ``definitions`` for an OpenAPI v3 (CRD) schema."""
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = {k: from_json_schema(v) for k, v in schema["properties"].items()}
        return {"t": "object", "go": "", "props": props}
    if kind == "array":
        return {"t": "list", "items": from_json_schema(schema.get("items") or {})}
    if kind in ("string", "integer", "number", "boolean"):
        return {"t": kind}
    return {"t": "any"}


@dataclass
class Decoded:
    """What decoding one body found: JSON paths such as ``spec.foo``, and Go's messages."""

    unknown: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def strict(self) -> list[str]:
        """The strict decoding errors, worded as the server words them."""
        return [f'unknown field "{p}"' for p in self.unknown] + [
            f'duplicate field "{p}"' for p in self.duplicate
        ]


def decode(
    obj: Obj, root: str, *, duplicates: dict[int, list[str]] | None = None, prune: bool = True
) -> Decoded:
    """Check ``obj`` against definition ``root``; unknown fields are removed when ``prune``.

    ``duplicates`` maps ``id()`` of the decoded dicts that had repeated keys to those keys
    (see ``loads``)."""
    out = Decoded()
    defs = definitions()
    _object(obj, defs[root], defs, "", out, duplicates or {}, prune)
    return out


def loads_pairs(dups: dict[int, list[str]]) -> Any:
    """An ``object_pairs_hook`` for ``json.loads`` that records repeated keys into ``dups``."""

    def hook(pairs: list[tuple[str, Any]]) -> Obj:
        obj: Obj = {}
        for key, value in pairs:
            if key in obj:
                dups.setdefault(id(obj), []).append(key)
            obj[key] = value
        return obj

    return hook


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(
    value: Obj,
    definition: Obj,
    defs: dict[str, Obj],
    path: str,
    out: Decoded,
    dups: dict[int, list[str]],
    prune: bool,
) -> None:
    out.duplicate.extend(_join(path, k) for k in dups.get(id(value), ()))
    props = definition["props"]
    for key in list(value):
        sub = props.get(key)
        if sub is None:
            if not definition.get("preserve"):
                out.unknown.append(_join(path, key))
                if prune:
                    del value[key]
            continue
        _value(value[key], sub, defs, _join(path, key), definition.get("go", ""), out, dups, prune)


def _value(
    value: Any,
    node: Obj,
    defs: dict[str, Obj],
    path: str,
    parent: str,
    out: Decoded,
    dups: dict[int, list[str]],
    prune: bool,
) -> None:
    if value is None:
        return  # null decodes as the zero value, whatever the type
    t = node["t"]
    if t in ("ref", "object"):
        definition = defs[node["name"]] if t == "ref" else node
        if not isinstance(value, dict):
            out.errors.append(_mismatch(value, parent, path, definition.get("go") or "object"))
            return
        _object(value, definition, defs, path, out, dups, prune)
    elif t == "list":
        if not isinstance(value, list):
            out.errors.append(_mismatch(value, parent, path, "[]" + _go(node["items"], defs)))
            return
        for i, item in enumerate(value):
            _value(item, node["items"], defs, f"{path}[{i}]", parent, out, dups, prune)
    elif t == "map":
        if not isinstance(value, dict):
            out.errors.append(_mismatch(value, parent, path, _go(node, defs)))
            return
        for key, item in value.items():
            _value(item, node["values"], defs, _join(path, key), parent, out, dups, prune)
    else:
        problem = _scalar(value, t, parent, path)
        if problem:
            out.errors.append(problem)


def _scalar(value: Any, t: str, parent: str, path: str) -> str:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "any":
        return ""
    if t == "quantity":
        if is_number or (isinstance(value, str) and _QUANTITY.match(value)):
            return ""
        return "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    if t in ("time", "microtime"):
        if not isinstance(value, str):
            return _mismatch(value, parent, path, "string")
        layout, pattern = (_TIME_LAYOUT, _TIME) if t == "time" else (_MICROTIME_LAYOUT, _MICROTIME)
        if pattern.match(value):
            return ""
        return f'parsing time "{value}" as "{layout}": cannot parse "{value}" as "2006"'
    ok = {
        "string": isinstance(value, str),
        "bytes": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": is_number,
        "boolean": isinstance(value, bool),
    }.get(t, True)
    if not ok:
        return _mismatch(value, parent, path, _GO_TYPES.get(t, t))
    if t == "bytes":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"illegal base64 data at input byte {_bad_base64_at(value)}"
    return ""


def _bad_base64_at(value: str) -> int:
    for i, ch in enumerate(value):
        if not (ch.isalnum() or ch in "+/="):
            return i
    return len(value)


def _go(node: Obj, defs: dict[str, Obj]) -> str:
    t = node["t"]
    if t == "ref":
        return str(defs[node["name"]]["go"])
    if t == "list":
        return "[]" + _go(node["items"], defs)
    if t == "map":
        return "map[string]" + _go(node["values"], defs)
    return _GO_TYPES.get(t, "interface {}")


def _mismatch(value: Any, parent: str, path: str, go_type: str) -> str:
    """Go's ``json: cannot unmarshal ...`` for a value of the wrong JSON type."""
    if isinstance(value, bool):
        what = "bool"
    elif isinstance(value, (int, float)):
        what = f"number {value}"
    elif isinstance(value, str):
        what = "string"
    elif isinstance(value, list):
        what = "array"
    else:
        what = "object"
    where = re.sub(r"\[\d+\]", "", path)
    struct = f"{parent}.{where}" if parent else where
    return f"json: cannot unmarshal {what} into Go struct field {struct} of type {go_type}"
