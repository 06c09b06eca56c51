"""``gitops run``: the controller's flags; the process itself is ``gitops.controller.command``.

Entry layer. Parses and types the flags into ``RunOptions`` and reports a start-up failure as
one ``Error:`` line with exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gitops.cli.durations import duration
from gitops.cli.forge_options import forge_flags, forge_options


@click.command()
@click.option(
    "--repo",
    required=True,
    help="Fleet repository URL (https, ssh, file://) or path; a local one is watched for commits.",
)
@click.option("--branch", default="main", show_default=True, help="Branch engineers merge to.")
@click.option("--path", "subdir", default="", help="Folder of the fleet inside the repository.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Management cluster kubeconfig (default: in-cluster configuration).",
)
@click.option("--context", help="Kubeconfig context.")
@click.option(
    "--interval",
    default="1m",
    show_default=True,
    callback=duration,
    help="Poll the repository this often (with ±10% jitter).",
)
@click.option("--status-branch", default="gitops/status", show_default=True)
@click.option(
    "--status-interval",
    default="30s",
    show_default=True,
    callback=duration,
    help="At most one status commit this often.",
)
@click.option(
    "--http-addr",
    default="127.0.0.1:8080",
    show_default=True,
    help="Where the dashboard (/), /api/v1/fleet, /healthz, /readyz, /metrics and /webhook "
    "listen; keep it on 127.0.0.1 unless a Service or proxy guards it.",
)
@click.option(
    "--verify-signatures",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of trusted OpenPGP keys and an SSH allowed_signers file.",
)
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding an https token for the repository.",
)
@click.option("--ssh-key", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the mirror and snapshots live (default: a temporary directory).",
)
@click.option(
    "--lease-namespace",
    default="gitops-system",
    show_default=True,
    help="Namespace of the Lease gitops-controller (created at start when missing and allowed).",
)
@click.option(
    "--state-namespace",
    default="gitops-system",
    show_default=True,
    help="Namespace of the rollout's durable record (created at start when missing and allowed).",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the management cluster may take to answer at all before start-up fails.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply every policy duration; for demos and tests.",
)
@click.option(
    "--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True
)
@click.option(
    "--sharding/--no-sharding",
    default=False,
    show_default=True,
    help="Spread the workload clusters over every replica (owner Leases, fenced writes); "
    "the holder of the Lease gitops-controller coordinates besides. Without it, only that "
    "holder acts.",
)
@click.option(
    "--replica-id",
    default="",
    help="This replica's name in the Leases and in its user agent (default: $POD_NAME, "
    "else <hostname>-<pid>).",
)
@click.option(
    "--qps",
    type=click.FloatRange(min=0.0),
    default=50.0,
    show_default=True,
    help="Requests a second each API server (management and every workload cluster) is sent "
    "at most, after a burst; 0 for no limit.",
)
@click.option(
    "--burst",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Requests each API server may be sent at once before --qps paces them.",
)
@forge_options(controller=True)
def run(
    repo: str,
    branch: str,
    subdir: str,
    kubeconfig: str | None,
    context: str | None,
    interval: float,
    status_branch: str,
    status_interval: float,
    http_addr: str,
    verify_signatures: Path | None,
    webhook_secret_file: Path | None,
    token_file: Path | None,
    ssh_key: Path | None,
    known_hosts: Path | None,
    cache_dir: Path | None,
    lease_namespace: str,
    state_namespace: str,
    request_timeout: float,
    time_scale: float,
    log_format: str,
    sharding: bool,
    replica_id: str,
    qps: float,
    burst: int,
    **forge: Any,
) -> None:
    """Run the controller: pull the fleet repository, reconcile, write status to git.

    Only the replica holding the Lease gitops-controller acts; with --sharding every replica
    acts on the clusters it owns and that holder coordinates. The namespaces of the Lease and
    of the rollout record are created at start when missing, as `gitops apply` does; when this
    identity may not create them, start-up fails naming them. Exit status: 0 after SIGTERM or
    SIGINT, 1 when it cannot start (bad flags, unreachable management cluster, a missing
    namespace it may not create).
    """
    from gitops.controller.command import RunOptions
    from gitops.controller.command import run as run_controller
    from gitops.errors import GitopsError

    options = RunOptions(
        repo=repo,
        branch=branch,
        subdir=subdir,
        kubeconfig=kubeconfig,
        context=context,
        interval=interval,
        status_branch=status_branch,
        status_interval=status_interval,
        http_addr=http_addr,
        verify_signatures=verify_signatures,
        webhook_secret_file=webhook_secret_file,
        token_file=token_file,
        ssh_key=ssh_key,
        known_hosts=known_hosts,
        cache_dir=cache_dir,
        lease_namespace=lease_namespace,
        state_namespace=state_namespace,
        request_timeout=request_timeout,
        time_scale=time_scale,
        log_format=log_format,
        sharding=sharding,
        replica_id=replica_id,
        qps=qps,
        burst=burst,
        forge=forge_flags(forge),
        announce=lambda line: click.echo(line, err=True),
    )
    try:
        run_controller(options)
    except GitopsError as err:
        raise click.ClickException(str(err)) from err
