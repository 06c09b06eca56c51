"""Durations and int-or-percent values of the fleet format, parsed once at load time.

Part of the model layer: pure functions, no I/O. Durations are written the Go/Kubernetes way
(``90s``, ``10m``, ``1h30m``, ``500ms``) and become seconds; surge and unavailability budgets are
an integer or a percentage of replicas and resolve with the Deployment controller's rounding.
"""

from __future__ import annotations

import math
import re

# The patterns are shared with the JSON Schema, so they keep to what Python's and ECMA-262's
# regular expressions read alike: ``[0-9]``, never ``\d`` (which in Python matches any Unicode
# digit), and fullmatch in Python (whose ``$`` also matches before a final newline).
_DURATION_PARTS = r"([0-9]+(\.[0-9]+)?(ms|h|m|s))+"
DURATION_PATTERN = rf"^(0|{_DURATION_PARTS})$"
"""A duration of the fleet format: parts with units, or a bare 0 (as Go's ParseDuration reads)."""
PERCENT_PATTERN = r"^(100|[1-9]?[0-9])%$"
"""A percentage of the fleet format: 0% to 100%, no sign, no fraction, no leading zero."""

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_DURATION_WHOLE = re.compile(_DURATION_PARTS)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PERCENT = re.compile(PERCENT_PATTERN)


def parse_duration(text: str) -> float:
    """Return the seconds in a duration such as ``1h30m``; raise ValueError when it is not one."""
    if not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration; write a number with a unit, e.g. 90s, 10m, 1h30m"
        )
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Render seconds the way a human writes them in the fleet format (``1h30m``, ``45s``)."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return out + (f"{secs}s" if secs or not out else "")


def parse_percent(text: str) -> int:
    """Return N for ``N%`` (0 to 100); raise ValueError otherwise."""
    if not _PERCENT.fullmatch(text):
        raise ValueError(f"{text!r} is not a percentage; write an integer or a percent like 25%")
    return int(text[:-1])


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Resolve an int-or-percent against ``total`` as Kubernetes does (surge up, unavailable down)."""
    if isinstance(value, int):
        return value
    scaled = parse_percent(value) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
