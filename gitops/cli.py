"""The ``gitops`` command line: the entry layer, which parses flags and calls the layers below.

Every command catches the project's own errors and prints them as messages; a traceback
reaching a user is a bug. Exit codes are documented per command in ``--help`` and the README.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gitops import __version__
from gitops.bot.options import forge_options, wanted
from gitops.errors import GitopsError
from gitops.fleet import Fleet, FleetError, load
from gitops.fleet.schema import json_schema


class _Group(click.Group):
    """Usage errors exit 1 like every other error: 2 means "drift or changes" to bots."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            err.exit_code = 1
            raise


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="gitops")
def main() -> None:
    """Reconcile fleets of Kubernetes clusters on immutable node images from a git repository.

    A fleet repository declares clusters, node pools and the image each pool runs. gitops
    validates it, compares it with the live clusters, plans immutable replacements in waves
    and carries them out.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # urllib3 warns about every retried connection and every connection its pool drops; the
    # adapters turn the failures that matter into one message each, so its own are noise.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


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

    Exit status: 0 when the repository is valid, 1 when it is not (with -o json, the problems
    as `gitops validate --format json` prints them).
    """
    try:
        fleet = load(path)
    except FleetError as err:
        _report_problems(err, output)
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


# -- observing the live fleet: drift and plan -----------------------------------------------------

_SOURCE_OPTIONS = [
    click.option(
        "--fleet",
        "fleet_path",
        type=click.Path(path_type=Path, file_okay=False),
        help="Fleet repository directory.",
    ),
    click.option(
        "--repo",
        metavar="URL[#REF]",
        help="Fleet repository to clone (https, ssh, file:// or a path), at REF.",
    ),
    click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        help="Kubeconfig of the management cluster (default: in-cluster, then ~/.kube/config).",
    ),
    click.option("--context", help="Kubeconfig context to use."),
    click.option(
        "--cluster", "only", multiple=True, metavar="NAME", help="Only this cluster (repeatable)."
    ),
    click.option(
        "-o",
        "--output",
        type=click.Choice(["text", "markdown", "json"]),
        default="text",
        show_default=True,
        help="text for terminals, markdown for PR comments, json for bots.",
    ),
    click.option(
        "--sync-timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for the first listing of each cluster.",
    ),
    click.option(
        "--request-timeout",
        type=click.FloatRange(min=0.0, min_open=True),
        default=10.0,
        show_default=True,
        help="Seconds the management cluster may take to answer at all before the command "
        "fails, naming its URL.",
    ),
    click.option(
        "--time-scale",
        type=click.FloatRange(min=0.0, min_open=True),
        default=1.0,
        show_default=True,
        help="Multiply every policy duration (soak, timeouts) by X, as apply and run do.",
    ),
]


def _source_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed(_SOURCE_OPTIONS):
        fn = option(fn)
    return fn


class _Failed(click.ClickException):
    """A failure the user must see as one clear message, with exit status 1."""

    exit_code = 1

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"error: {self.message}", err=True)


def _connect(kubeconfig: str | None, context: str | None, request_timeout: float):  # type: ignore[no-untyped-def]
    """The management cluster, checked to answer: one clear line when it does not."""
    from gitops.kube.client import connect, probe

    try:
        management = connect(kubeconfig, context)
        probe(management, request_timeout)
    except GitopsError as err:
        raise _Failed(str(err)) from err
    return management


def _load_fleet(fleet_path: Path | None, repo: str | None) -> Fleet:
    from gitops.fleet.loader import content_digest

    if (fleet_path is None) == (repo is None):
        raise click.UsageError("give exactly one of --fleet PATH or --repo URL[#REF]")
    try:
        if repo is not None:
            from gitops.gitrepo.checkout import clone

            checkout = clone(repo)
            return load(checkout.path).with_revision(checkout.revision)
        assert fleet_path is not None
        return load(fleet_path).with_revision(content_digest(fleet_path))
    except FleetError as err:
        raise _Failed(
            "the fleet repository is invalid:\n" + "\n".join(map(str, err.problems))
        ) from err
    except GitopsError as err:
        raise _Failed(str(err)) from err


