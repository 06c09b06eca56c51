"""``gitops run``: the controller process (wiring only; the loop is ``gitops.controller.loop``).

Shell layer. Builds the mirror, status writer, trust store, HTTP endpoints, trigger and leader
election from flags, runs the loop while this replica holds the Lease, and stops cleanly on
SIGTERM or SIGINT (the last status is flushed and the Lease released).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from gitops.bot.options import build_bot, forge_options
from gitops.controller.http import ControllerHTTP
from gitops.controller.logs import configure
from gitops.controller.loop import Controller
from gitops.controller.metrics import Metrics
from gitops.controller.watch import RefWatcher, local_git_dir
from gitops.controller.webhooks import Trigger
from gitops.errors import GitopsError
from gitops.fleet.quantities import parse_duration
from gitops.gitrepo.auth import Credentials
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import CoalescingWriter, StatusWriter
from gitops.gitrepo.verify import TrustStore
from gitops.kube.actions import ensure_namespace
from gitops.kube.client import Kube, connect, pod_namespace, probe
from gitops.kube.errors import Forbidden
from gitops.kube.lease import LeaderElector
from gitops.signals import stop_on_signals

log = logging.getLogger(__name__)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def _namespaces(
    management: Kube, lease_namespace: str, state_namespace: str, own: str | None
) -> None:
    """Create the Lease's and the record's namespaces when missing, or fail naming them.

    Without its namespace the Lease can never be taken, and a controller that retries it
    forever looks alive while it does nothing: better to make it, as ``gitops apply`` does,
    or to stop at once and say which namespace and which flags. The namespace of our own pod
    (``own``) exists by definition and is not asked about: the deployed RBAC grants no read
    of namespaces.
    """
    for namespace in sorted({lease_namespace, state_namespace} - {own}):
        uses = [
            what
            for what, ns in (("Lease", lease_namespace), ("rollout record", state_namespace))
            if ns == namespace
        ]
        try:
            outcome = ensure_namespace(management, namespace)
        except Forbidden as err:
            raise click.ClickException(
                f"namespace {namespace} (for the {' and the '.join(uses)}) does not exist and "
                f"this identity may not create it ({err}); create it, or point --lease-namespace "
                "and --state-namespace at a namespace that exists"
            ) from err
        if outcome == "created":
            log.info(
                "Created namespace %s for the %s, as gitops apply does.",
                namespace,
                " and the ".join(uses),
            )


def _ready(controller: Controller, electors: list[LeaderElector]) -> tuple[bool, str]:
    """/readyz: the controller's readiness, or why this replica cannot take the Lease."""
    for elector in electors:
        if not elector.leading and elector.last_error:
            return False, f"cannot take the Lease: {elector.last_error}"
    return controller.ready()


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
    callback=_duration,
    help="Poll the repository this often (with ±10% jitter).",
)
@click.option("--status-branch", default="gitops/status", show_default=True)
@click.option(
    "--status-interval",
    default="30s",
    show_default=True,
    callback=_duration,
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
    **forge: Any,
) -> None:
    """Run the controller: pull the fleet repository, reconcile, write status to git.

    Only the replica holding the Lease gitops-controller acts. The namespaces of the Lease and
    of the rollout record are created at start when missing, as `gitops apply` does; when this
    identity may not create them, start-up fails naming them. Exit status: 0 after SIGTERM or
    SIGINT, 1 when it cannot start (bad flags, unreachable management cluster, a missing
    namespace it may not create).
    """
    if log_format == "json":
        configure("info")
    cache = cache_dir or Path(tempfile.mkdtemp(prefix="gitops-cache-"))
    credentials = Credentials(
        token_file=token_file, ssh_key_file=ssh_key, known_hosts_file=known_hosts
    )
    remote = Remote(repo, branch=branch, credentials=credentials)
    try:
        management = connect(kubeconfig, context)
        probe(management, request_timeout)
        _namespaces(management, lease_namespace, state_namespace, pod_namespace(kubeconfig))
        mirror = Mirror(cache / "fleet", remote)
        writer = CoalescingWriter(
            StatusWriter(cache / "status", remote, branch=status_branch), status_interval
        )
        bot = build_bot(forge, remote, cache / "bot", path=subdir, status_branch=status_branch)
    except (GitopsError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    trust = TrustStore(verify_signatures, cache / "trust") if verify_signatures else None
    metrics = Metrics()
    controller = Controller(
        mirror,
        management,
        path=subdir,
        writer=writer,
        bot=bot,
        trust=trust,
        metrics=metrics,
        state_namespace=state_namespace,
        time_scale=time_scale,
    )
    trigger = Trigger(branch)
    electors: list[LeaderElector] = []  # filled below; /readyz may be asked before
    host, _, port = http_addr.rpartition(":")
    secret = webhook_secret_file.read_bytes().strip() if webhook_secret_file else None
    http = ControllerHTTP(
        host or "127.0.0.1",
        int(port),
        metrics=metrics,
        healthy=lambda: (True, "ok"),
        ready=lambda: _ready(controller, electors),
        trigger=trigger,
        webhook_secret=secret,
        board=controller.board,
    ).start()
    loop_thread: list[threading.Thread] = []

    def lead() -> None:
        metrics.leader.set(1)
        controller.resume()
        thread = threading.Thread(
            target=lambda: controller.run(interval=interval, trigger=trigger),
            name="reconcile",
            daemon=True,
        )
        loop_thread.append(thread)
        thread.start()

    def follow() -> None:
        metrics.leader.set(0)
        controller.pause()

    identity = f"{socket.gethostname()}-{os.getpid()}"
    elector = LeaderElector(
        management,
        lease_namespace,
        "gitops-controller",
        identity,
        lease_duration=max(1.0, 15.0 * min(1.0, time_scale * 10)),
        retry_period=max(0.2, 2.0 * min(1.0, time_scale * 10)),
        on_started=lead,
        on_stopped=follow,
    )
    electors.append(elector)
    git_dir = local_git_dir(repo)
    watcher = RefWatcher(git_dir, branch, trigger).start() if git_dir is not None else None
    # Shutdown happens inside the block: our handlers stay installed until the process is
    # done, so a second SIGTERM during the shutdown is absorbed instead of killing it.
    with stop_on_signals() as stop:
        click.echo(
            f"gitops run: watching {remote.display} ({branch}); http {http.address}; "
            f"identity {identity}",
            err=True,
        )
        elector.start()
        stop.wait()
        log.info("Stopping: finishing the current step, flushing status, releasing the Lease.")
        if watcher is not None:
            watcher.stop()
        controller.pause()
        for thread in loop_thread:
            thread.join(30)
        controller.stop()
        elector.stop(release=True)
        http.stop()
