"""``gitops drift``: what drifted between the live clusters and the fleet repository.

Entry layer: loads the fleet, observes the clusters (``gitops.cli.source``) and prints the
drift finder's findings in the ``-o`` format.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from gitops.cli.output import render
from gitops.cli.source import load_fleet, observe, source_options


@click.command()
@source_options
@click.option(
    "--fingerprints",
    "show_fingerprints",
    is_flag=True,
    help="Also print each pool's node fingerprints and its odd nodes out (-o json always has them).",
)
def drift(
    fleet_path: Path | None,
    repo: str | None,
    kubeconfig: str | None,
    context: str | None,
    only: tuple[str, ...],
    output: str,
    sync_timeout: float,
    request_timeout: float,
    time_scale: float,
    show_fingerprints: bool,
) -> None:
    """Compare the live clusters with the fleet repository and list what drifted.

    Findings: ImageMismatch (nodeInfo or a declared image fact such as the GPU driver),
    ConfigMismatch, FactDivergence, UnmanagedNode, CapacityMismatch, StuckCordoned (drift),
    Outdated (a pending change from git) and Unknown (a cluster that could not be observed,
    with the reason). --fingerprints adds each pool's node fingerprints (the aim is one per
    pool) and the odd nodes out; -o json always carries them.

    Findings count every difference, so one node can have several; `gitops plan` counts the
    drifted nodes it would replace. --time-scale scales the fleet's factGracePeriod, as it
    scales plan's and apply's policy durations.

    Exit status: 0 when nothing drifted, 2 when something did (or a cluster is Unknown), 1 on
    error.
    """
    from gitops import drift as drift_finder
    from gitops import facts
    from gitops.plan import jsonout, text

    fleet = load_fleet(fleet_path, repo).scaled(time_scale)
    inventory, _ = observe(fleet, kubeconfig, context, only, sync_timeout, request_timeout)
    findings = tuple(
        f for f in drift_finder.find(fleet, inventory, time.time()) if not only or f.cluster in only
    )
    prints = tuple(
        p for p in facts.fleet_fingerprints(fleet, inventory) if not only or p.cluster in only
    )
    if output == "json":
        click.echo(jsonout.render_findings(findings, prints), nl=False)
    elif output != "text":
        click.echo(render(output, findings))
    else:
        click.echo(render(output, findings), nl=False)
        if findings:
            nodes = len(drift_finder.drifted_nodes(findings))
            click.echo(
                f"Each finding is one difference and a node can have several: these "
                f"{len(findings)} findings put {nodes} node{'s' if nodes != 1 else ''} in "
                '`gitops plan`\'s "nodes drifted" count (image or configuration drift).\n'
            )
        else:
            click.echo()
    if show_fingerprints and output != "json":
        click.echo(text.render_fingerprints(prints))
    sys.exit(2 if any(f.kind != "Outdated" for f in findings) else 0)