def _observe(
    fleet: Fleet,
    kubeconfig: str | None,
    context: str | None,
    only: tuple[str, ...],
    sync_timeout: float,
    request_timeout: float,
    state_namespace: str | None = None,
):  # type: ignore[no-untyped-def]
    """The observed inventory (and, with ``state_namespace``, the rollout's durable record)."""
    from gitops.kube.observe import Observer
    from gitops.plan import RolloutState

    unknown = sorted(set(only) - {c.name for c in fleet.clusters})
    if unknown:
        raise click.UsageError(f"--cluster names no cluster of the fleet: {', '.join(unknown)}")
    management = _connect(kubeconfig, context, request_timeout)
    observer = Observer(management)
    clusters = [c for c in fleet.clusters if not only or c.name in only]
    observer.track((c.name, c.namespace) for c in clusters)
    observer.wait_synced(sync_timeout)
    if not observer.machines.synced:
        # Without the management cluster nothing can be observed: that is an error (exit 1),
        # not every cluster Unknown (exit 2, which bots read as "drift or changes").
        observer.stop()
        reason = observer.machines.last_error or f"no answer within {sync_timeout:g}s"
        raise _Failed(f"cannot observe the management cluster: {reason}")
    state = RolloutState()
    try:
        inventory = observer.inventory()
        if state_namespace is not None:
            from gitops.rollout.store import StateStore

            try:
                state = StateStore(management, state_namespace).load()
            except GitopsError as err:
                logging.getLogger(__name__).warning(
                    "Cannot read the rollout record (%s); planning as for a fresh rollout.", err
                )
    finally:
        observer.stop()
    return inventory, state


@main.command()
@_source_options
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
    from gitops.plan import jsonout, markdown, text

    fleet = _load_fleet(fleet_path, repo).scaled(time_scale)
    inventory, _ = _observe(fleet, kubeconfig, context, only, sync_timeout, request_timeout)
    findings = tuple(
        f for f in drift_finder.find(fleet, inventory) if not only or f.cluster in only
    )
    if output == "json":
        click.echo(jsonout.render_findings(findings))
    elif output == "markdown":
        click.echo(markdown.render_findings(findings))
    else:
        click.echo(text.render_findings(findings, color=sys.stdout.isatty()), nl=False)
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


@main.command()
@_source_options
@click.option(
    "--override-drift-limit",
    is_flag=True,
    help="Plan remediation even when more than maxDriftedFraction of the fleet drifted.",
)
@click.option(
    "--state-namespace",
    default="gitops-system",
    show_default=True,
    help="Namespace of the rollout's durable record (a halt shows in the plan).",
)
@click.option(
    "--pr",
    "pr_number",
    type=click.IntRange(min=1),
    help="Publish the plan on this pull request (merge request iid): one sticky comment and "
    "a gitops/plan/<cluster> status per cluster on its head. --fleet defaults to '.'.",
)
@click.option(
    "--status-repo",
    metavar="URL",
    help="With --pr: where the full plan goes when the comment must be cut (plans/pr-N.md on "
    "--status-branch); default: the --repo URL.",
)
@click.option("--status-branch", default="gitops/status", show_default=True)
@forge_options(controller=False)
def plan(
    fleet_path: Path | None,
    repo: str | None,
    kubeconfig: str | None,
    context: str | None,
    only: tuple[str, ...],
    output: str,
    sync_timeout: float,
    request_timeout: float,
    time_scale: float,
    override_drift_limit: bool,
    state_namespace: str,
    pr_number: int | None,
    status_repo: str | None,
    status_branch: str,
    **forge: Any,
) -> None:
    """Show the deterministic plan that would bring the live fleet to the repository's state.

    Order: fleet wave, then clusters, pools and batches, every action with its reason and the
    budget that allows it. The plan id hashes the fleet revision, the observed inventory and
    the planner version: the same inputs always give the same plan.

    With --pr N and the forge flags (for a CI job on the pull request's head), the plan of the
    head is also published on the pull request; an invalid head gets its problems as the
    comment and failing statuses.

    --time-scale X plans with every policy duration multiplied by X, as `gitops apply
    --time-scale X` acts; the rollout record says which scale its rollout runs at.

    Exit status: 0 when the fleet (or the --cluster selection) is converged, 2 when it is not
    (actions or waits remain), 1 on error. Findings no action remedies (an UnmanagedNode,
    drift under `remediate: report`) are shown but do not make 2: that is `gitops drift`'s.
    """
    import time

    from gitops import plan as planner
    from gitops.plan import jsonout, markdown, text

    if pr_number is not None or wanted(forge):
        _plan_pull_request(
            pr_number,
            forge,
            fleet_path,
            repo,
            status_repo,
            status_branch,
            lambda fleet: _observe(fleet, kubeconfig, context, only, sync_timeout, request_timeout),
            only,
            output,
            time_scale,
        )
        return
    fleet = _load_fleet(fleet_path, repo).scaled(time_scale)
    inventory, state = _observe(
        fleet,
        kubeconfig,
        context,
        only,
        sync_timeout,
        request_timeout,
        state_namespace=state_namespace,
    )
    if state.revision != fleet.revision:
        state = planner.RolloutState(revision=fleet.revision)  # what apply would start from
    elif state.time_scale != time_scale:
        # The record's times belong to a rollout whose soaks and timeouts were scaled
        # otherwise: say so rather than show a soak the rollout already finished.
        click.echo(
            f"note: the rollout recorded in {state_namespace}/gitops-rollout-state runs at "
            f"--time-scale {state.time_scale:g}, this plan at --time-scale {time_scale:g}: "
            f"soaks and timeouts differ; pass --time-scale {state.time_scale:g} to see the "
            "plan that rollout follows.",
            err=True,
        )
    result = planner.make(
        fleet,
        inventory,
        state,
        time.time(),
        override_drift_limit=override_drift_limit,
    )
    if only:
        result = planner.only_clusters(result, only)
    if output == "json":
        click.echo(jsonout.render(result))
    elif output == "markdown":
        click.echo(markdown.render(result))
    else:
        click.echo(text.render(result, color=sys.stdout.isatty()))
    sys.exit(_plan_status(result))


