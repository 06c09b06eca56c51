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
        MACHINES,
        SIMMACHINETEMPLATES,
        SIMMACHINES,
    )
}

# Verbs of each subresource, as discovery lists them.
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "eviction": ("create",),
    "token": ("create",),  # TokenRequest: what `kubectl create token` posts
}

_BY_GVK = {(r.api_version, r.kind): r for r in RESOURCES.values()}
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES.values()}


def resource_for(api_version: str, kind: str) -> ResourceType:
    """The resource type of an apiVersion and kind (KeyError when the simulator has none)."""
    return _BY_GVK[(api_version, kind)]


def resource_at(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource type served at ``/api(s)/<group>/<version>/<plural>``, if any."""
    return _BY_PATH.get((group, version, plural))


def groups() -> dict[str, list[str]]:
    """Served group -> versions ("" is the core group), in a stable order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES.values():
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


# --------------------------------------------------------------------------- Machine validation

Schema = dict[str, Any]
_REF: Schema = {
    "type": "object",
    "properties": {
        k: {"type": "string"}
        for k in ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid")
    },
}
_QUALIFIED = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
# Subset of the v1beta1 schema of cluster.x-k8s.io_machines.yaml (spec only; status is free).
MACHINE_SPEC_SCHEMA: Schema = {
    "type": "object",
    "required": ["bootstrap", "clusterName", "infrastructureRef"],
    "properties": {
        "bootstrap": {
            "type": "object",
            "properties": {
                "configRef": _REF,
                "dataSecretName": {"type": "string", "maxLength": 253},
            },
        },
        "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
        "failureDomain": {"type": "string", "minLength": 1, "maxLength": 256},
        "infrastructureRef": _REF,
        "nodeDeletionTimeout": {"type": "string"},
        "nodeDrainTimeout": {"type": "string"},
        "nodeVolumeDetachTimeout": {"type": "string"},
        "providerID": {"type": "string", "minLength": 1, "maxLength": 512},
        "readinessGates": {
            "type": "array",
            "maxItems": 32,
            "items": {
                "type": "object",
                "required": ["conditionType"],
                "properties": {
                    "conditionType": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 316,
                        "pattern": _QUALIFIED + r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                    },
                    "polarity": {"type": "string", "enum": ["Positive", "Negative"]},
                },
            },
        },
        "taints": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
                "type": "object",
                "required": ["effect", "key", "propagation"],
                "properties": {
                    "effect": {
                        "type": "string",
                        "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                    },
                    "key": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 317,
                        "pattern": _QUALIFIED + r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
                    },
                    "propagation": {"type": "string", "enum": ["Always", "OnInitialization"]},
                    "value": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 63,
                        "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
                    },
                },
            },
        },
        "version": {"type": "string", "minLength": 1, "maxLength": 256},
    },
}

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
    if kind and not _TYPES[kind](value):
        got = _JSON_TYPE.get(type(value), "null" if value is None else type(value).__name__)
        yield (
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{got}": {path} in body must be of type {kind}: "{got}"',
        )
        return
    if kind == "object":
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


def validate_machine(cluster: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Refuse a Machine a real v1beta1 management cluster would refuse (422 Invalid)."""
    del cluster, old
    name = str((new.get("metadata") or {}).get("name", ""))
    problems = []
    if "spec" in new:  # the CRD does not require a spec; what a spec holds it checks
        problems = list(schema_problems(new["spec"], MACHINE_SPEC_SCHEMA, "spec"))
    if "status" in new and not isinstance(new["status"], dict):
        problems.append(
            ("status", "FieldValueTypeInvalid", "Invalid value: status must be of type object")
        )
    if problems:
        raise ApiError.invalid(MACHINES, name, problems)


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
    if rtype.key == MACHINES.key:
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
    out.append((MACHINES, validate_machine))
    return out
