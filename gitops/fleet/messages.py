"""Turns pydantic's validation errors into problems a person can act on.

Part of the model layer: pure, no I/O. The loader hands each error pydantic reports for a
document here, with the document's marks, and gets back a ``Problem`` that points at the value
(or key) in the file, says what is wrong in the format's own words (camelCase keys, YAML types:
``true`` is a boolean, ``3.0`` a number, ``"3"`` a string) and how to fix it.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from gitops.fleet.problems import Problem
from gitops.fleet.yamlread import Document


def problem_from_error(doc: Document, model: type[pydantic.BaseModel], error: Any) -> Problem:
    """The problem one pydantic error of ``model`` stands for, placed in ``doc``."""
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
    kind = error["type"]
    value = error.get("input")
    where = dotted(loc)
    if kind == "extra_forbidden":
        line, col = doc.where(loc, key=True)
        allowed = allowed_keys(model, loc[:-1])
        message = f"unknown key {loc[-1]!r} in {dotted(loc[:-1])}"
        hint = did_you_mean(str(loc[-1]), allowed, "allowed: " + ", ".join(sorted(allowed)))
        return Problem(doc.file, line, col, message, hint)
    if kind == "missing":
        line, col = doc.where(loc[:-1], key=True)
        parent = dotted(loc[:-1])
        hint = f"add {loc[-1]}: to {parent}"
        return Problem(doc.file, line, col, f"missing required key {loc[-1]!r} in {parent}", hint)
    line, col = doc.where(loc)
    if kind in EXPECTED:
        message = f"{where} must be {EXPECTED[kind]}, got {_got(value)}"
        return Problem(doc.file, line, col, message, _type_hint(kind, value))
    message, hint = _describe(kind, error, value)
    return Problem(doc.file, line, col, f"{where}: {message}", hint)


def dotted(loc: tuple[Any, ...]) -> str:
    """``spec.nodePools[0].update`` for a location, ``document`` for the root."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def did_you_mean(word: str, options: Iterable[str], fallback: str) -> str:
    """A hint naming the option closest to ``word``, or ``fallback`` when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.lower() == word.lower()]
    return f"did you mean {close[0]!r}?" if close else fallback


# What a value of each failed type check had to be. Strict validation reports a wrong type as
# one of these, never by converting the value; the two custom kinds come from ``spec``.
EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "mapping_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "duration_type": "a duration with a unit",
    "int_or_percent_type": "an integer or a percentage",
}


def yaml_type(value: Any) -> str:
    """The YAML name of a value's type: what the reader of the file sees it as."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, datetime.date):
        return "timestamp"
    return type(value).__name__


def shown(value: Any) -> str:
    """A scalar the way it was written in YAML (true, null, 3, 'text')."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return repr(value)


def _got(value: Any) -> str:
    kind = yaml_type(value)
    if value is None or isinstance(value, list | tuple | dict | set):
        return f"a {kind}" if value is not None else "null"
    return f"{kind} {shown(value) if isinstance(value, bool | int | float | str) else value}"


def _type_hint(kind: str, value: Any) -> str:
    """How to write the value so that it has the type ``kind`` asked for."""
    text = value.strip() if isinstance(value, str) else None
    if kind == "int_type":
        if text is not None and re.fullmatch(r"[0-9]+", text):
            return f"write {text} without quotes"
        if isinstance(value, float) and value.is_integer():
            return f"write {int(value)}, without a fraction"
        return "write a whole number like 3"
    if kind == "float_type":
        if text is not None and re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            return f"write {text} without quotes"
        return "write a number like 0.3"
    if kind == "bool_type":
        if text is not None and text.lower() in ("true", "false"):
            return f"write {text.lower()} without quotes"
        return "write true or false"
    if kind == "string_type" and isinstance(value, bool | int | float):
        return f'quote it: "{shown(value)}"'
    if kind == "duration_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value == 0:
                return "write 0s"
            number = int(value) if float(value).is_integer() else value
            return f"write it with its unit, like {number}s or {number}m"
        return "write a duration like 90s, 10m or 1h30m"
    if kind == "int_or_percent_type":
        if isinstance(value, float) and value.is_integer():
            return f"write {int(value)}, without a fraction, or a percentage like 25%"
        return "write a whole number like 1 or a percentage like 25%"
    return ""


def _describe(kind: str, error: Any, value: Any) -> tuple[str, str]:
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        message = f"{shown(value)} is not one of {', '.join(options)}"
        return message, did_you_mean(str(value), options, "")
    if kind == "value_error":
        # The format's own checks say what is wrong, then how to fix it, after a semicolon.
        message, _, hint = str(error["msg"]).removeprefix("Value error, ").partition("; ")
        return message, hint
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not have the required form", _pattern_hint(error)
    if kind in ("too_short", "string_too_short"):
        return "must not be empty", ""
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{value!r}: {error['msg'].lower()}", ""
    return str(error["msg"]), ""


def _pattern_hint(error: Any) -> str:
    pattern = error.get("ctx", {}).get("pattern", "")
    if pattern.startswith("^v[0-9]"):
        return "write a version such as v1.31.4"
    if "[-a-z0-9]" in pattern:
        return "use lower-case letters, digits and '-', starting and ending with a letter or digit"
    return f"it must match {pattern}"


def allowed_keys(model: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The YAML keys a mapping at ``loc`` accepts, found by walking the model's annotations."""
    target: Any = model
    for part in loc:
        target = _step(target, part)
        if target is None:
            return []
    if isinstance(target, type) and issubclass(target, pydantic.BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def _step(annotation: Any, part: Any) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return _unwrap(info.annotation)
        return None
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (tuple, list) and args:
        return _unwrap(args[0])
    if origin in (dict, Mapping) and len(args) == 2:
        return _unwrap(args[1])
    return None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