def _plan_pull_request(
    number: int | None,
    forge_flags: dict[str, Any],
    fleet_path: Path | None,
    repo: str | None,
    status_repo: str | None,
    status_branch: str,
    observe: Callable[[Fleet], Any],
    only: tuple[str, ...],
    output: str,
    time_scale: float = 1.0,
) -> None:
    """``gitops plan --pr N``: plan the head in the working directory and publish it."""
    import tempfile
    import time

    from gitops import plan as planner
    from gitops.bot.options import git_credentials, open_forge
    from gitops.bot.prplan import PlanPublisher, cluster_names
    from gitops.gitrepo.branches import Branches
    from gitops.gitrepo.checkout import split_url
    from gitops.gitrepo.mirror import Remote
    from gitops.plan import jsonout, markdown, text

    if number is None:
        raise click.UsageError("the forge flags are for --pr N (publishing a plan on a PR)")
    if not wanted(forge_flags):
        raise click.UsageError("--pr needs --forge, --forge-token-file and --repo-slug")
    if repo is not None and fleet_path is not None:
        raise click.UsageError("give at most one of --fleet PATH or --repo URL[#REF]")
    try:
        forge = open_forge(forge_flags)
        pr = forge.pull_request(number)
        root = fleet_path or Path(".")
        if repo is not None:
            from gitops.gitrepo.checkout import clone

            root = clone(repo).path
        url = status_repo or (split_url(repo)[0] if repo else "")
        branches = None
        if url:
            remote = Remote(url, branch=pr.base_ref, credentials=git_credentials(forge_flags))
            cache = Path(tempfile.mkdtemp(prefix="gitops-pr-"))
            branches = Branches(cache, remote)
        publisher = PlanPublisher(forge, branches=branches, status_branch=status_branch)
        try:
            fleet = load(root).with_revision(pr.head_sha).scaled(time_scale)
        except FleetError as err:
            published = publisher.publish(pr, err, clusters=cluster_names(root))
            _report_problems(err, "text")
            click.echo(f"pull request #{number}: {_published(published.action)}", err=True)
            sys.exit(1)
        inventory, _ = observe(fleet)
        result = planner.make(
            fleet, inventory, planner.RolloutState(revision=pr.head_sha), time.time()
        )
        if only:
            result = planner.only_clusters(result, only)
        published = publisher.publish(pr, result)
    except GitopsError as err:
        raise _Failed(str(err)) from err
    if output == "json":
        click.echo(jsonout.render(result))
    elif output == "markdown":
        click.echo(markdown.render(result))
    else:
        click.echo(text.render(result, color=sys.stdout.isatty()))
    click.echo(f"pull request #{number}: {_published(published.action)}", err=True)
    sys.exit(_plan_status(result))


