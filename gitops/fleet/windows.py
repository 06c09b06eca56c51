"""The time algebra of maintenance windows and freezes: open now? closes when? opens next?

Part of the model layer, pure: it reads the ``Maintenance`` blocks the loader validated and the
``now`` it is given (seconds since the epoch), never a clock. The planner (``gitops.plan``) asks a
``Calendar`` made once per plan whether a batch of a given length may start now at a cluster;
``gitops.fleet.openings`` shows the same evaluation to people (``gitops windows``, status
files, metrics, warnings). Times are evaluated in each window's declared zone
with ``zoneinfo``; cron schedules are read by ``cronsim`` (Debian cron's DST rules: a start in
the spring-forward gap runs when the clock jumps, a start in the autumn repeat hour runs once,
at its first occurrence). Weekly windows follow the same rules; a duration is real time, so a
window from 01:00 to 04:00 on the autumn night lasts four hours.

Rules (also in the README): a level (fleet, wave, cluster) that declares windows allows work
while any of its windows is open; where several levels declare windows, all must allow it; a
freeze at any level wins over every window; a batch may start only when the allowed period
holds long enough for it to finish. Evaluation is cached per (window, kind) and per set of
levels for one ``Calendar``, that is one plan: never per node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from gitops.fleet.model import Fleet
from gitops.fleet.quantities import format_duration
from gitops.fleet.spec import WEEKDAYS, Freeze, Maintenance, Window

HORIZON = 35 * 86400.0
"""How far ahead openings are looked for: a monthly window is always found."""
STEPS = (2 * 86400.0, 8 * 86400.0, HORIZON)
"""The planner looks this far ahead first, further only when nothing fits: most verdicts are
decided within two days, and the cost of a plan grows with the occurrences it computes."""
MAX_OCCURRENCES = 5000
"""Occurrences of one rule computed per plan at most (a schedule firing every minute)."""

Kind = Literal["image", "drift"]
Scope = Literal["fleet", "wave", "cluster"]
State = Literal["open", "closed", "frozen", "short", "never"]


@dataclass(frozen=True, slots=True)
class Span:
    """A period ``[start, end)`` in seconds since the epoch, named for messages."""

    start: float
    end: float
    label: str = ""
    zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Level:
    """One level's declarations: the fleet, a wave or a cluster."""

    scope: Scope
    name: str
    maintenance: Maintenance | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether work of a given length may start now, and otherwise why not and when.

    ``state``: ``open`` (start now), ``closed`` (no window open), ``frozen`` (a freeze holds),
    ``short`` (open, but it closes before the work could finish), ``never`` (no opening long
    enough within ``HORIZON``). ``starts`` is when it may start (``now`` when open; None:
    never within the horizon); ``closes`` the end of the period it would start in.
    """

    state: State
    starts: float | None
    closes: float | None
    reason: str
    windowed: bool = False  # some level declares a window or freeze for this kind
    opened: float | None = None  # when open: when the period it is open in began

    @property
    def open(self) -> bool:
        return self.state == "open"


def local(ts: float, zone: str) -> str:
    """``ts`` as a local RFC 3339 time to the minute, e.g. 2026-12-07T22:00+01:00."""
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat(timespec="minutes")


def _instant(naive: datetime, tz: ZoneInfo) -> float:
    """The instant a local wall time names: its first occurrence when the hour repeats, and
    the moment the clock jumps when it falls in the spring-forward gap (as cron does)."""
    ts = naive.replace(tzinfo=tz, fold=0).timestamp()
    if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == naive:
        return ts
    step = naive
    for _ in range(24 * 60):  # gaps are at most hours long
        step += timedelta(minutes=1)
        ts = step.replace(tzinfo=tz, fold=0).timestamp()
        if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == step:
            return ts
    return ts


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def occurrences(rule: Window | Freeze, since: float, until: float) -> list[Span]:
    """The periods of a recurring window or freeze that overlap ``[since, until)``, in order."""
    tz = ZoneInfo(rule.time_zone)
    label = (
        f"window {rule.name} ({rule.time_zone})"
        if isinstance(rule, Window)
        else f"freeze {rule.name}: {rule.reason} (owner {rule.owner})"
    )
    spans: list[Span] = []
    if rule.schedule is not None and rule.duration is not None:
        length = rule.duration
        starts = CronSim(rule.schedule, datetime.fromtimestamp(since - length, tz))
        for dt in starts:
            begin = dt.timestamp()
            if begin >= until or len(spans) >= MAX_OCCURRENCES:
                break
            if begin + length > since:
                spans.append(Span(begin, begin + length, label, rule.time_zone))
        return spans
    if rule.start_time is None or rule.end_time is None:
        return spans
    opens, closes = _clock(rule.start_time), _clock(rule.end_time)
    next_day = closes <= opens  # crosses midnight
    days = {WEEKDAYS.index(d) for d in rule.days}
    day = datetime.fromtimestamp(since, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(until, tz).date()
    while day <= last:
        if day.weekday() in days:
            begin = _instant(datetime.combine(day, opens), tz)
            end_day: date = day + timedelta(days=1) if next_day else day
            end = _instant(datetime.combine(end_day, closes), tz)
            if end > since and begin < until:
                spans.append(Span(begin, end, label, rule.time_zone))
        day += timedelta(days=1)
    return spans


def _freeze_spans(freeze: Freeze, since: float, until: float) -> list[Span]:
    if freeze.start is not None:
        label = f"freeze {freeze.name}: {freeze.reason} (owner {freeze.owner})"
        zone = freeze.time_zone
        if freeze.ends_at > since and freeze.starts_at < until:
            return [Span(freeze.starts_at, freeze.ends_at, label, zone)]
        return []
    return occurrences(freeze, since, until)


def union(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged; the label of the one that opens a run is kept."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = Span(last.start, span.end, last.label, last.zone)
        else:
            merged.append(span)
    return merged


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Where both unions of spans hold; the label of the later-opening side names each piece."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i], b[j]
        start, end = max(x.start, y.start), min(x.end, y.end)
        if start < end:
            named = x if (x.start >= y.start and x.label) or not y.label else y
            out.append(Span(start, end, named.label, named.zone))
        if x.end <= y.end:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The parts of ``a`` outside every span of ``b`` (both sorted, ``b`` merged)."""
    out: list[Span] = []
    for span in a:
        start = span.start
        for cut in b:
            if cut.end <= start or cut.start >= span.end:
                continue
            if cut.start > start:
                out.append(Span(start, cut.start, span.label, span.zone))
            start = max(start, cut.end)
        if start < span.end:
            out.append(Span(start, span.end, span.label, span.zone))
    return out


