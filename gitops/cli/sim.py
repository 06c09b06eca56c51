"""The ``gitops sim`` command group: serve a simulated fleet (see gitops.sim).

Entry layer, the simulator's command line; the simulator is imported only when ``serve`` runs.
It parses flags, starts a ``Simulator``, prints one summary line and waits for SIGINT or
SIGTERM. It must never print a traceback for bad input: an invalid fleet prints the loader's problems and exits 1, a bad
``--faults`` or ``--drift`` spec prints its message and exits 1 (click's usage errors exit 2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitops.fleet import FleetError
from gitops.signals import stop_on_signals


@click.group()
def sim() -> None:
    """Run the fleet simulator: a Kubernetes-API-compatible simulated fleet."""


@sim.command()
@click.option(
    "--fleet",
    "fleet_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Fleet repository (directory) to seed the simulated clusters from.",
)
@click.option(
    "--port", default=0, show_default=True, help="TCP port on 127.0.0.1; 0 picks a free one."
)
@click.option(
    "--kubeconfig-out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the management cluster's kubeconfig (once the server answers); "
    "default ./sim.kubeconfig. A kubeconfig whose server still answers is never overwritten.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option(
    "--initial",
    type=click.Choice(["declared", "previous"]),
    default="declared",
    show_default=True,
    help="Seed pools on their declared image, or on the image before it (a rollout to do).",
)
@click.option(
    "--drift",
    default="",
    help="Drift to inject, e.g. kernel:3,label:2,unmanaged:1 (kinds: kernel, label, taint, "
    "unmanaged, cordoned, driver, extension, schematic, driver-upgrade).",
)
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Append one JSON line per API request and per simulated change to this file.",
)
@click.option(
    "--faults", default="", help="API faults, e.g. error=0.1,latency=50ms,watch-drop=30s."
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Multiply every simulated latency by this factor (small values for fast tests).",
)
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="Also speak https on the same port, with a fresh CA written beside the kubeconfig "
    "(ca.crt), which then points at https: kubectl sends its token only over https, and a "
    "request without credentials is 401. ServiceAccount tokens are held to RBAC either way.",
)
@click.option(
    "--no-heartbeats",
    is_flag=True,
    help="Kubelets neither renew node Leases (every 10 s) nor report Node status (every 5 min), "
    "both scaled by --time-scale. On by default, as on a real cluster; turn off only where "
    "that load is in the way (e.g. counting Node events).",
)
@click.option(
    "--watch-history",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Events kept per resource for watches and paged lists; older ones answer 410 Expired.",
)
@click.option(
    "--watch-history-seconds",
    default=None,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Also drop events older than this many seconds (real API servers keep minutes).",
)
@click.option(
    "--capi-version",
    type=click.Choice(["v1beta1", "v1beta2"]),
    default="v1beta2",
    show_default=True,
    help="cluster.x-k8s.io versions served: v1beta2 serves v1beta2 (preferred) and v1beta1, as "
    "Cluster API v1.11 and later do; v1beta1 serves only v1beta1, as an older management "
    "cluster does.",
)
def serve(
    fleet_path: Path,
    port: int,
    kubeconfig_out: Path | None,
    seed: int,
    initial: str,
    drift: str,
    audit_log: Path | None,
    faults: str,
    time_scale: float,
    tls: bool,
    no_heartbeats: bool,
    watch_history: int,
    watch_history_seconds: float | None,
    capi_version: str,
) -> None:
    """Serve a simulated fleet: the management cluster at / and each workload cluster at
    /clusters/<name>/, until interrupted (SIGINT or SIGTERM).

    Exit status: 0 after a clean shutdown, 1 when the fleet or a spec is invalid.
    """
    from gitops.sim import Simulator
    from gitops.sim.api.faults import FaultSpecError, parse

    try:
        parse(faults)
    except FaultSpecError as err:
        click.echo(f"invalid --faults: {err}", err=True)
        sys.exit(1)
    if kubeconfig_out is None:
        kubeconfig_out = Path.cwd() / "sim.kubeconfig"
    live = _answering_server(kubeconfig_out)
    if live:
        click.echo(
            f"{kubeconfig_out} is the kubeconfig of a server still answering at {live}; stop "
            "that simulator first, or pass --kubeconfig-out to write another file",
            err=True,
        )
        sys.exit(1)
    simulator = Simulator(
        fleet_path,
        port=port,
        seed=seed,
        initial=initial,
        drift=drift,
        audit_log=audit_log,
        faults=faults,
        time_scale=time_scale,
        kubeconfig_out=kubeconfig_out,
        tls=tls,
        history=watch_history,
        history_seconds=watch_history_seconds,
        world_options={"heartbeats": not no_heartbeats},
        capi_version=capi_version,
    )
    with stop_on_signals() as stop:
        try:
            try:
                simulator.start()
            except FleetError as err:
                for problem in err.problems:
                    click.echo(str(problem), err=True)
                count = len(err.problems)
                click.echo(f"invalid fleet: {count} problem{'s' if count != 1 else ''}", err=True)
                sys.exit(1)
            except ValueError as err:  # a bad --drift or --initial spec, reported by the world
                click.echo(f"cannot start the simulator: {err}", err=True)
                sys.exit(1)
            except OSError as err:
                click.echo(f"cannot start the simulator: {err}", err=True)
                sys.exit(1)
            click.echo(simulator.summary())
            sys.stdout.flush()
            stop.wait()
        finally:
            simulator.stop()


def _answering_server(path: Path) -> str:
    """The server URL of the kubeconfig at ``path`` if something answers there, else "".

    Overwriting the kubeconfig of a simulator still running would leave that simulator's
    clients pointed at a new one without anyone noticing; an unreadable file, or a server
    that is gone, is fair to overwrite.
    """
    import socket
    import urllib.parse

    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
        server = str(doc["clusters"][0]["cluster"]["server"])
        url = urllib.parse.urlsplit(server)
        address = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError):
        return ""
    try:  # a listening socket is enough: http or https, any answer counts
        with socket.create_connection(address, timeout=1):
            return server
    except OSError:
        return ""