def _plan_status(result: Any) -> int:
    """``plan``'s exit status: 2 while the fleet is not converged (actions or waits), else 0.

    Findings no action remedies (an UnmanagedNode, drift under ``remediate: report``) are shown
    but leave the plan converged: they are ``gitops drift``'s exit 2, not ``plan``'s, so a bot
    reading ``plan`` sees 0 once there is nothing left to do.
    """
    return 0 if result.status == "converged" else 2


def _published(action: str) -> str:
    return {
        "create": "plan comment posted",
        "update": "plan comment updated",
        "none": "plan comment already current; nothing sent",
    }[action]


@main.command()
@click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Fleet repository directory.",
)
@click.option("--repo", metavar="URL[#REF]", help="Fleet repository to clone, at REF.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the management cluster (default: in-cluster, then ~/.kube/config).",
)
@click.option("--context", help="Kubeconfig context to use.")
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
    "--sync-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the first listing of each cluster.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the management cluster may take to answer at all before apply fails.",
)
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

    from rich.console import Console
    from rich.live import Live

    from gitops.kube.observe import Observer
    from gitops.plan import Plan, text
    from gitops.providers.clusterapi import ClusterAPIProvider
    from gitops.rollout.executor import Executor
    from gitops.rollout.progress import Progress
    from gitops.rollout.store import StateStore
    from gitops.signals import stop_on_signals

    fleet = _load_fleet(fleet_path, repo)
    console = Console()
    management = _connect(kubeconfig, context, request_timeout)
    observer = Observer(management)
    observer.track((c.name, c.namespace) for c in fleet.clusters)
    observer.wait_synced(sync_timeout)
    store = StateStore(management, state_namespace, time_scale=time_scale)
    progress = Progress()
    # On a terminal the live display shows the latest events; piped or in CI there is no
    # display to refresh, so every event is one plain line, written as it happens, and the
    # log keeps the whole history.
    on_event = progress.event if console.is_terminal else _EventLines(fleet, progress)
    executor = Executor(
        fleet,
        observer,
        ClusterAPIProvider(management),
        store,
        time_scale=time_scale,
        on_event=on_event,
        override_drift_limit=override_drift_limit,
    )
    try:
        first = executor.preview(resume=resume)
        click.echo(text.render(first, color=console.is_terminal))
        if first.status == "converged":
            click.echo("Nothing to do: the fleet is converged.")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise _Failed("not a terminal: pass --yes to apply without confirmation")
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
        raise _Failed(str(err)) from err
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


class _EventLines:
    """``apply``'s events as plain lines on stdout, for logs: time, wave, cluster, pool, node."""

    def __init__(self, fleet: Fleet, progress: Any) -> None:
        self.progress = progress
        self.waves = {
            cluster: members.wave.name for members in fleet.waves for cluster in members.clusters
        }
        self.wave_names = {members.wave.name for members in fleet.waves}

    def __call__(self, event: Any) -> None:
        from datetime import UTC, datetime

        self.progress.event(event)
        stamp = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A wave's own events (started, converged, soaked) name the wave as their subject.
        wave_event = not event.cluster and event.subject in self.wave_names
        fields = [
            ("wave", event.subject if wave_event else self.waves.get(event.cluster, "")),
            ("cluster", event.cluster),
            ("pool", event.pool),
            ("node", "" if wave_event else event.subject),
        ]
        where = " ".join(f"{key}={value}" for key, value in fields if value)
        click.echo(f"{stamp} {event.level:<7} {where + ': ' if where else ''}{event.message}")


def _register() -> None:
    from gitops.controller.command import run
    from gitops.demo import demo
    from gitops.sim.command import sim

    main.add_command(sim)
    main.add_command(run)
    main.add_command(demo)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
