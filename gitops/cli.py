"""The ``gitops`` command line: the entry layer, which parses flags and calls the layers below.

Every command catches the project's own errors and prints them as messages; a traceback
reaching a user is a bug. Exit codes are documented per command in ``--help`` and the README.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gitops import __version__
from gitops.fleet import Fleet, FleetError, load
from gitops.fleet.schema import json_schema


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="gitops")
def main() -> None:
    """Reconcile fleets of Kubernetes clusters on immutable node images from a git repository.

    A fleet repository declares clusters, node pools and the image each pool runs. gitops
    validates it, compares it with the live clusters, plans immutable replacements in waves
    and carries them out.
    """


@main.command()
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
        _report_problems(err, fmt)
        sys.exit(1)
    if fmt == "json":
        click.echo(
            json.dumps({"valid": True, "summary": _summary_json(fleet), "problems": []}, indent=2)
        )
    else:
        click.echo(f"valid: {fleet.summary()}")


def _summary_json(fleet: Fleet) -> dict[str, object]:
    pools = fleet.pools()
    return {
        "fleet": fleet.name,
        "clusters": len(fleet.clusters),
        "pools": len(pools),
        "nodes": sum(p.replicas for _, p in pools),
        "images": len(fleet.images),
        "waves": [{"name": w.wave.name, "clusters": list(w.clusters)} for w in fleet.waves],
    }


def _report_problems(err: FleetError, fmt: str) -> None:
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


@main.command()
@click.argument("path", default=".", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def describe(path: Path, output: str) -> None:
    """Show what the fleet repository at PATH declares: waves, clusters, pools and images.

    Exit status: 0 when the repository is valid, 1 when it is not.
    """
    try:
        fleet = load(path)
    except FleetError as err:
        _report_problems(err, "text")
        sys.exit(1)
    rows = [
        {
            "wave": fleet.waves[fleet.wave_of(cluster.name)].wave.name,
            "cluster": cluster.name,
            "paused": cluster.spec.paused,
            "pool": pool.name,
            "image": pool.image,
            "replicas": pool.replicas,
            "zones": list(pool.zones),
            "maxSurge": pool.surge,
            "maxUnavailable": pool.unavailable,
        }
        for cluster, pool in sorted(
            fleet.pools(), key=lambda cp: (fleet.wave_of(cp[0].name), cp[0].name)
        )
    ]
    if output == "json":
        click.echo(json.dumps({"summary": _summary_json(fleet), "pools": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=fleet.summary(), title_justify="left")
    for column in ("wave", "cluster", "pool", "image", "nodes", "zones", "surge/unavail."):
        table.add_column(column, justify="right" if column == "nodes" else "left", no_wrap=True)
    for row in rows:
        cluster = str(row["cluster"]) + (" (paused)" if row["paused"] else "")
        table.add_row(
            str(row["wave"]),
            cluster,
            str(row["pool"]),
            str(row["image"]),
            str(row["replicas"]),
            ", ".join(row["zones"]),
            f"{row['maxSurge']}/{row['maxUnavailable']}",  # type: ignore[arg-type]
        )
    console = Console()
    if not console.is_terminal:
        console.width = 160  # piped output is read by people in wide terminals and by CI logs
    console.print(table)


@main.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of fleet documents, for editors and CI."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=False))


def _register() -> None:
    from gitops.sim.command import sim

    main.add_command(sim)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
