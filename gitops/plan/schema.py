"""JSON Schemas (draft 2020-12) of ``gitops plan -o json`` and ``gitops drift -o json``.

Part of the pure core: data only. The schemas are the contract of ``gitops.plan.jsonout``;
tests validate every rendered plan against them, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any, get_args

from gitops.drift import KINDS
from gitops.plan.model import ACTION_KINDS, SCHEMA_VERSION, WaitOn

FINDINGS_SCHEMA_VERSION = "gitops.drift/v1"

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "minimum": 0}
_BOOL: dict[str, Any] = {"type": "boolean"}
_TIME: dict[str, Any] = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["epoch", "utc"],
            "properties": {
                "epoch": {"type": "number", "description": "Seconds since the epoch."},
                "utc": {"type": "string", "description": "The same time, RFC 3339 UTC."},
            },
        },
    ]
}


def _obj(
    properties: dict[str, Any], description: str = "", optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
    }
    if description:
        out["description"] = description
    return out


FINDING: dict[str, Any] = _obj(
    {
        "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "kind": {"enum": list(KINDS)},
        "severity": {"enum": ["info", "warning", "error"]},
        "remediation": {"enum": ["replace", "scale", "report"]},
        "drift": _BOOL,
        "cluster": _STR,
        "pool": _STR,
        "node": _STR,
        "fact": _STR,
        "expected": _STR,
        "observed": _STR,
        "image": _STR,
        "message": _STR,
    },
    "One difference between the declared and the observed fleet.",
)

_COMMON = {
    "kind": _STR,
    "key": _STR,
    "ready": _BOOL,
    "cluster": _STR,
    "pool": _STR,
}
_TAIL = {"reason": _STR, "budget": _STR, "finding": _STR}


def _action(kind: str, own: dict[str, Any]) -> dict[str, Any]:
    properties = {**_COMMON, **own, **_TAIL}
    properties["kind"] = {"const": kind}
    return _obj(properties)


ACTION: dict[str, Any] = {
    "oneOf": [
        _action("ScaleUp", {"zone": _STR, "image": _STR}),
        _action(
            "CreateReplacement",
            {"zone": _STR, "image": _STR, "replaces": _STR, "replacesMachine": _STR},
        ),
        _action("RetireNode", {"node": _STR, "machine": _STR, "replacement": _STR}),
        _action("ScaleDown", {"node": _STR, "machine": _STR}),
        _action(
            "AbandonMachine",
            {"machine": _STR, "node": _STR, "replaces": _STR, "counted": _BOOL},
        ),
        _action("Uncordon", {"node": _STR}),
        _action(
            "RollMachineDeployment",
            {
                "deployment": _STR,
                "topology": _BOOL,
                "template": _STR,
                "image": _STR,
                "replicas": _INT,
                "maxSurge": _STR,
                "maxUnavailable": _STR,
                "minReadySeconds": _INT,
                "rollback": _BOOL,
            },
        ),
        _action("PauseMachineDeployment", {"deployment": _STR, "topology": _BOOL}),
        _action(
            "Wait",
            {
                "on": {"enum": list(get_args(WaitOn))},
                "what": _STR,
                "until": _TIME,
            },
        ),
    ]
}

PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://gitops.dev/schemas/gitops.plan.v1.json",
    "title": "gitops plan",
    **_obj(
        {
            "schemaVersion": {"const": SCHEMA_VERSION},
            "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "plannerVersion": _STR,
            "fleet": _STR,
            "fleetRevision": _STR,
            "inventoryDigest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "now": _TIME,
            "status": {"enum": ["converged", "in-progress", "halted", "refused"]},
            "reason": _STR,
            "summary": _obj(
                {
                    "actions": _INT,
                    "ready": _INT,
                    "waits": _INT,
                    "byKind": _obj(dict.fromkeys(ACTION_KINDS, _INT)),
                    "findings": _INT,
                    "waves": _INT,
                    "clusters": _INT,
                }
            ),
            "drift": _obj(
                {
                    "driftedNodes": _INT,
                    "observedNodes": _INT,
                    "fraction": {"type": "number", "minimum": 0},
                    "maxFraction": {"type": "number", "minimum": 0, "maximum": 1},
                    "overridden": _BOOL,
                }
            ),
            "waves": {
                "type": "array",
                "items": _obj(
                    {
                        "index": _INT,
                        "name": _STR,
                        "status": {
                            "enum": [
                                "complete",
                                "soaking",
                                "active",
                                "blocked",
                                "pending",
                                "stopped",
                            ]
                        },
                        "reason": _STR,
                        "soakUntil": _TIME,
                        "maxClustersInParallel": {"type": ["integer", "null"], "minimum": 1},
                        "clusters": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "name": _STR,
                                    "status": {
                                        "enum": [
                                            "converged",
                                            "soaking",
                                            "active",
                                            "queued",
                                            "pending",
                                            "paused",
                                            "unknown",
                                            "stopped",
                                        ]
                                    },
                                    "reason": _STR,
                                    "soakUntil": _TIME,
                                    "pools": {
                                        "type": "array",
                                        "items": _obj(
                                            {
                                                "name": _STR,
                                                "status": {
                                                    "enum": [
                                                        "converged",
                                                        "active",
                                                        "waiting",
                                                        "pending",
                                                        "paused",
                                                        "stopped",
                                                    ]
                                                },
                                                "reason": _STR,
                                                "image": _STR,
                                                "replicas": _INT,
                                                "maxSurge": _INT,
                                                "maxUnavailable": _INT,
                                                "machines": _INT,
                                                "available": _INT,
                                                "outdated": _INT,
                                                "drifted": _INT,
                                                "fingerprints": _INT,
                                                "oddNodes": {"type": "array", "items": _STR},
                                                "batches": {
                                                    "type": "array",
                                                    "items": _obj(
                                                        {
                                                            "index": _INT,
                                                            "projected": _BOOL,
                                                            "note": _STR,
                                                            "actions": {
                                                                "type": "array",
                                                                "items": ACTION,
                                                            },
                                                        }
                                                    ),
                                                },
                                            }
                                        ),
                                    },
                                },
                                optional={"window": _STR, "nextStart": _TIME, "owner": _STR},
                            ),
                        },
                    },
                    optional={"nextStart": _TIME},
                ),
            },
            "findings": {"type": "array", "items": FINDING},
        },
        "A deterministic rollout plan: fleet wave → cluster → pool → batch → action.",
        optional={"override": _STR},
    ),
}

POOL_FINGERPRINTS: dict[str, Any] = _obj(
    {
        "cluster": _STR,
        "pool": _STR,
        "nodes": _INT,
        "distinct": _INT,
        "counts": {"type": "object", "additionalProperties": _INT},
        "odd": {
            "type": "array",
            "items": _obj(
                {
                    "node": _STR,
                    "fingerprint": _STR,
                    "differs": {
                        "type": "array",
                        "items": _obj({"fact": _STR, "common": _STR, "observed": _STR}),
                    },
                }
            ),
        },
    },
    "One pool's node fingerprints (gitops.facts): distinct ones (the aim is 1), the odd nodes.",
)

FINDINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://gitops.dev/schemas/gitops.drift.v1.json",
    "title": "gitops drift",
    **_obj(
        {
            "schemaVersion": {"const": FINDINGS_SCHEMA_VERSION},
            "summary": _obj(
                {
                    "findings": _INT,
                    "drift": _INT,
                    "byKind": _obj(dict.fromkeys(KINDS, _INT)),
                }
            ),
            "findings": {"type": "array", "items": FINDING},
        },
        "Differences between the declared fleet and the observed one.",
        optional={"fingerprints": {"type": "array", "items": POOL_FINGERPRINTS}},
    ),
}
