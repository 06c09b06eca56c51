"""``gitops windows``: when each cluster of a fleet may next take changes, over the coming days.

Entry layer. Reads the fleet repository (local files) and the wall clock, once; the time
algebra is ``gitops.fleet.windows``, the same the planner uses, so what this prints is what
the plan will wait for.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitops.cli.validate import report_problems

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitops.fleet.openings import Openings
    from gitops.fleet.windows import Span


@click.command()
@click.argument("path", default=".", type=click.Path(path_type=Path))
@click.option(
    "--days",
    type=click.FloatRange(min=0.0, min_open=True, max=35.0),
    default=7.0,
    show_default=True,
    help="How many days ahead to show.",
)
@click.option(
    "--at",
    "at",
    default=None,
    metavar="RFC3339",
    help="Start from this time instead of now, e.g. 2026-12-07T08:00:00+01:00.",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def windows(path: Path, days: float, at: str | None, output: str) -> None:
    """Print the next openings of every cluster's maintenance windows, freezes included.

    For each cluster, wave by wave: when new work may start (windows of the fleet, its wave and
    itself all open, no freeze), separately for new images and drift remediation when they
    differ. Exit status: 0, or 1 when the repository is invalid or --at is not a time.
    """
    from gitops.fleet import FleetError, load
    from gitops.fleet.openings import openings

    try:
        fleet = load(path)
    except FleetError as err:
        report_problems(err, "json" if output == "json" else "text")
        sys.exit(1)
    now = _start(at)
    found = openings(fleet, now, days)
    if output == "json":
        click.echo(json.dumps({"now": now, "days": days, "clusters": [_json(o) for o in found]}))
        return
    for item in found:
        click.echo(_text(item, now, now + days * 86400.0))


def _start(at: str | None) -> float:
    if at is None:
        return time.time()
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError as err:
        raise click.BadParameter(f"{at!r} is not an RFC 3339 time", param_hint="--at") from err
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{at!r} has no offset; add Z or +01:00", param_hint="--at")
    return parsed.timestamp()


def _span(span: Span, now: float, until: float) -> str:
    from gitops.fleet.windows import local

    start = "now" if span.start <= now else local(span.start, span.zone)
    end = "beyond the days shown" if span.end >= until else local(span.end, span.zone)
    return f"{start} → {end}" + (f"  {span.label}" if span.label else "")


def _text(item: Openings, now: float, until: float) -> str:
    head = f"Cluster {item.cluster} (wave {item.wave}): "
    if not item.declared:
        return head + "no windows or freezes declared: always open"
    lines = [head + ("open now" if item.image and item.image[0].start <= now else "closed now")]
    kinds = (
        [("", item.image)]
        if item.image == item.drift
        else [
            ("new images: ", item.image),
            ("drift remediation: ", item.drift),
        ]
    )
    for label, spans in kinds:
        if not spans:
            lines.append(f"  {label}no opening in this period")
        lines += [f"  {label}{_span(s, now, until)}" for s in spans]
    lines += [f"  frozen {_span(s, now, until)}" for s in item.freezes]
    return "\n".join(lines)


def _json(item: Openings) -> dict[str, Any]:
    def spans(found: Sequence[Span]) -> list[dict[str, Any]]:
        return [
            {"start": s.start, "end": None if s.end == float("inf") else s.end, "label": s.label}
            for s in found
        ]

    return {
        "cluster": item.cluster,
        "wave": item.wave,
        "declared": item.declared,
        "image": spans(item.image),
        "drift": spans(item.drift),
        "freezes": spans(item.freezes),
    }
