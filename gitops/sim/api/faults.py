"""Injected API faults: errors, added latency and watch disconnects, reproducible from a seed.

Tool layer (``gitops.sim.api``), consulted by the HTTP server before it serves each resource
request (discovery is never faulted). ``parse`` reads the ``--faults`` spec; ``Injector``
draws every random decision from one ``random.Random(seed)``, so a run with the same seed and
the same request order sees the same faults. It must never touch the store, and never use any
other source of randomness.

Spec: comma-separated ``key=value`` items.

* ``error=P``: probability (0..1) that a resource request fails; ``error.<verb>=P`` overrides it
  for one verb (get, list, watch, create, update, patch, delete, deletecollection).
* ``codes=500|429|409``: the statuses an injected error is drawn from (default all three);
  409 Conflict is only drawn for writes, where a real server can answer it. 429 answers carry
  ``Retry-After`` (``retry-after=N`` seconds, default 1).
* ``latency=50ms`` or ``latency=10ms-80ms`` (uniform), ``latency.<verb>=...``: added before the
  answer, multiplied by the simulator's time scale.
* ``watch-drop=30s``: every watch stream is cut (the connection closed without the final chunk,
  as a network failure would) after a random time between half and all of this interval.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

from gitops.sim.api.kinds import ApiError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class FaultSpecError(ValueError):
    """A ``--faults`` spec that cannot be parsed; the message names the bad item."""


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise FaultSpecError(f"bad duration {text!r} (use e.g. 50ms, 2s, 1m)")
    return float(m[1]) * _UNITS[m[2]]


@dataclass(frozen=True)
class Faults:
    error: float = 0.0
    error_by_verb: dict[str, float] = field(default_factory=dict)
    codes: tuple[int, ...] = (500, 429, 409)
    retry_after: int = 1
    latency: tuple[float, float] = (0.0, 0.0)
    latency_by_verb: dict[str, tuple[float, float]] = field(default_factory=dict)
    watch_drop: float | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.error
            or any(self.error_by_verb.values())
            or self.latency[1]
            or any(hi for _, hi in self.latency_by_verb.values())
            or self.watch_drop
        )


def _probability(key: str, value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        raise FaultSpecError(f"{key}={value}: not a probability between 0 and 1") from None
    if not 0.0 <= p <= 1.0:
        raise FaultSpecError(f"{key}={value}: not a probability between 0 and 1")
    return p


def _latency(value: str) -> tuple[float, float]:
    lo, _, hi = value.partition("-")
    low = parse_duration(lo)
    high = parse_duration(hi) if hi else low
    if high < low:
        raise FaultSpecError(f"latency={value}: the upper bound is below the lower bound")
    return (low, high)


def parse(spec: str) -> Faults:
    """Parse a ``--faults`` spec (see the module docstring); "" means no faults."""
    error, retry_after, latency, drop = 0.0, 1, (0.0, 0.0), None
    codes: tuple[int, ...] = (500, 429, 409)
    error_by_verb: dict[str, float] = {}
    latency_by_verb: dict[str, tuple[float, float]] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise FaultSpecError(f"{item!r}: expected key=value")
        base, _, verb = key.partition(".")
        if verb and verb not in VERBS:
            raise FaultSpecError(f"{key}: unknown verb {verb!r} (one of {', '.join(VERBS)})")
        if base == "error":
            if verb:
                error_by_verb[verb] = _probability(key, value)
            else:
                error = _probability(key, value)
        elif base == "latency":
            if verb:
                latency_by_verb[verb] = _latency(value)
            else:
                latency = _latency(value)
        elif key == "codes":
            try:
                codes = tuple(int(c) for c in value.split("|"))
            except ValueError:
                raise FaultSpecError(f"codes={value}: expected e.g. 500|429|409") from None
            if not codes or any(c not in (409, 429, 500, 503) for c in codes):
                raise FaultSpecError(f"codes={value}: only 409, 429, 500 and 503 can be injected")
        elif key == "retry-after":
            if not value.isdigit():
                raise FaultSpecError(f"retry-after={value}: expected whole seconds")
            retry_after = int(value)
        elif key == "watch-drop":
            drop = parse_duration(value)
            if drop <= 0:
                raise FaultSpecError("watch-drop must be a positive duration")
        else:
            raise FaultSpecError(
                f"unknown fault {key!r} (known: error, error.<verb>, codes, retry-after, "
                "latency, latency.<verb>, watch-drop)"
            )
    return Faults(error, error_by_verb, codes, retry_after, latency, latency_by_verb, drop)


@dataclass(frozen=True)
class Decision:
    """What to do to one request: wait ``delay`` seconds, then fail with ``error`` if set."""

    delay: float = 0.0
    error: ApiError | None = None
    watch_drop_after: float | None = None


NO_FAULT = Decision()


class Injector:
    """Draws fault decisions from a seeded generator; thread-safe."""

    def __init__(self, faults: Faults | str = "", *, seed: int = 0, time_scale: float = 1.0):
        self.faults = parse(faults) if isinstance(faults, str) else faults
        self.time_scale = time_scale
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def decide(self, verb: str, resource: str = "", name: str = "") -> Decision:
        f = self.faults
        if not f.active:
            return NO_FAULT
        with self._lock:
            lo, hi = f.latency_by_verb.get(verb, f.latency)
            delay = (lo if hi == lo else self._rng.uniform(lo, hi)) * self.time_scale
            p = f.error_by_verb.get(verb, f.error)
            error = None
            if p and self._rng.random() < p:
                codes = [c for c in f.codes if c != 409 or verb in WRITES] or [500]
                error = _error(self._rng.choice(codes), verb, resource, name, f.retry_after)
            drop = None
            if verb == "watch" and f.watch_drop:
                drop = self._rng.uniform(f.watch_drop / 2, f.watch_drop) * self.time_scale
        return Decision(delay, error, drop)


def _error(code: int, verb: str, resource: str, name: str, retry_after: int) -> ApiError:
    what = f'{resource} "{name}"' if name else resource
    if code == 429:
        return ApiError.too_many_requests(
            "Too many requests, please try again later. (injected fault)", retry_after
        )
    if code == 409:
        return ApiError(
            409,
            "Conflict",
            f"Operation cannot be fulfilled on {what}: the object has been modified; please "
            "apply your changes to the latest version and try again (injected fault)",
            {"name": name, "kind": resource},
        )
    if code == 503:
        return ApiError(
            503, "ServiceUnavailable", "the server is currently unable to handle the request"
        )
    return ApiError.internal(f"an error on the server (injected fault) has prevented {verb} {what}")
