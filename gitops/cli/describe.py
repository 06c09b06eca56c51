"""``gitops describe``: what a fleet repository declares, as a table or JSON (entry layer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gitops.cli.validate import report_problems, summary_json
from gitops.fleet import FleetError, load


@click.command()
@click.argument("path", default=".", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def describe(path: Path, output: str) -> None:
    """Show what the fleet repository at PATH declares: waves, clusters, pools and images.

    Exit status: 0 when the repository is valid, 1 when it is not (with -o json, the problems
    as `gitops validate --format json` prints them).
    """
    try:
        fleet = load(path)
    except FleetError as err:
        report_problems(err, output)
        sys.exit(1)
    pools = sorted(fleet.pools(), key=lambda cp: (fleet.wave_of(cp[0].name), cp[0].name))
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
        for cluster, pool in pools
    ]
    if output == "json":
        click.echo(json.dumps({"summary": summary_json(fleet), "pools": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=fleet.summary(), title_justify="left")
    for column in ("wave", "cluster", "pool", "image", "nodes", "zones", "surge/unavail."):
        table.add_column(column, justify="right" if column == "nodes" else "left", no_wrap=True)
    for cluster, pool in pools:
        table.add_row(
            fleet.waves[fleet.wave_of(cluster.name)].wave.name,
            cluster.name + (" (paused)" if cluster.spec.paused else ""),
            pool.name,
            pool.image,
            str(pool.replicas),
            ", ".join(pool.zones),
            f"{pool.surge}/{pool.unavailable}",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 160  # piped output is read by people in wide terminals and by CI logs
    console.print(table)
