"""The kinds of objects the simulator serves, and the validation a real server applies to them.

Tool layer (``gitops.sim.api``): a table read by the store (built-in validators), discovery (the
resource lists kubectl and the client read) and the HTTP router (URL -> ``ResourceType``). It
holds data and pure checks only; it must never touch the store or do I/O.

Machines are validated against a hand-written subset of the v1beta1 structural schema of the
upstream Cluster API Machine CRD (required fields, types, lengths, enums), so that a Machine
with a missing or mistyped required field is refused with 422 Invalid as a real management
cluster would; unknown fields are pruned, as a structural schema prunes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from gitops.sim.api import capischemas
from gitops.sim.api.kinds import ApiError, ResourceType

_RO = ("get", "list", "watch")


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=sub,
    )


NAMESPACES = _rt(
    "", "v1", "Namespace", "namespaces", namespaced=False, short=("ns",), sub=("status",)
)
NODES = _rt("", "v1", "Node", "nodes", namespaced=False, short=("no",), sub=("status",))
PODS = _rt("", "v1", "Pod", "pods", short=("po",), categories=("all",), sub=("eviction", "status"))
SECRETS = _rt("", "v1", "Secret", "secrets")
CONFIGMAPS = _rt("", "v1", "ConfigMap", "configmaps", short=("cm",))
EVENTS = _rt("", "v1", "Event", "events", short=("ev",))
SERVICEACCOUNTS = _rt("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",), sub=("token",))
SERVICES = _rt(
    "", "v1", "Service", "services", short=("svc",), categories=("all",), sub=("status",)
)
DEPLOYMENTS = _rt(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    short=("deploy",),
    categories=("all",),
    sub=("status",),
)
REPLICASETS = _rt(
    "apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=("all",), sub=("status",)
)
DAEMONSETS = _rt(
    "apps", "v1", "DaemonSet", "daemonsets", short=("ds",), categories=("all",), sub=("status",)
)
PDBS = _rt(
    "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=("status",)
)
LEASES = _rt("coordination.k8s.io", "v1", "Lease", "leases")
RBAC = "rbac.authorization.k8s.io"
ROLES = _rt(RBAC, "v1", "Role", "roles")
CLUSTERROLES = _rt(RBAC, "v1", "ClusterRole", "clusterroles", namespaced=False)
ROLEBINDINGS = _rt(RBAC, "v1", "RoleBinding", "rolebindings")
CLUSTERROLEBINDINGS = _rt(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False)
MACHINES = _rt(
    "cluster.x-k8s.io",
    "v1beta1",
    "Machine",
    "machines",
    short=("ma",),
    categories=("cluster-api",),
    sub=("status",),
)
CAPI = "cluster.x-k8s.io"


def _capi(kind: str, plural: str, version: str, short: tuple[str, ...]) -> ResourceType:
    return _rt(
        CAPI, version, kind, plural, short=short, categories=("cluster-api",), sub=("status",)
    )


# Cluster API kinds are served in v1beta1 and v1beta2 (the storage version, preferred), the
# two views of one stored object (``gitops.sim.api.conversion``). ``MACHINES`` is the v1beta1
# view the simulated machine controller reads and writes.
MACHINES_V1BETA2 = _capi("Machine", "machines", "v1beta2", ("ma",))
MACHINESETS = _capi("MachineSet", "machinesets", "v1beta2", ("ms",))
MACHINESETS_V1BETA1 = _capi("MachineSet", "machinesets", "v1beta1", ("ms",))
MACHINEDEPLOYMENTS = _capi("MachineDeployment", "machinedeployments", "v1beta2", ("md",))
MACHINEDEPLOYMENTS_V1BETA1 = _capi("MachineDeployment", "machinedeployments", "v1beta1", ("md",))
CLUSTERS = _capi("Cluster", "clusters", "v1beta2", ("cl",))
CLUSTERS_V1BETA1 = _capi("Cluster", "clusters", "v1beta1", ("cl",))
CLUSTERCLASSES = _capi("ClusterClass", "clusterclasses", "v1beta2", ("cc",))
CAPI_VERSIONS = ("v1beta2", "v1beta1")  # preferred first
AUTHZ = "authorization.k8s.io"
# Create-only reviews (``kubectl auth can-i``), answered by the RBAC authorizer, never stored.
SELFSUBJECTACCESSREVIEWS = ResourceType(
    AUTHZ,
    "v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    namespaced=False,
    verbs=("create",),
)
SELFSUBJECTRULESREVIEWS = ResourceType(
    AUTHZ,
    "v1",
    "SelfSubjectRulesReview",
    "selfsubjectrulesreviews",
    "selfsubjectrulesreview",
    namespaced=False,
    verbs=("create",),
)
REVIEWS = (SELFSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS)
INFRA = "infrastructure.cluster.x-k8s.io"
SIMMACHINETEMPLATES = _rt(
    INFRA, "v1alpha1", "SimMachineTemplate", "simmachinetemplates", categories=("cluster-api",)
)
SIMMACHINES = _rt(
    INFRA, "v1alpha1", "SimMachine", "simmachines", categories=("cluster-api",), sub=("status",)
)

RESOURCES: dict[str, ResourceType] = {
    r.key: r
    for r in (
        NAMESPACES,
        NODES,
        PODS,
        SECRETS,
        CONFIGMAPS,
        EVENTS,
        SERVICEACCOUNTS,
        SERVICES,
        DEPLOYMENTS,
        REPLICASETS,
        DAEMONSETS,
        PDBS,
        LEASES,
        ROLES,
        CLUSTERROLES,
        ROLEBINDINGS,
        CLUSTERROLEBINDINGS,
        SELFSUBJECTACCESSREVIEWS,
        SELFSUBJECTRULESREVIEWS,
        MACHINES_V1BETA2,
        MACHINESETS,
        MACHINEDEPLOYMENTS,
        CLUSTERS,
        CLUSTERCLASSES,
        SIMMACHINETEMPLATES,
        SIMMACHINES,
    )
}
# Every served resource type, one per version: RESOURCES holds the storage version of each.
SERVED: tuple[ResourceType, ...] = (
    *RESOURCES.values(),
    MACHINES,
    MACHINESETS_V1BETA1,
    MACHINEDEPLOYMENTS_V1BETA1,
    CLUSTERS_V1BETA1,
)

# Verbs of each subresource, as discovery lists them.
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "eviction": ("create",),
    "token": ("create",),  # TokenRequest: what `kubectl create token` posts
}

_BY_GVK = {(r.api_version, r.kind): r for r in SERVED}
_BY_PATH = {(r.group, r.version, r.plural): r for r in SERVED}


def resource_for(api_version: str, kind: str) -> ResourceType:
    """The resource type of an apiVersion and kind (KeyError when the simulator has none)."""
    return _BY_GVK[(api_version, kind)]


def is_served(rtype: ResourceType, capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> bool:
    """Whether a server speaking ``capi_versions`` of cluster.x-k8s.io serves ``rtype``.

    An old management cluster (v1beta1 only) serves no v1beta2 kind, not even ClusterClass."""
    return rtype.group != CAPI or rtype.version in capi_versions


def resource_at(
    group: str, version: str, plural: str, capi_versions: tuple[str, ...] = CAPI_VERSIONS
) -> ResourceType | None:
    """The resource type served at ``/api(s)/<group>/<version>/<plural>``, if any."""
    rtype = _BY_PATH.get((group, version, plural))
    return rtype if rtype is not None and is_served(rtype, capi_versions) else None


def served(capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> list[ResourceType]:
    """The resource types a server speaking ``capi_versions`` of cluster.x-k8s.io serves."""
    return [r for r in SERVED if is_served(r, capi_versions)]


def groups(capi_versions: tuple[str, ...] = CAPI_VERSIONS) -> dict[str, list[str]]:
    """Served group -> versions ("" is the core group), preferred version first."""
    out: dict[str, list[str]] = {}
    for r in served(capi_versions):
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    if CAPI in out:
        out[CAPI].sort(key=CAPI_VERSIONS.index)
    return out


def api_version_getter(group: str, kind: str) -> str:
    """The apiVersion a v1beta1 reference names for a group and kind (upstream's
    ``apiVersionGetter``: the version served for it), ``<group>/v1beta1`` for kinds not served."""
    for r in SERVED:
        if r.group == group and r.kind == kind and r.key in RESOURCES:
            return RESOURCES[r.key].api_version
    return f"{group}/v1beta1" if group else "v1"


# --------------------------------------------------------------------------- Cluster API validation

Schema = dict[str, Any]
# The v1beta1 Machine spec subset (kept under its old name for the Machine CRD tests).
MACHINE_SPEC_SCHEMA: Schema = capischemas.MACHINE_SPEC_V1BETA1

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}
_JSON_TYPE = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}


def schema_problems(value: Any, schema: Schema, path: str) -> Iterator[tuple[str, str, str]]:
    """(field, reason, message) for each way ``value`` breaks ``schema``; prunes unknown keys."""
    kind = schema.get("type")
    if schema.get("x-int-or-string") and not (
        isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    ):
        got = _JSON_TYPE.get(type(value), "null" if value is None else type(value).__name__)
        yield (
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{got}": {path} in body must be of type integer,string: "{got}"',
        )
        return
    if kind and not _TYPES[kind](value):
        got = _JSON_TYPE.get(type(value), "null" if value is None else type(value).__name__)
        yield (
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{got}": {path} in body must be of type {kind}: "{got}"',
        )
        return
    if kind == "object":
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {len(value)}: {path} in body should have at least "
                f"{schema['minProperties']} properties",
            )
        for req in schema.get("required", ()):
            if req not in value:
                yield f"{path}.{req}", "FieldValueRequired", "Required value"
        props = schema.get("properties")
        if props is not None:
            for key in [k for k in value if k not in props]:
                del value[key]  # pruning, as for a structural schema
            for key, sub in props.items():
                if key in value:
                    yield from schema_problems(value[key], sub, f"{path}.{key}")
    elif kind == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield (
                path,
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items",
            )
        for i, item in enumerate(value):
            yield from schema_problems(item, schema.get("items", {}), f"{path}[{i}]")
    elif kind == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {value}: {path} in body should be greater than or equal to "
                f"{schema['minimum']}",
            )
        if "maximum" in schema and value > schema["maximum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {value}: {path} in body should be less than or equal to "
                f"{schema['maximum']}",
            )
    elif kind == "string":
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield (
                path,
                "FieldValueInvalid",
                f'Invalid value: "{value}": {path} in body should be at least {schema["minLength"]} chars long',
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield (
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {schema['maxLength']} bytes",
            )
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(f'"{e}"' for e in schema["enum"])
            yield (
                path,
                "FieldValueNotSupported",
                f'Unsupported value: "{value}": supported values: {allowed}',
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: \"{value}\": {path} in body should match '{schema['pattern']}'",
            )


def validate_capi(cluster: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Refuse a Cluster API object its upstream CRD would refuse (422 Invalid), in the version
    its apiVersion names (the store checks the stored v1beta2 form, and v1beta1 writes before
    converting them)."""
    del cluster, old
    name = str((new.get("metadata") or {}).get("name", ""))
    version = str(new.get("apiVersion") or "").rpartition("/")[2]
    kind = str(new.get("kind") or "")
    schema = capischemas.SPEC_SCHEMAS.get((kind, version))
    if schema is None:
        return
    problems = []
    if "spec" in new:  # what a spec holds the CRD checks
        problems = list(schema_problems(new["spec"], schema, "spec"))
    elif (kind, version) in capischemas.SPEC_REQUIRED:
        problems.append(("spec", "FieldValueRequired", "Required value"))
    if "status" in new and not isinstance(new["status"], dict):
        problems.append(
            ("status", "FieldValueTypeInvalid", "Invalid value: status must be of type object")
        )
    if problems:
        rtype = _BY_GVK.get((str(new.get("apiVersion")), kind), MACHINES)
        raise ApiError.invalid(rtype, name, problems)


