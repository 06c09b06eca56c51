"""``gitops validate``: check a fleet repository and report every problem at once.

Entry layer. Reads local files only (through ``gitops.fleet``); the problem printer and the
summary here are shared with ``gitops describe``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from gitops.fleet import Fleet, FleetError, Problem, load
from gitops.fleet.openings import expired_freezes


@click.command()
@click.argument("path", default=".", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text for people, json for bots, github for workflow annotations.",
)
def validate(path: Path, fmt: str) -> None:
    """Check the fleet repository at PATH and report every problem at once.

    Exit status: 0 when the repository is valid, 1 when it is not.
    """
    try:
        fleet = load(path)
    except FleetError as err:
        report_problems(err, fmt)
        sys.exit(1)
    # Warnings leave the exit status alone: the repository is valid, only untidy.
    warnings = expired_freezes(fleet, time.time())
    if fmt == "json":
        body = {
            "valid": True,
            "summary": summary_json(fleet),
            "problems": [],
            "warnings": [w.to_json() for w in warnings],
        }
        click.echo(json.dumps(body, indent=2))
        return
    _report_warnings(warnings, fmt)
    click.echo(f"valid: {fleet.summary()}")


def _report_warnings(warnings: tuple[Problem, ...], fmt: str) -> None:
    for w in warnings:
        if fmt == "github":
            text = w.message.removeprefix("warning: ") + f" ({w.hint})"
            click.echo(f"::warning file={w.path},line={w.line},col={w.col}::{text}")
        else:
            click.echo(str(w))


def summary_json(fleet: Fleet) -> dict[str, object]:
    """The fleet in numbers, as ``validate --format json`` and ``describe -o json`` print it."""
    pools = fleet.pools()
    return {
        "fleet": fleet.name,
        "clusters": len(fleet.clusters),
        "pools": len(pools),
        "nodes": sum(p.replicas for _, p in pools),
        "images": len(fleet.images),
        "waves": [{"name": w.wave.name, "clusters": list(w.clusters)} for w in fleet.waves],
    }


def report_problems(err: FleetError, fmt: str) -> None:
    """Print the loader's problems as ``text``, ``json`` or ``github`` workflow annotations."""
    if fmt == "json":
        body = {"valid": False, "problems": [p.to_json() for p in err.problems]}
        click.echo(json.dumps(body, indent=2))
        return
    for p in err.problems:
        if fmt == "github":
            text = f"{p.message} ({p.hint})" if p.hint else p.message
            text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            click.echo(f"::error file={p.path},line={p.line},col={p.col}::{text}")
        else:
            click.echo(str(p))
    count = len(err.problems)
    click.echo(f"invalid: {count} problem{'s' if count != 1 else ''}", err=fmt != "text")
