"""Hand-written subsets of the upstream Cluster API CRD schemas, both served versions.

Tool layer (``gitops.sim.api``): data only. ``resources.validate_capi`` checks writes against
them (422 Invalid, as a real management cluster refuses), ``schema.py`` decodes and publishes
them in OpenAPI. They cover the fields the simulator and gitops use (required fields, types,
lengths, enums, minimums) of ``cluster.x-k8s.io_{machines,machinesets,machinedeployments,
clusters}.yaml``; tests compare them with the upstream CRDs read in place from ../shared/crds.
Unknown fields are pruned, as a structural schema prunes them. ClusterClass has no upstream
CRD here: its subset is the part of v1beta2 the simulated topology controller reads.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
SECONDS: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
ANY: Schema = {}
INT_OR_STRING: Schema = {"x-int-or-string": True}
MAP: Schema = {"type": "object"}  # a free map (labels, annotations, raw values)
_QUALIFIED = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def obj(props: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = list(required)
    return out


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


REF_V1BETA1 = obj(
    dict.fromkeys(
        ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid"), STRING
    )
)
REF_V1BETA2 = obj(
    {
        "apiGroup": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "kind": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
    },
    ("apiGroup", "kind", "name"),
)
_GATES = array(
    obj(
        {
            "conditionType": {
                "type": "string",
                "minLength": 1,
                "maxLength": 316,
                "pattern": _QUALIFIED + r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            },
            "polarity": {"type": "string", "enum": ["Positive", "Negative"]},
        },
        ("conditionType",),
    ),
    maxItems=32,
)
_TAINTS = array(
    obj(
        {
            "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
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
        ("effect", "key", "propagation"),
    ),
    minItems=1,
    maxItems=64,
)
_COMMON_MACHINE = {
    "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
    "failureDomain": {"type": "string", "minLength": 1, "maxLength": 256},
    "providerID": {"type": "string", "minLength": 1, "maxLength": 512},
    "readinessGates": _GATES,
    "taints": _TAINTS,
    "version": {"type": "string", "minLength": 1, "maxLength": 256},
}
_MACHINE_REQUIRED = ("bootstrap", "clusterName", "infrastructureRef")
MACHINE_SPEC_V1BETA1 = obj(
    {
        **_COMMON_MACHINE,
        "bootstrap": obj(
            {"configRef": REF_V1BETA1, "dataSecretName": {"type": "string", "maxLength": 253}}
        ),
        "infrastructureRef": REF_V1BETA1,
        "nodeDeletionTimeout": STRING,
        "nodeDrainTimeout": STRING,
        "nodeVolumeDetachTimeout": STRING,
    },
    _MACHINE_REQUIRED,
)
MACHINE_SPEC_V1BETA2 = obj(
    {
        **_COMMON_MACHINE,
        "bootstrap": obj(
            {
                "configRef": REF_V1BETA2,
                "dataSecretName": {"type": "string", "minLength": 0, "maxLength": 253},
            }
        ),
        "infrastructureRef": REF_V1BETA2,
        "deletion": obj(
            {
                "nodeDeletionTimeoutSeconds": SECONDS,
                "nodeDrainTimeoutSeconds": SECONDS,
                "nodeVolumeDetachTimeoutSeconds": SECONDS,
            }
        ),
        "minReadySeconds": SECONDS,
    },
    _MACHINE_REQUIRED,
)
_SELECTOR = obj(
    {
        "matchLabels": MAP,
        "matchExpressions": array(
            obj(
                {"key": STRING, "operator": STRING, "values": array(STRING)},
                ("key", "operator"),
            )
        ),
    }
)
_META = obj({"labels": MAP, "annotations": MAP})
_ORDER = {"type": "string", "enum": ["Random", "Newest", "Oldest"]}
_NAMING = obj({"template": {"type": "string", "minLength": 1, "maxLength": 256}})
_ROLLING = {"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING}
_STRATEGY_TYPE = {"type": "string", "enum": ["RollingUpdate", "OnDelete"]}


def _template(spec: Schema, required: bool) -> Schema:
    return obj({"metadata": _META, "spec": spec}, ("spec",) if required else ())


MACHINESET_SPEC_V1BETA1 = obj(
    {
        "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
        "deletePolicy": _ORDER,
        "machineNamingStrategy": _NAMING,
        "minReadySeconds": INT,
        "replicas": INT,
        "selector": _SELECTOR,
        "template": _template(MACHINE_SPEC_V1BETA1, False),
    },
    ("clusterName", "selector"),
)
MACHINESET_SPEC_V1BETA2 = obj(
    {
        "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
        "deletion": obj({"order": _ORDER}),
        "machineNaming": _NAMING,
        "replicas": INT,
        "selector": _SELECTOR,
        "template": _template(MACHINE_SPEC_V1BETA2, True),
    },
    ("clusterName", "selector", "template"),
)
MACHINEDEPLOYMENT_SPEC_V1BETA1 = obj(
    {
        "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
        "machineNamingStrategy": _NAMING,
        "minReadySeconds": INT,
        "paused": BOOL,
        "progressDeadlineSeconds": INT,
        "replicas": INT,
        "revisionHistoryLimit": INT,
        "rolloutAfter": STRING,
        "selector": _SELECTOR,
        "strategy": obj(
            {
                "type": _STRATEGY_TYPE,
                "rollingUpdate": obj({**_ROLLING, "deletePolicy": _ORDER}),
                "remediation": obj({"maxInFlight": INT_OR_STRING}),
            }
        ),
        "template": _template(MACHINE_SPEC_V1BETA1, False),
    },
    ("clusterName", "selector", "template"),
)
_ROLLOUT_STRATEGY_V1BETA2 = obj(
    {"type": _STRATEGY_TYPE, "rollingUpdate": obj(_ROLLING, minProperties=1)},
    ("type",),
    minProperties=1,
)
MACHINEDEPLOYMENT_SPEC_V1BETA2 = obj(
    {
        "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
        "deletion": obj({"order": _ORDER}),
        "machineNaming": _NAMING,
        "paused": BOOL,
        "remediation": obj({"maxInFlight": INT_OR_STRING}),
        "replicas": INT,
        "rollout": obj({"after": STRING, "strategy": _ROLLOUT_STRATEGY_V1BETA2}, minProperties=1),
        "selector": _SELECTOR,
        "template": _template(MACHINE_SPEC_V1BETA2, True),
    },
    ("clusterName", "selector", "template"),
)
_VARIABLE = obj(
    {"name": {"type": "string", "minLength": 1, "maxLength": 256}, "value": ANY},
    ("name", "value"),
)
_VARIABLES = array(_VARIABLE, maxItems=1000)
_WORKER_COMMON = {
    "class": {"type": "string", "minLength": 1, "maxLength": 256},
    "name": {"type": "string", "minLength": 1, "maxLength": 63},
    "failureDomain": {"type": "string", "minLength": 1, "maxLength": 256},
    "metadata": _META,
    "minReadySeconds": SECONDS,
    "replicas": INT,
}
WORKER_V1BETA1 = obj(
    {
        **_WORKER_COMMON,
        "minReadySeconds": INT,
        "nodeDeletionTimeout": STRING,
        "nodeDrainTimeout": STRING,
        "nodeVolumeDetachTimeout": STRING,
        "strategy": obj(
            {"type": _STRATEGY_TYPE, "rollingUpdate": obj({**_ROLLING, "deletePolicy": _ORDER})}
        ),
        "variables": obj({"overrides": _VARIABLES}),
    },
    ("class", "name"),
)
WORKER_V1BETA2 = obj(
    {
        **_WORKER_COMMON,
        "deletion": obj(
            {
                "order": _ORDER,
                "nodeDeletionTimeoutSeconds": SECONDS,
                "nodeDrainTimeoutSeconds": SECONDS,
                "nodeVolumeDetachTimeoutSeconds": SECONDS,
            },
            minProperties=1,
        ),
        "rollout": obj({"after": STRING, "strategy": _ROLLOUT_STRATEGY_V1BETA2}, minProperties=1),
        "variables": obj(
            {"overrides": array(_VARIABLE, minItems=1, maxItems=1000)}, minProperties=1
        ),
    },
    ("class", "name"),
)
_VERSION = {"type": "string", "minLength": 1, "maxLength": 256}
CLUSTER_SPEC_V1BETA1 = obj(
    {
        "paused": BOOL,
        "controlPlaneEndpoint": obj({"host": {"type": "string", "maxLength": 512}, "port": INT}),
        "infrastructureRef": REF_V1BETA1,
        "controlPlaneRef": REF_V1BETA1,
        "topology": obj(
            {
                "class": {"type": "string", "minLength": 1, "maxLength": 253},
                "classNamespace": STRING,
                "version": STRING,
                "variables": _VARIABLES,
                "workers": obj({"machineDeployments": array(WORKER_V1BETA1)}),
            },
            ("class", "version"),
        ),
    }
)
CLUSTER_SPEC_V1BETA2 = obj(
    {
        "paused": BOOL,
        "controlPlaneEndpoint": obj(
            {
                "host": {"type": "string", "minLength": 1, "maxLength": 512},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            minProperties=1,
        ),
        "infrastructureRef": REF_V1BETA2,
        "controlPlaneRef": REF_V1BETA2,
        "topology": obj(
            {
                "classRef": obj(
                    {
                        "name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 253,
                            "pattern": _DNS_SUBDOMAIN,
                        },
                        "namespace": STRING,
                    },
                    ("name",),
                ),
                "version": _VERSION,
                "variables": _VARIABLES,
                "workers": obj(
                    {"machineDeployments": array(WORKER_V1BETA2, minItems=1, maxItems=2000)},
                    minProperties=1,
                ),
            },
            ("classRef", "version"),
        ),
    },
    minProperties=1,
)
_TEMPLATE_REF = obj({"templateRef": obj({"apiVersion": STRING, "kind": STRING, "name": STRING})})
_JSON_PATCH = obj(
    {
        "op": {"type": "string", "enum": ["add", "replace", "remove"]},
        "path": {"type": "string", "minLength": 1},
        "value": ANY,
        "valueFrom": obj({"variable": STRING, "template": STRING}),
    },
    ("op", "path"),
)
CLUSTERCLASS_SPEC_V1BETA2 = obj(
    {
        "workers": obj(
            {
                "machineDeployments": array(
                    obj(
                        {
                            "class": {"type": "string", "minLength": 1, "maxLength": 256},
                            "bootstrap": _TEMPLATE_REF,
                            "infrastructure": _TEMPLATE_REF,
                        },
                        ("class", "infrastructure"),
                    )
                )
            }
        ),
        "variables": array(obj({"name": STRING, "required": BOOL, "schema": MAP}, ("name",))),
        "patches": array(
            obj(
                {
                    "name": {"type": "string", "minLength": 1},
                    "definitions": array(
                        obj(
                            {
                                "selector": obj(
                                    {
                                        "apiVersion": STRING,
                                        "kind": STRING,
                                        "matchResources": obj(
                                            {
                                                "machineDeploymentClass": obj(
                                                    {"names": array(STRING)}
                                                )
                                            }
                                        ),
                                    },
                                    ("apiVersion", "kind", "matchResources"),
                                ),
                                "jsonPatches": array(_JSON_PATCH),
                            },
                            ("selector", "jsonPatches"),
                        )
                    ),
                },
                ("name",),
            )
        ),
    }
)

# (kind, version) -> the subset of its spec schema; root-required "spec" per version.
SPEC_SCHEMAS: dict[tuple[str, str], Schema] = {
    ("Machine", "v1beta1"): MACHINE_SPEC_V1BETA1,
    ("Machine", "v1beta2"): MACHINE_SPEC_V1BETA2,
    ("MachineSet", "v1beta1"): MACHINESET_SPEC_V1BETA1,
    ("MachineSet", "v1beta2"): MACHINESET_SPEC_V1BETA2,
    ("MachineDeployment", "v1beta1"): MACHINEDEPLOYMENT_SPEC_V1BETA1,
    ("MachineDeployment", "v1beta2"): MACHINEDEPLOYMENT_SPEC_V1BETA2,
    ("Cluster", "v1beta1"): CLUSTER_SPEC_V1BETA1,
    ("Cluster", "v1beta2"): CLUSTER_SPEC_V1BETA2,
    ("ClusterClass", "v1beta2"): CLUSTERCLASS_SPEC_V1BETA2,
}
# v1beta2 CRDs require a spec; v1beta1 ones do not.
SPEC_REQUIRED = frozenset(k for k in SPEC_SCHEMAS if k[1] == "v1beta2")