def validate_machine(cluster: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Refuse a Machine a real management cluster would refuse (422 Invalid), v1beta1 unless
    its apiVersion says v1beta2."""
    obj = new if new.get("apiVersion") else {**new, "apiVersion": MACHINES.api_version}
    validate_capi(cluster, {**obj, "kind": "Machine"}, old)


_QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_QNAME_EXAMPLE = (
    "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_ANNOTATIONS_MAX = 256 * 1024


def qualified_name_problems(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: an optional DNS subdomain prefix and '/', then a name."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253:
            return ["prefix part must be no more than 253 characters"]
        if not _DNS1123_SUBDOMAIN.match(prefix):
            return ["prefix part " + _SUBDOMAIN_MSG]
    else:
        return [
            f"a qualified name {_QNAME_MSG} {_QNAME_EXAMPLE} with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    out = []
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    if name and not _QNAME.match(name):
        out.append(f"name part {_QNAME_MSG} {_QNAME_EXAMPLE}")
    return out


def label_value_problems(value: str) -> list[str]:
    """apimachinery's IsValidLabelValue."""
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if value and not _QNAME.match(value):
        out.append(_LABEL_VALUE_MSG)
    return out


def metadata_problems(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """ObjectMeta validation of labels and annotations, worded as the API server words it."""
    problems = []
    for what in ("labels", "annotations"):
        field = f"metadata.{what}"
        values = meta.get(what)
        if values is None:
            continue
        if not isinstance(values, dict):
            problems.append(
                (field, "FieldValueTypeInvalid", "Invalid value: must be a map of strings")
            )
            continue
        size = 0
        for k, v in values.items():
            if not isinstance(v, str):
                problems.append(
                    (field, "FieldValueTypeInvalid", f"Invalid value: {k}: must be a string")
                )
                continue
            for msg in qualified_name_problems(str(k)):
                problems.append((field, "FieldValueInvalid", f'Invalid value: "{k}": {msg}'))
            if what == "labels":
                for msg in label_value_problems(v):
                    problems.append((field, "FieldValueInvalid", f'Invalid value: "{v}": {msg}'))
            size += len(str(k)) + len(v)
        if what == "annotations" and size > _ANNOTATIONS_MAX:
            problems.append(
                (
                    field,
                    "FieldValueTooLong",
                    f"Too long: must have at most {_ANNOTATIONS_MAX} bytes",
                )
            )
    return problems


def _validate_labels(
    rtype: ResourceType,
) -> Callable[[str, dict[str, Any], dict[str, Any] | None], None]:
    """Labels and annotations: string maps of qualified names (and label values), as
    ObjectMeta validation demands; immutable ConfigMaps and Secrets stay as they are."""

    def check(cluster: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        del cluster
        meta = new.get("metadata") or {}
        problems = metadata_problems(meta)
        if old is not None:
            problems.extend(immutable_problems(rtype, new, old))
        if problems:
            raise ApiError.invalid(rtype, str(meta.get("name", "")), problems)

    return check


def immutable_problems(
    rtype: ResourceType, new: dict[str, Any], old: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """Fields no update may change, whoever writes (the store keeps uid itself): the data of an
    immutable ConfigMap or
    Secret (and its ``immutable`` flag); a Machine's ``spec.clusterName`` (Cluster API's
    webhook)."""
    problems = []
    if rtype.key in ("configmaps", "secrets") and old.get("immutable") is True:
        message = "Forbidden: field is immutable when `immutable` is set"
        if new.get("immutable") is not True:
            problems.append(("immutable", "FieldValueForbidden", message))
        for field in ("data", "binaryData", "stringData"):
            if new.get(field) != old.get(field):
                problems.append((field, "FieldValueForbidden", message))
    if rtype.key in (MACHINES.key, MACHINESETS.key, MACHINEDEPLOYMENTS.key):
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if new_spec.get("clusterName") != old_spec.get("clusterName"):
            problems.append(
                ("spec.clusterName", "FieldValueForbidden", "Forbidden: field is immutable")
            )
    return problems


_POD_UPDATE = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def pod_update_problems(new: dict[str, Any], old: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A client's update of a Pod may change only what the API server lets it change.

    Checked for requests only: the world binds pods to nodes directly, as the scheduler's
    binding subresource would."""
    new_spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        new_spec.pop(key, None)
        old_spec.pop(key, None)
    for key in ("containers", "initContainers"):
        olds = old_spec.get(key) or []
        news = new_spec.get(key) or []
        if key in new_spec and isinstance(news, list) and len(news) == len(olds):
            new_spec[key] = [
                {**n, "image": o.get("image")} if isinstance(n, dict) else n
                for n, o in zip(news, olds, strict=True)
            ]
    tolerations = new_spec.get("tolerations") or []
    if all(t in tolerations for t in old_spec.get("tolerations") or []):
        new_spec["tolerations"] = old_spec.get("tolerations")
        if new_spec["tolerations"] is None:
            new_spec.pop("tolerations")
    if new_spec != old_spec:
        return [("spec", "FieldValueForbidden", _POD_UPDATE)]
    return []


def builtin_validators() -> list[
    tuple[ResourceType, Callable[[str, dict[str, Any], dict[str, Any] | None], None]]
]:
    """The validation every store applies, whoever writes (the world or a client)."""
    out: list[tuple[ResourceType, Callable[[str, dict[str, Any], dict[str, Any] | None], None]]] = [
        (r, _validate_labels(r)) for r in RESOURCES.values()
    ]
    # ClusterClass is not converted; the converted kinds are validated by the store in the
    # version each write comes in (``store._incoming``), as the API server validates requests.
    out.append((CLUSTERCLASSES, validate_capi))
    return out
