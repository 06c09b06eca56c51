"""Where ``drift``, ``plan`` and ``apply`` get the fleet and the live clusters from.

Entry layer. The shared flags (``--fleet``/``--repo``, the kubeconfig, ``--cluster``, ``-o``,
the timeouts and ``--time-scale``), the fleet loaded from a directory or a clone, and the
observed inventory read through the watch caches. Adapters are imported inside the functions,
so declaring these commands loads none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gitops.cli.errors import Failed
from gitops.cli.output import output_option
from gitops.errors import GitopsError
from gitops.fleet import Fleet, FleetError, load

if TYPE_CHECKING:
    from gitops.inventory import Inventory
    from gitops.kube.client import Kube
    from gitops.plan import RolloutState

F = TypeVar("F", bound=Callable[..., Any])

# The flags apply shares with drift and plan, declared once.
fleet_option = click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Fleet repository directory.",
)
repo_option = click.option(
    "--repo",
    metavar="URL[#REF]",
    help="Fleet repository to clone (https, ssh, file:// or a path), at REF.",
)
kubeconfig_option = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the management cluster (default: in-cluster, then ~/.kube/config).",
)
context_option = click.option("--context", help="Kubeconfig context to use.")
sync_timeout_option = click.option(
    "--sync-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the first listing of each cluster.",
)
request_timeout_option = click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the management cluster may take to answer at all before the command "
    "fails, naming its URL.",
)

_SOURCE_OPTIONS = [
    fleet_option,
    repo_option,
    kubeconfig_option,
    context_option,
    click.option(
        "--cluster", "only", multiple=True, metavar="NAME", help="Only this cluster (repeatable)."
    ),
    output_option,
    sync_timeout_option,
    request_timeout_option,
    click.option(
        "--time-scale",
        type=click.FloatRange(min=0.0, min_open=True),
        default=1.0,
        show_default=True,
        help="Multiply every policy duration (soak, timeouts) by X, as apply and run do.",
    ),
]


def source_options(fn: F) -> F:
    """Decorate ``drift`` and ``plan`` with the flags that say what to observe and how."""
    for option in reversed(_SOURCE_OPTIONS):
        fn = option(fn)
    return fn


def connect(kubeconfig: str | None, context: str | None, request_timeout: float) -> Kube:
    """The management cluster, checked to answer: one clear line when it does not."""
    from gitops.kube.client import connect, probe

    try:
        management = connect(kubeconfig, context)
        probe(management, request_timeout)
    except GitopsError as err:
        raise Failed(str(err)) from err
    return management


def load_fleet(fleet_path: Path | None, repo: str | None) -> Fleet:
    """The fleet of ``--fleet PATH`` or ``--repo URL[#REF]`` (exactly one), with its revision."""
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
        raise Failed(
            "the fleet repository is invalid:\n" + "\n".join(map(str, err.problems))
        ) from err
    except GitopsError as err:
        raise Failed(str(err)) from err


def observe(
    fleet: Fleet,
    kubeconfig: str | None,
    context: str | None,
    only: tuple[str, ...],
    sync_timeout: float,
    request_timeout: float,
    state_namespace: str | None = None,
) -> tuple[Inventory, RolloutState]:
    """The observed inventory (and, with ``state_namespace``, the rollout's durable record)."""
    from gitops.kube.observe import Observer
    from gitops.plan import RolloutState

    unknown = sorted(set(only) - {c.name for c in fleet.clusters})
    if unknown:
        raise click.UsageError(f"--cluster names no cluster of the fleet: {', '.join(unknown)}")
    management = connect(kubeconfig, context, request_timeout)
    observer = Observer(management)
    clusters = [c for c in fleet.clusters if not only or c.name in only]
    observer.track((c.name, c.namespace) for c in clusters)
    observer.wait_synced(sync_timeout)
    if not observer.machines.synced:
        # Without the management cluster nothing can be observed: that is an error (exit 1),
        # not every cluster Unknown (exit 2, which bots read as "drift or changes").
        observer.stop()
        reason = observer.machines.last_error or f"no answer within {sync_timeout:g}s"
        raise Failed(f"cannot observe the management cluster: {reason}")
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
