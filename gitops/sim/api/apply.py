"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``), as the API server does it.

Tool layer (``gitops.sim.api``), called by the HTTP server inside ``Store.mutate`` (or before a
create, when the object does not exist yet). Pure functions from (current object, applied
configuration, manager) to the new object; they must never touch the store or do I/O.

What is tracked: each apply manager's fields, recorded in ``metadata.managedFields`` as
``FieldsV1`` (``{"f:spec": {"f:holderIdentity": {}}}``) with ``operation: Apply``. Maps are
followed field by field; a list is one field (atomic), a simplification of the merge keys
upstream uses for lists such as containers. Applying sets every field of the configuration,
removes the fields this manager applied before and no longer applies (unless another manager
owns them too) and refuses, with 409 ``Conflict``, to change a field another apply manager owns
unless ``force`` moves it to this manager. Writes other than apply do not record managers, so
they never conflict (a real server records them as ``Update`` entries).
"""

from __future__ import annotations

from typing import Any

from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.store import copy_obj

Obj = dict[str, Any]
Path = tuple[str, ...]
# Identity and server-owned metadata: never a manager's field.
_NOT_FIELDS = {
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "resourceVersion"),
    ("metadata", "generation"),
    ("metadata", "creationTimestamp"),
    ("metadata", "managedFields"),
    ("status",),
}


def leaves(value: Obj, prefix: Path = ()) -> set[Path]:
    """The field paths of an applied configuration: non-empty maps are followed, anything
    else (scalars, lists, empty maps) is one field."""
    out: set[Path] = set()
    for key, sub in value.items():
        path = (*prefix, key)
        if path in _NOT_FIELDS or (len(path) == 1 and key == "status"):
            continue
        if isinstance(sub, dict) and sub:
            out |= leaves(sub, path)
        else:
            out.add(path)
    return out


def to_fields_v1(paths: set[Path]) -> Obj:
    """``FieldsV1`` for a set of paths."""
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    """The leaf paths of a ``FieldsV1`` tree (``.`` and list-item keys end a path)."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, sub in tree.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        inner = from_fields_v1(sub, path)
        out |= inner or {path}
    return out


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


_MISSING = object()


def _set(obj: Obj, path: Path, value: Any) -> None:
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = obj[key] = {}
        obj = nxt
    obj[path[-1]] = copy_obj(value)


def _delete(obj: Obj, path: Path) -> None:
    parents = []
    for key in path[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            return
        parents.append((obj, key))
        obj = nxt
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):  # drop maps the removal left empty
        if parent[key] == {}:
            del parent[key]
        else:
            break


def _overlaps(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def apply(
    rtype: ResourceType,
    current: Obj | None,
    config: Obj,
    manager: str,
    *,
    force: bool,
    now: str,
) -> Obj:
    """The object after ``manager`` applies ``config`` to ``current`` (None: a create)."""
    result: Obj = copy_obj(current) if current is not None else {}
    meta = result.setdefault("metadata", {})
    entries = [e for e in meta.get("managedFields") or [] if isinstance(e, dict)]
    mine: set[Path] = set()
    others: dict[str, set[Path]] = {}
    for entry in entries:
        paths = from_fields_v1(entry.get("fieldsV1"))
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            mine |= paths
        elif entry.get("operation") == "Apply":
            others.setdefault(str(entry.get("manager")), set()).update(paths)
    applied = leaves(config)
    before = copy_obj(result)
    for path in sorted(applied):
        _set(result, path, _get(config, path))
    kept = set().union(*others.values()) if others else set()
    for path in sorted(mine - applied, key=len, reverse=True):
        if not any(_overlaps(path, p) for p in kept):
            _delete(result, path)
    # A conflict: a field another manager applied would change value.
    conflicts = [
        (name, path)
        for name, owned in sorted(others.items())
        for path in sorted(owned)
        if _get(before, path) != _get(result, path)
    ]
    if conflicts and not force:
        raise _conflict(rtype, conflicts)
    for name, path in conflicts:  # forced: the fields move to this manager
        others[name].discard(path)
    for key in ("apiVersion", "kind"):
        result[key] = config.get(key, result.get(key))
    if current is None:
        meta = result.setdefault("metadata", {})
        for key in ("name", "namespace", "generateName"):
            if key in (config.get("metadata") or {}):
                meta[key] = config["metadata"][key]
    meta = result.setdefault("metadata", {})
    new_entries = []
    for entry in entries:
        name = str(entry.get("manager"))
        if name == manager and entry.get("operation") == "Apply":
            continue
        if entry.get("operation") == "Apply" and name in others:
            if not others[name]:
                continue
            entry = {**entry, "fieldsV1": to_fields_v1(others[name])}
        new_entries.append(entry)
    if applied:
        new_entries.append(
            {
                "manager": manager,
                "operation": "Apply",
                "apiVersion": rtype.api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(applied),
            }
        )
    meta["managedFields"] = new_entries
    return result


def _conflict(rtype: ResourceType, conflicts: list[tuple[str, Path]]) -> ApiError:
    """409 as the API server words an apply conflict."""
    version = rtype.api_version.split("/")[-1]
    fields = [(name, "." + ".".join(path)) for name, path in conflicts]
    count = len(fields)
    if count == 1:
        name, field = fields[0]
        text = f'Apply failed with 1 conflict: conflict with "{name}" using {version}: {field}'
    else:
        lines = "".join(f'\n- conflict with "{name}" using {version}: {f}' for name, f in fields)
        text = f"Apply failed with {count} conflicts:{lines}"
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{name}" using {version}',
            "field": field,
        }
        for name, field in fields
    ]
    return ApiError(409, "Conflict", text, {"causes": causes})
