"""Hidden markers: ``<!-- gitops:<kind> key=value ... -->`` in comments and pull-request bodies.

Part of the bot's pure core. A marker lets the bot find what it wrote before (the one sticky
plan comment of a pull request, the drift report's fingerprint) without remembering anything
between runs: the forge is the memory. Values are single tokens (shas, ids, names); anything
else is refused rather than escaped, so a marker always parses back to what was written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"[A-Za-z0-9._/:@+-]+")
_MARKER = re.compile(r"<!-- gitops:([a-z-]+)((?: [a-z-]+=[^\s>]*)*) -->")


def marker(kind: str, fields: Mapping[str, str]) -> str:
    """The marker text for ``kind`` with ``fields`` in the given order."""
    for key, value in fields.items():
        if not re.fullmatch(r"[a-z-]+", key) or (value and not _TOKEN.fullmatch(value)):
            raise ValueError(f"marker field {key}={value!r} is not a single plain token")
    parts = "".join(f" {key}={value}" for key, value in fields.items())
    return f"<!-- gitops:{kind}{parts} -->"


def find(body: str, kind: str) -> dict[str, str] | None:
    """The fields of the first ``kind`` marker in ``body``, or None when there is none."""
    for match in _MARKER.finditer(body or ""):
        if match.group(1) == kind:
            fields: dict[str, str] = {}
            for item in match.group(2).split():
                key, _, value = item.partition("=")
                fields[key] = value
            return fields
    return None
