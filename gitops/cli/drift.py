"""``gitops drift``: what drifted between the live clusters and the fleet repository.

Entry layer: loads the fleet, observes the clusters (``gitops.cli.source``) and prints the
drift finder's findings in the ``-o`` format.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitops.cli.output import render
from gitops.cli.source import load_fleet, observe, source_options


@click.command()
@source_options
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
) -> None:
    """Compare the live clusters with the fleet repository and list what drifted.

    Findings: ImageMismatch, ConfigMismatch, UnmanagedNode, CapacityMismatch, StuckCordoned
    (drift), Outdated (a pending change from git) and Unknown (a cluster that could not be
    observed, with the reason).

    Findings count every difference, so one node can have several; `gitops plan` counts the
    drifted nodes it would replace. --time-scale is accepted so the same flags serve drift, plan
    and apply (drift reads no policy duration).

    Exit status: 0 when nothing drifted, 2 when something did (or a cluster is Unknown), 1 on
    error.
    """
    from gitops import drift as drift_finder

    fleet = load_fleet(fleet_path, repo).scaled(time_scale)
    inventory, _ = observe(fleet, kubeconfig, context, only, sync_timeout, request_timeout)
    findings = tuple(
        f for f in drift_finder.find(fleet, inventory) if not only or f.cluster in only
    )
    if output != "text":
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
    sys.exit(2 if any(f.kind != "Outdated" for f in findings) else 0)
