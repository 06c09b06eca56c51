"""The built-in kinds' schemas, derived from the official client's model classes.

Tool layer, the simulator's API machinery (``gitops.sim.api``), and the one module outside
``gitops.kube`` allowed to import ``kubernetes`` (an ``ignore_imports`` entry in pyproject.toml):
the simulator validates writes against the official client's schemas, it talks to nothing
through the client. The client ships one model class per OpenAPI definition with ``openapi_types`` (attribute -> type) and
``attribute_map`` (attribute -> JSON field); ``definitions`` walks them from a few root classes
into plain dicts, so that ``schema.py`` can decode request bodies as a real API server does
and publish OpenAPI documents without importing ``kubernetes`` itself.
Nothing here does I/O.

A definition is ``{"go": "LeaseSpec", "props": {json name: node}}``; a node is one of
``{"t": "ref", "name": class}``, ``{"t": "list", "items": node}``, ``{"t": "map", "values":
node}`` or a scalar ``{"t": kind}`` with kind ``string``, ``integer``, ``number``, ``boolean``,
``bytes`` (base64), ``time`` (RFC 3339), ``microtime`` (RFC 3339 with microseconds),
``quantity`` (a resource.Quantity, string or number) or ``any`` (int-or-string, raw JSON).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kubernetes.client import models

Obj = dict[str, Any]

# The client types these as plain strings or datetimes; the server decodes them as
# resource.Quantity (a string or a number) and metav1.MicroTime (exactly six fraction digits).
_QUANTITY_FIELDS = {"allocatable", "capacity", "hard", "limits", "requests", "sizeLimit", "used"}
_MICROTIME = {("V1LeaseSpec", "acquire_time"), ("V1LeaseSpec", "renew_time")}
_MICROTIME |= {("CoreV1Event", "event_time"), ("EventsV1Event", "event_time")}
_SCALARS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "bytes": "bytes",
    "datetime": "time",
    "date": "string",
    "object": "any",
}
_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)*V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def go_name(class_name: str) -> str:
    """The Go type a client class stands for: ``V1LeaseSpec`` -> ``LeaseSpec``."""
    return _PREFIX.sub("", class_name, count=1)


def definitions(roots: Iterable[str]) -> dict[str, Obj]:
    """Every definition reachable from the model classes named in ``roots``."""
    out: dict[str, Obj] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in out:
            continue
        cls = getattr(models, name)
        props: Obj = {}
        out[name] = {"go": go_name(name), "props": props}
        for attr, type_name in cls.openapi_types.items():
            field = cls.attribute_map[attr]
            node = _node(type_name, pending)
            if field in _QUANTITY_FIELDS:
                node = _quantity(node)
            if (name, attr) in _MICROTIME:
                node = {"t": "microtime"}
            text = _description(cls, attr)
            if text:
                node = {**node, "description": text}
            props[field] = node
    return out


def _node(type_name: str, pending: list[str]) -> Obj:
    if type_name.startswith("List[") and type_name.endswith("]"):
        return {"t": "list", "items": _node(type_name[5:-1], pending)}
    if type_name.startswith("Dict[") and type_name.endswith("]"):
        _, _, value = type_name[5:-1].partition(", ")
        return {"t": "map", "values": _node(value, pending)}
    if type_name in _SCALARS:
        return {"t": _SCALARS[type_name]}
    pending.append(type_name)
    return {"t": "ref", "name": type_name}


def _quantity(node: Obj) -> Obj:
    if node["t"] == "string":
        return {"t": "quantity"}
    if node["t"] == "map" and node["values"]["t"] == "string":
        return {"t": "map", "values": {"t": "quantity"}}
    return node


def _description(cls: Any, attr: str) -> str:
    """The field's description: pydantic field info (newer clients) or the property's doc."""
    info = (getattr(cls, "model_fields", None) or {}).get(attr)
    if info is not None:
        return " ".join(str(info.description or "").split())
    doc = getattr(getattr(cls, attr, None), "__doc__", None) or ""
    parts = [p.replace("# noqa: E501", "").strip() for p in re.split(r"\n\s*\n", doc)]
    if len(parts) < 3 or parts[1].startswith(":"):
        return ""
    return " ".join(parts[1].split())
