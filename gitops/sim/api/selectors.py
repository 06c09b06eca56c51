"""Label and field selectors, parsed and matched as the Kubernetes API server does.

Tool layer (``gitops.sim.api``), used by the store's list and watch. Pure functions over plain
dicts; a malformed selector raises ``ApiError`` 400 BadRequest with the server's wording, and a
field the server does not index for that kind is refused the same way. It must never touch the
store or do I/O.

Label selector grammar (``k8s.io/apimachinery/pkg/labels``): comma-separated requirements, each
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``. Field selectors: ``path=value``, ``path==value``, ``path!=value``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops.sim.api.kinds import ApiError, ResourceType


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()


LabelSelector = tuple[Requirement, ...]
FieldSelector = tuple[tuple[str, str, str], ...]  # (path, "=" or "!=", value)

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")

# The fields the API server can select on, per resource key (metadata.name and
# metadata.namespace are always allowed), as registered by each kind's strategy.
FIELD_LABELS: dict[str, frozenset[str]] = {
    "pods": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "nodes": frozenset({"spec.unschedulable"}),
    "namespaces": frozenset({"status.phase"}),
    "secrets": frozenset({"type"}),
    "events": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "replicasets.apps": frozenset({"status.replicas"}),
}
_ALWAYS = frozenset({"metadata.name", "metadata.namespace"})


def _bad(message: str) -> Exception:
    return ApiError.bad_request(message)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector; "" selects everything (an empty tuple)."""
    text = text.strip()
    if not text:
        return ()
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise _bad(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            req = Requirement(m["key"], m["op"], values)
        elif part.startswith("!"):
            req = Requirement(part[1:].strip(), "!")
        else:
            for op in ("!=", "==", "="):
                if op in part:
                    key, value = part.split(op, 1)
                    req = Requirement(key.strip(), "!=" if op == "!=" else "=", (value.strip(),))
                    break
            else:
                req = Requirement(part, "exists")
        if not _KEY_RE.match(req.key) or len(req.key) > 316:
            raise _bad(f"unable to parse requirement: invalid label key {req.key!r}")
        for value in req.values:
            if not _VALUE_RE.match(value) or len(value) > 63:
                raise _bad(f"unable to parse requirement: invalid label value: {value!r}")
        reqs.append(req)
    return tuple(reqs)


def match_labels(selector: LabelSelector, labels: dict[str, str]) -> bool:
    for req in selector:
        present = req.key in labels
        value = labels.get(req.key)
        if req.op == "exists":
            ok = present
        elif req.op == "!":
            ok = not present
        elif req.op == "=":
            ok = present and value == req.values[0]
        elif req.op == "!=":
            ok = not present or value != req.values[0]
        elif req.op == "in":
            ok = present and value in req.values
        else:  # notin
            ok = not present or value not in req.values
        if not ok:
            return False
    return True


def selector_matches(selector: dict[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions) against labels.

    ``None`` matches nothing; an empty selector matches everything (policy/v1 semantics).
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def parse_field_selector(text: str, rtype: ResourceType | None = None) -> FieldSelector:
    """Parse a field selector; with ``rtype``, refuse fields that kind cannot select on."""
    text = text.strip()
    if not text:
        return ()
    out: list[tuple[str, str, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        for op in ("!=", "==", "="):
            if op in part:
                path, value = part.split(op, 1)
                out.append((path.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise _bad(f"invalid selector: '{text}'; can't understand '{part}'")
    if rtype is not None:
        allowed = _ALWAYS | FIELD_LABELS.get(rtype.key, frozenset())
        for path, _, _ in out:
            if path not in allowed:
                raise _bad(
                    f"field label not supported: {path}"
                    if rtype.key in FIELD_LABELS or rtype.group == ""
                    else f'"{path}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'
                )
    return tuple(out)


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string a field selector compares with: booleans as true/false, missing as ""."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, dict):  # e.g. events' "source": component
        return str(cur.get("component", ""))
    return str(cur)


def match_fields(selector: FieldSelector, obj: dict[str, Any]) -> bool:
    for path, op, value in selector:
        actual = field_value(obj, path)
        if path == "spec.unschedulable" and actual == "":
            actual = "false"
        if (actual == value) != (op == "="):
            return False
    return True
