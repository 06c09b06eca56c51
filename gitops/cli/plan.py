"""``gitops plan``: the deterministic plan for the live fleet, and ``--pr N`` to publish it.

Entry layer: loads the fleet, observes the clusters (``gitops.cli.source``), asks the planner
and prints the plan in the ``-o`` format; with ``--pr`` the bot's ``PlanPublisher`` posts it on
the pull request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitops.cli.errors import Failed
from gitops.cli.forge_options import forge_flags, forge_options
from gitops.cli.output import render
from gitops.cli.source import load_fleet, observe, source_options
from gitops.errors import GitopsError
from gitops.fleet import Fleet, FleetError, load

if TYPE_CHECKING:
    from gitops.bot.options import ForgeFlags
    from gitops.inventory import Inventory
    from gitops.plan import Plan, RolloutState


@click.command()
@source_options
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

    flags = forge_flags(forge)
    if pr_number is not None or flags is not None:
        _plan_pull_request(
            pr_number,
            flags,
            fleet_path,
            repo,
            status_repo,
            status_branch,
            lambda fleet: observe(fleet, kubeconfig, context, only, sync_timeout, request_timeout),
            only,
            output,
            time_scale,
        )
        return
    fleet = load_fleet(fleet_path, repo).scaled(time_scale)
    inventory, state = observe(
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
    click.echo(render(output, result))
    sys.exit(_plan_status(result))


def _plan_pull_request(
    number: int | None,
    flags: ForgeFlags | None,
    fleet_path: Path | None,
    repo: str | None,
    status_repo: str | None,
    status_branch: str,
    observe: Callable[[Fleet], tuple[Inventory, RolloutState]],
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
    from gitops.cli.validate import report_problems
    from gitops.gitrepo.branches import Branches
    from gitops.gitrepo.checkout import split_url
    from gitops.gitrepo.mirror import Remote

    if number is None:
        raise click.UsageError("the forge flags are for --pr N (publishing a plan on a PR)")
    if flags is None:
        raise click.UsageError("--pr needs --forge, --forge-token-file and --repo-slug")
    if repo is not None and fleet_path is not None:
        raise click.UsageError("give at most one of --fleet PATH or --repo URL[#REF]")
    try:
        forge = open_forge(flags)
        pr = forge.pull_request(number)
        root = fleet_path or Path(".")
        if repo is not None:
            from gitops.gitrepo.checkout import clone

            root = clone(repo).path
        url = status_repo or (split_url(repo)[0] if repo else "")
        branches = None
        if url:
            remote = Remote(url, branch=pr.base_ref, credentials=git_credentials(flags))
            cache = Path(tempfile.mkdtemp(prefix="gitops-pr-"))
            branches = Branches(cache, remote)
        publisher = PlanPublisher(forge, branches=branches, status_branch=status_branch)
        try:
            fleet = load(root).with_revision(pr.head_sha).scaled(time_scale)
        except FleetError as err:
            published = publisher.publish(pr, err, clusters=cluster_names(root))
            report_problems(err, "text")
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
        raise Failed(str(err)) from err
    click.echo(render(output, result))
    click.echo(f"pull request #{number}: {_published(published.action)}", err=True)
    sys.exit(_plan_status(result))


def _plan_status(result: Plan) -> int:
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
