"""``gitops apply``: carry the plan out with live progress, until the fleet converges.

Entry layer: wires the executor (``gitops.rollout``) to the management cluster, asks for
confirmation, runs it in a worker thread while the main thread watches for signals, and shows
its progress (``gitops.cli.progress``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitops.cli.errors import Failed
from gitops.cli.source import (
    connect,
    context_option,
    fleet_option,
    kubeconfig_option,
    load_fleet,
    repo_option,
    request_timeout_option,
    sync_timeout_option,
)


@click.command()
@fleet_option
@repo_option
@kubeconfig_option
@context_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--resume", is_flag=True, help="Clear a halt (and its failure counts) and carry on.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply every policy duration (soak, timeouts) by X; for demos and tests.",
)
@click.option(
    "--state-namespace",
    default="gitops-system",
    show_default=True,
    help="Namespace of the ConfigMap holding the rollout's durable record.",
)
@click.option(
    "--override-drift-limit",
    is_flag=True,
    help="Remediate even when more than maxDriftedFraction of the fleet drifted.",
)
@click.option(
    "--ignore-windows",
    is_flag=True,
    help="Start work outside maintenance windows (freezes still hold); asks for confirmation "
    "even with --yes, so it needs a terminal.",
)
@sync_timeout_option
@request_timeout_option
def apply(
    fleet_path: Path | None,
    repo: str | None,
    kubeconfig: str | None,
    context: str | None,
    yes: bool,
    resume: bool,
    time_scale: float,
    state_namespace: str,
    override_drift_limit: bool,
    ignore_windows: bool,
    sync_timeout: float,
    request_timeout: float,
) -> None:
    """Carry the plan out: replace nodes in waves until the fleet converges.

    Shows the plan, asks for confirmation (unless --yes), then rolls out with live progress
    (on a terminal), or one line per event (piped, in CI). Ctrl-C stops starting new work;
    operations under way finish and the fleet stays consistent: run apply again to carry on.
    A second Ctrl-C (or SIGTERM after it) quits at once (exit 130); running apply again resumes
    safely.

    Exit status: 0 when the fleet converged, 1 when the rollout halted (the reason is printed
    and recorded in the management cluster), was refused, was stopped, or failed; 130 after a
    second Ctrl-C.
    """
    import contextlib
    import threading
    from collections.abc import Callable

    from rich.console import Console
    from rich.live import Live

    from gitops.cli.progress import EventLines, Progress
    from gitops.errors import GitopsError
    from gitops.kube.observe import Observer
    from gitops.plan import Plan, text
    from gitops.providers.clusterapi import ClusterAPIProvider
    from gitops.rollout.executor import Event, Executor
    from gitops.rollout.store import StateStore
    from gitops.signals import stop_on_signals

    if ignore_windows:
        confirm_ignore_windows()
    fleet = load_fleet(fleet_path, repo)
    console = Console()
    management = connect(kubeconfig, context, request_timeout)
    observer = Observer(management)
    observer.track((c.name, c.namespace) for c in fleet.clusters)
    observer.wait_synced(sync_timeout)
    store = StateStore(management, state_namespace, time_scale=time_scale)
    progress = Progress()
    # On a terminal the live display shows the latest events; piped or in CI there is no
    # display to refresh, so every event is one plain line, written as it happens, and the
    # log keeps the whole history.
    on_event: Callable[[Event], None] = (
        progress.event if console.is_terminal else EventLines(fleet, progress)
    )
    executor = Executor(
        fleet,
        observer,
        ClusterAPIProvider(management),
        store,
        time_scale=time_scale,
        on_event=on_event,
        override_drift_limit=override_drift_limit,
        ignore_windows=ignore_windows,
    )
    try:
        first = executor.preview(resume=resume)
        click.echo(text.render(first, color=console.is_terminal))
        if first.status == "converged":
            click.echo("Nothing to do: the fleet is converged.")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise Failed("not a terminal: pass --yes to apply without confirmation")
            click.confirm("Apply this plan?", abort=True)

        # The executor runs in a worker thread; the main thread only watches for signals (a
        # handler that touched the executor's locks could deadlock, see gitops.signals).
        outcome: list[Plan] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                outcome.append(
                    executor.run(
                        resume=resume,
                        poll=max(0.05, min(1.0, 2 * time_scale)),
                        on_plan=progress.update,
                    )
                )
            except BaseException as err:  # re-raised in the main thread below
                failure.append(err)

        live: contextlib.AbstractContextManager[object] = (
            Live(
                progress,
                console=console,
                refresh_per_second=4,
                transient=False,
                redirect_stdout=False,
            )
            if console.is_terminal
            else contextlib.nullcontext()
        )
        with stop_on_signals() as stop, live:
            worker = threading.Thread(target=work, name="apply", daemon=True)
            worker.start()
            warned = False
            while worker.is_alive():
                worker.join(0.2)
                if stop and not warned:
                    executor.stopping.set()
                    console.print(
                        "[yellow]Stopping: no new work starts and steps under way finish; "
                        "run `gitops apply` again to resume. Press Ctrl-C again to quit now.[/]"
                    )
                    warned = True
                if len(stop.signals) > 1:
                    break
            if len(stop.signals) > 1:
                # 128 + SIGINT, as a shell reports a process Ctrl-C ended: the rollout was
                # cut, not finished nor halted. What was under way is recorded on the
                # objects, so the next apply picks it up.
                click.echo(
                    "Quit at once: steps under way were cut short; run `gitops apply` again "
                    "to resume (it picks them up where they stopped).",
                    err=True,
                )
                sys.exit(130)
        if failure:
            raise failure[0]
        final = outcome[0]
    except GitopsError as err:
        raise Failed(str(err)) from err
    finally:
        observer.stop()
    click.echo()
    if final.status == "converged":
        click.echo(f"converged: plan {final.id}, fleet revision {fleet.revision}")
        return
    if executor.stopping.is_set() and not final.reason:
        reason = "stopped by request; run `gitops apply` again to resume"
    else:
        reason = final.reason or final.status
    click.echo(f"{final.status}: {reason}", err=True)
    sys.exit(1)


def confirm_ignore_windows() -> None:
    """Ask the human at the terminal to confirm working outside the windows (never implied)."""
    if not sys.stdin.isatty():
        raise Failed(
            "--ignore-windows asks a human to confirm and this is not a terminal; for an "
            "unattended emergency, merge a change with spec.rollout.override instead"
        )
    click.confirm(
        "Ignore maintenance windows for this apply? Freezes still hold, and the plan records "
        "the override",
        abort=True,
    )