def _applies(covers: str, kind: Kind) -> bool:
    return covers in ("both", kind)


@dataclass(slots=True)
class Calendar:
    """Windows and freezes evaluated at one ``now``, for one plan; caches every evaluation."""

    now: float
    ignore_windows: bool = False  # an override (or ``apply --ignore-windows``) lifts windows
    lift_freezes: bool = False  # an override that says so lifts freezes too
    # Rules and unions by value: clusters that copy one window (a schedule per cluster, the
    # same in every cluster of a zone) share its evaluation. Levels by identity: each
    # cluster's set is asked for again by each of its pools.
    _rules: dict[tuple[Window | Freeze, Kind, float], list[Span]] = field(default_factory=dict)
    _unions: dict[tuple[tuple[Window, ...], Kind, float], list[Span]] = field(default_factory=dict)
    _levels: dict[tuple[tuple[int, ...], Kind, float], tuple[list[Span], list[Span], bool]] = field(
        default_factory=dict
    )
    _keep: list[object] = field(default_factory=list)  # keeps id() keys alive for the plan

    def _spans(self, rule: Window | Freeze, kind: Kind, horizon: float) -> list[Span]:
        key = (rule, kind, horizon)
        found = self._rules.get(key)
        if found is None:
            until = self.now + horizon
            if not _applies(rule.covers, kind):
                found = []
            elif isinstance(rule, Freeze):
                found = _freeze_spans(rule, self.now, until)
            else:
                found = occurrences(rule, self.now, until)
            self._rules[key] = found
        return found

    def periods(
        self, levels: Sequence[Level], kind: Kind, horizon: float = HORIZON
    ) -> tuple[list[Span], list[Span], bool]:
        """(allowed spans around ``now`` up to ``horizon`` ahead, freeze spans, whether any
        level declares either)."""
        key = (tuple(id(level.maintenance) for level in levels), kind, horizon)
        found = self._levels.get(key)
        if found is None:
            self._keep.extend(level.maintenance for level in levels)
            found = self._evaluate(levels, kind, horizon)
            self._levels[key] = found
        return found

    def _windows(self, windows: tuple[Window, ...], kind: Kind, h: float) -> list[Span]:
        """The union of one level's windows, shared by every cluster under that level."""
        key = (windows, kind, h)
        found = self._unions.get(key)
        if found is None:
            found = self._unions[key] = union(s for w in windows for s in self._spans(w, kind, h))
        return found

    def _evaluate(
        self, levels: Sequence[Level], kind: Kind, horizon: float
    ) -> tuple[list[Span], list[Span], bool]:
        # From the beginning of time: a period open now keeps the instant it opened.
        allowed = [Span(-math.inf, math.inf)]
        freezes: list[Span] = []
        declared = False
        for level in levels:
            m = level.maintenance
            if m is None:
                continue
            windows = tuple(w for w in m.windows if _applies(w.covers, kind))
            if windows and not self.ignore_windows:
                declared = True
                allowed = intersect(allowed, self._windows(windows, kind, horizon))
            if not self.lift_freezes:
                found = [s for f in m.freezes for s in self._spans(f, kind, horizon)]
                declared = declared or bool(found)
                freezes.extend(found)
        freezes = union(freezes)
        return subtract(allowed, freezes), freezes, declared

    def verdict(self, levels: Sequence[Level], kind: Kind, need: float) -> Verdict:
        """May work of ``need`` seconds of ``kind`` start now under ``levels``? Else why, when."""
        now = self.now
        for horizon in STEPS:
            allowed, freezes, declared = self.periods(levels, kind, horizon)
            if not declared:
                return Verdict("open", now, None, "")
            here = next((s for s in allowed if s.start <= now < s.end), None)
            fits = next((s for s in allowed if s.end - max(s.start, now) >= need), None)
            # Decided, unless nothing fits or the open period runs past what was looked at.
            if fits is not None and (here is None or fits is here or here.end < now + horizon):
                break
        if here is not None and fits is here:
            closes = None if math.isinf(here.end) else here.end
            return Verdict("open", now, closes, "", windowed=True, opened=here.start)
        starts = max(fits.start, now) if fits is not None else None
        closes = fits.end if fits is not None and not math.isinf(fits.end) else None
        then = (
            f", opens {local(fits.start, fits.zone)}"
            if fits is not None
            else f"; no opening of {format_duration(need)} within {format_duration(HORIZON)}"
        )
        frozen = next((s for s in freezes if s.start <= now < s.end), None)
        if frozen is not None:
            reason = f"frozen until {local(frozen.end, frozen.zone)}: {frozen.label}"
            if fits is not None and fits.start > frozen.end:
                reason += f"; then waits for {fits.label}{then}"
            state: State = "frozen"
        elif here is not None:
            reason = (
                f"{here.label} closes {local(here.end, here.zone)}, too soon for a batch "
                f"that may take {format_duration(need)}; next {fits.label if fits else 'opening'}"
                f"{then}"
            )
            state = "short"
        else:
            name = fits.label if fits is not None else "a window"
            reason = f"waits for {name}{then}"
            state = "closed"
        if fits is None:
            state = "never" if state == "closed" else state
        return Verdict(state, starts, closes, reason, windowed=True)

    def is_open(self, levels: Sequence[Level], kind: Kind) -> bool:
        """Whether work of ``kind`` may start now at all (no length asked)."""
        return self.verdict(levels, kind, 0.0).open


def cluster_levels(fleet: Fleet, name: str) -> tuple[Level, ...]:
    """The fleet, wave and cluster levels whose windows and freezes govern cluster ``name``."""
    doc = fleet.cluster(name)
    wave = fleet.waves[fleet.wave_of(name)].wave
    return (
        Level("fleet", fleet.name, fleet.document.spec.rollout.maintenance),
        Level("wave", wave.name, wave.maintenance),
        Level("cluster", name, doc.spec.maintenance if doc is not None else None),
    )
