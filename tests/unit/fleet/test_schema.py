"""The JSON Schema: valid draft 2020-12, accepts the example fleet, rejects what the loader rejects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from gitops.cli import main
from gitops.fleet.schema import json_schema

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.relative_to(EXAMPLE).as_posix(), doc)
        for path in sorted(EXAMPLE.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def test_the_example_fleet_has_documents_to_check() -> None:
    """The parametrized checks below would pass vacuously (as no test at all) without them."""
    kinds = [doc["kind"] for _, doc in example_documents()]
    assert "Fleet" in kinds and kinds.count("Cluster") >= 2


def test_schema_is_draft_2020_12() -> None:
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("path", "doc"), example_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_example_fleet_matches_schema(
    validator: jsonschema.Draft202012Validator, path: str, doc: dict[str, Any]
) -> None:
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == [], f"{path}: {errors}"


def _cluster() -> dict[str, Any]:
    return next(doc for _, doc in example_documents() if doc["kind"] == "Cluster")


INVALID = {
    "unknown-key": lambda d: d["spec"]["nodePools"][0].update(replica=3),
    "wrong-type": lambda d: d["spec"]["nodePools"][0].update(replicas="three"),
    "bad-duration": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(soak="5 minutes")
    ),
    "bad-percentage": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(maxSurge="1.5%")
    ),
    "bad-enum": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(onDrainTimeout="forced")
    ),
    "bad-kind": lambda d: d.update(kind="Clusters"),
    "bad-version": lambda d: d["spec"].update(kubernetesVersion="1.31"),
    "bad-name": lambda d: d["metadata"].update(name="Prod_EU"),
    "missing-pools": lambda d: d["spec"].pop("nodePools"),
    "boolean-replicas": lambda d: d["spec"]["nodePools"][0].update(replicas=True),
    "quoted-replicas": lambda d: d["spec"]["nodePools"][0].update(replicas="3"),
    "duration-without-unit": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(soak=10)
    ),
    "percentage-over-100": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(maxSurge="101%")
    ),
    "snake-case-key": lambda d: (
        d["spec"]["nodePools"][0].setdefault("update", {}).update(max_surge=1)
    ),
    "zone-listed-twice": lambda d: d["spec"]["nodePools"][0].update(zones=["a", "a"]),
    "bad-label-value": lambda d: d["metadata"]["labels"].update(tier="-bad-"),
    "bad-label-key": lambda d: d["metadata"]["labels"].update({"a b": "x"}),
    "bad-taint-key": lambda d: d["spec"]["nodePools"][0].update(
        taints=[{"key": "a b", "effect": "NoSchedule"}]
    ),
}


@pytest.mark.parametrize("mutation", sorted(INVALID))
def test_schema_rejects_invalid_documents(
    validator: jsonschema.Draft202012Validator, mutation: str
) -> None:
    doc = _cluster()
    INVALID[mutation](doc)
    assert list(validator.iter_errors(doc)), f"schema accepted {mutation}"


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "ring", "operator": "In"},
        {"key": "ring", "operator": "NotIn", "values": []},
        {"key": "ring", "operator": "Exists", "values": ["prod"]},
    ],
)
def test_schema_rejects_an_operator_with_the_wrong_values(
    validator: jsonschema.Draft202012Validator, expression: dict[str, Any]
) -> None:
    doc = next(doc for _, doc in example_documents() if doc["kind"] == "Fleet")
    doc["spec"]["rollout"]["waves"][0]["clusters"] = {"matchExpressions": [expression]}
    assert list(validator.iter_errors(doc)), f"schema accepted {expression}"
    expression["values"] = ["prod"] if expression["operator"] != "Exists" else []
    assert list(validator.iter_errors(doc)) == []


def test_committed_schema_file_is_current() -> None:
    committed = json.loads((EXAMPLE / "fleet.schema.json").read_text())
    assert committed == json_schema(), "run: gitops schema > fleet-repo-example/fleet.schema.json"


def test_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json_schema()


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _property_names(item)
    return names


def test_readme_mentions_every_schema_field() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(
        n for n in _property_names(json_schema()) if not re.search(rf"\b{re.escape(n)}\b", readme)
    )
    assert missing == [], f"README fleet format reference does not mention: {missing}"


def test_example_files_carry_the_editor_modeline() -> None:
    paths = sorted(EXAMPLE.rglob("*.yaml"))
    assert paths, f"no YAML file under {EXAMPLE}"
    for path in paths:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (EXAMPLE / "fleet.schema.json").resolve(), path
