"""PATCH bodies applied as the API server applies them: JSON merge, strategic merge, JSON patch.

Tool layer (``gitops.sim.api``), called by the HTTP server inside ``Store.mutate``. Pure functions
from (object, patch) to the new object; they must never touch the store or do I/O.

* ``application/merge-patch+json`` (RFC 7386): maps merge recursively, ``null`` deletes, lists
  are replaced.
* ``application/strategic-merge-patch+json`` (built-in kinds only; custom resources answer 415
  as a real server does): like a merge patch, but lists with a ``patchMergeKey`` in the upstream
  Go types are merged element by element (pod containers by ``name``, conditions by ``type``,
  ownerReferences by ``uid`` ...), ``finalizers`` merge as a set, and the directives
  ``$patch: replace|delete|merge``, ``$deleteFromPrimitiveList/<field>``,
  ``$setElementOrder/<field>`` and ``$retainKeys`` are honoured. Lists without a merge key
  (taints, tolerations, containerStatuses) are replaced whole, as upstream.
* ``application/json-patch+json`` (RFC 6902) through the ``jsonpatch`` library.
"""

from __future__ import annotations

import json
from typing import Any, cast

import jsonpatch
import jsonpointer

from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.store import copy_obj

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
CUSTOM_GROUPS = ("cluster.x-k8s.io", "infrastructure.cluster.x-k8s.io")

# Field name -> patchMergeKey, from the upstream Go types of the kinds the simulator serves.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
}
# Lists of scalars with patchStrategy=merge (merged as sets, order kept).
MERGE_PRIMITIVES = frozenset({"finalizers"})


def unsupported() -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE}, {APPLY}",
    )


def apply_patch(
    content_type: str, original: dict[str, Any], body: bytes, rtype: ResourceType
) -> dict[str, Any]:
    """The object after applying ``body`` of ``content_type`` to ``original`` (not mutated)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind not in (MERGE, STRATEGIC, JSON_PATCH):
        raise unsupported()
    if kind == STRATEGIC and rtype.group in CUSTOM_GROUPS:
        raise unsupported()
    try:
        patch = json.loads(body or b"null")
    except ValueError as err:
        raise ApiError.bad_request(f"error decoding patch: {err}") from None
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError.bad_request(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
        try:
            result = jsonpatch.JsonPatch(patch).apply(copy_obj(original))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {err}",
            ) from None
        except (TypeError, KeyError, AttributeError) as err:
            raise ApiError.bad_request(f"invalid JSON patch: {err}") from None
        if not isinstance(result, dict):
            raise ApiError.bad_request("the patched object is not a JSON object")
        return result
    if not isinstance(patch, dict):
        raise ApiError.bad_request("error decoding patch: the patch is not a JSON object")
    if kind == MERGE:
        return cast(dict[str, Any], merge_patch(original, patch))
    return cast(dict[str, Any], strategic_merge(original, patch))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy_obj(patch)
    out = copy_obj(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(original: Any, patch: Any) -> Any:
    """A strategic merge patch (see the module docstring for the rules implemented)."""
    if not isinstance(patch, dict):
        return copy_obj(patch)
    if not isinstance(original, dict):
        original = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy_obj(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = copy_obj(original)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        if value is None:
            out.pop(key, None)
            continue
        current = out.get(key)
        if isinstance(value, dict):
            merged = strategic_merge(current, value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(key, current, value)
        else:
            out[key] = value
    if isinstance(retain, list):
        keep = set(retain)
        out = {k: v for k, v in out.items() if k in keep}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = _ordered(field, out[field], value)
    return out


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in MERGE_PRIMITIVES:
        out = list(current)
        for item in patch:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return [v for v in patch if not isinstance(v, dict)]
            if item not in out:
                out.append(item)
        return out
    mkey = MERGE_KEYS.get(field)
    if mkey is None or not all(isinstance(i, dict) for i in patch):
        return [copy_obj(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if any(i.get("$patch") == "replace" for i in patch):
        return [copy_obj(i) for i in patch if "$patch" not in i]
    out = [copy_obj(i) for i in current]
    index = {i.get(mkey): n for n, i in enumerate(out) if isinstance(i, dict)}
    deleted: set[Any] = set()
    for item in patch:
        key = item.get(mkey)
        if item.get("$patch") == "delete":
            deleted.add(key)
            continue
        if key in index:
            out[index[key]] = strategic_merge(out[index[key]], item)
        else:
            index[key] = len(out)
            out.append(strategic_merge({}, item))
    return [i for i in out if not (isinstance(i, dict) and i.get(mkey) in deleted)]


def _ordered(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    mkey = MERGE_KEYS.get(field)

    def ident(item: Any) -> Any:
        return item.get(mkey) if mkey and isinstance(item, dict) else item

    wanted = [o.get(mkey) if mkey and isinstance(o, dict) else o for o in order]
    rank = {k: n for n, k in enumerate(wanted)}
    return sorted(items, key=lambda i: rank.get(ident(i), len(rank)))
