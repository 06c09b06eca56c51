"""Which ``cluster.x-k8s.io`` version the management cluster serves: v1beta2 when it can.

Adapter layer (``gitops.kube``). Cluster API v1.11 made v1beta2 the storage version and still
serves v1beta1; an older management cluster serves only v1beta1. The MachineDeployment mode
(``gitops.providers.machinedeployments``) and the observer's MachineDeployment cache ask here
once per client and speak the answer; both versions are read the same way
(``translate.machine_deployment``).
"""

from __future__ import annotations

import kubernetes.client as k8s

from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import NotFound, read_json

GROUP = "cluster.x-k8s.io"
PREFERRED = ("v1beta2", "v1beta1")


def served(kube: Kube) -> tuple[str, ...]:
    """The versions of ``cluster.x-k8s.io`` the server serves (empty when it serves none)."""
    try:
        body = read_json(
            f"discovering {GROUP}",
            k8s.ApisApi(kube.api).get_api_versions,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except NotFound:
        return ()
    for group in body.get("groups") or []:
        if group.get("name") == GROUP:
            return tuple(str(v.get("version")) for v in group.get("versions") or [])
    return ()


def version(kube: Kube) -> str:
    """v1beta2 when served, else v1beta1 (also when discovery names neither: the old default)."""
    versions = served(kube)
    return next((v for v in PREFERRED if v in versions), "v1beta1")


def preferred(kube: Kube, group: str) -> str:
    """The preferred version the server serves of API ``group`` (v1beta2 references name only
    the group: the version a template is read in comes from discovery)."""
    body = read_json(
        f"discovering {group}",
        k8s.ApisApi(kube.api).get_api_versions,
        _request_timeout=REQUEST_TIMEOUT,
    )
    for found in body.get("groups") or []:
        if found.get("name") == group:
            return str((found.get("preferredVersion") or {}).get("version", ""))
    raise NotFound(f"the management cluster serves no API group {group}")
