"""Discovery documents: /version, /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>.

Tool layer (``gitops.sim.api``), called by the HTTP server. kubectl and the client find resources,
short names (``ma``), categories (``cluster-api``) and subresources (``pods/eviction``) here.
The legacy (unaggregated) documents are served whatever the Accept header: a client asking for
aggregated discovery (``as=APIGroupDiscoveryList``) sees a plain ``application/json`` answer
and falls back to the legacy calls, as it does against older servers. Pure functions of the
resource table; they must never touch the store or do I/O.
"""

from __future__ import annotations

from typing import Any

from gitops.sim.api.kinds import ResourceType
from gitops.sim.api.resources import CAPI_VERSIONS, SUBRESOURCE_VERBS, groups, served

Obj = dict[str, Any]


def version(kubernetes_version: str = "v1.31.4") -> Obj:
    """The /version document for a cluster whose control plane runs ``kubernetes_version``."""
    bare = kubernetes_version.lstrip("v")
    parts = [*bare.split("."), "0", "0"]
    return {
        "major": parts[0],
        "minor": parts[1],
        "gitVersion": "v" + bare,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, vs) for g, vs in groups(capi_versions).items() if g],
    }


def api_group(name: str, capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> Obj | None:
    versions = groups(capi_versions).get(name)
    if not name or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _entry(r: ResourceType) -> Obj:
    entry: Obj = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
        "storageVersionHash": "",
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    return entry


def _subentry(r: ResourceType, sub: str) -> Obj:
    kind = {"eviction": "Eviction", "token": "TokenRequest"}.get(sub, r.kind)
    entry: Obj = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
    }
    if sub == "eviction":
        entry["group"], entry["version"] = "policy", "v1"
    elif sub == "token":
        entry["group"], entry["version"] = "authentication.k8s.io", "v1"
    return entry


def resource_list(
    group: str, version: str, capi_versions: tuple[str, ...] = CAPI_VERSIONS
) -> Obj | None:
    """The APIResourceList of one group/version ("" group: /api/v1), or None if not served."""
    kinds = [r for r in served(capi_versions) if r.group == group and r.version == version]
    if not kinds:
        return None
    resources: list[Obj] = []
    for r in sorted(kinds, key=lambda r: r.plural):
        resources.append(_entry(r))
        resources.extend(_subentry(r, sub) for sub in sorted(r.subresources))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
