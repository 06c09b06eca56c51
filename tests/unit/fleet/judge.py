"""The JSON Schema as an editor applies it, for tests that compare it with the loader.

``jsonschema`` with two corrections, both towards what JSON Schema and editors mean: ``integer``
is a YAML integer (python-jsonschema also counts ``3.0``, as JSON has one number type; YAML, and
so the yaml-language-server, tells ``3`` from ``3.0``), and ``pattern`` is read as ECMA-262 reads
it (python-jsonschema uses Python's ``re.search``, whose ``$`` also matches before a final
newline).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from gitops.fleet.schema import json_schema

SCHEMA = json_schema()


def yaml_integer(checker: Any, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # Every pattern of the schema is anchored by a final "$" (test_schema_patterns_are_portable).
    if isinstance(instance, str) and not re.search(pattern.removesuffix("$") + r"\Z", instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Judge = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    validators={"pattern": _ecma_pattern},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", yaml_integer),
)
JUDGE = Judge(SCHEMA)


def schema_errors(doc: object) -> str:
    """The schema's most relevant complaint about ``doc``, with where it is ('' when valid)."""
    error = best_match(JUDGE.iter_errors(doc))
    if error is None:
        return ""
    return "/".join(map(str, error.absolute_path)) + ": " + error.message
