"""The bot's command-line flags, shared by ``gitops plan --pr`` and ``gitops run``.

Shell layer, wiring only: turns ``--forge``, ``--forge-url``, ``--forge-token-file`` and
``--repo-slug`` (and, for the controller, ``--pr-sweep-interval`` and ``--drift-persistence``)
into a connected ``Forge`` and a :class:`~gitops.bot.service.Bot`. The forge flags go together:
all of them (``--forge-url`` has a default on GitHub and GitLab) or none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from gitops.bot.driftpr import DEFAULT_PERSISTENCE
from gitops.bot.service import Bot
from gitops.fleet.quantities import parse_duration
from gitops.forge import KINDS, connect
from gitops.forge.base import Forge
from gitops.gitrepo.auth import Credentials
from gitops.gitrepo.branches import Branches
from gitops.gitrepo.mirror import Remote

F = TypeVar("F", bound=Callable[..., Any])


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


def forge_options(*, controller: bool) -> Callable[[F], F]:
    """Decorate a click command with the forge flags (and the controller's bot flags)."""
    options = [
        click.option("--forge", "forge_kind", type=click.Choice(KINDS), help="Forge platform."),
        click.option(
            "--forge-url",
            help="The forge's API (GitHub default https://api.github.com; GitLab "
            "https://gitlab.com; Gitea: required).",
        ),
        click.option(
            "--forge-token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="File holding the forge token"
            + (
                " (git itself uses --token-file or --ssh-key)."
                if controller
                else " (also used for git over https with --status-repo)."
            ),
        ),
        click.option("--repo-slug", metavar="OWNER/NAME", help="The repository on the forge."),
    ]
    if controller:
        options += [
            click.option(
                "--pr-sweep-interval",
                default="5m",
                show_default=True,
                callback=_duration,
                help="Plan every open pull request this often (with a forge).",
            ),
            click.option(
                "--drift-persistence",
                type=click.IntRange(min=1),
                default=DEFAULT_PERSISTENCE,
                show_default=True,
                help="Observations in a row a drift finding needs before a PR reports it "
                "(counted in memory: a restart counts again).",
            ),
        ]

    def apply(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def wanted(values: Mapping[str, Any]) -> bool:
    """Whether the forge flags were given; UsageError when only some of them were."""
    given = {
        "--forge": values.get("forge_kind"),
        "--forge-token-file": values.get("forge_token_file"),
        "--repo-slug": values.get("repo_slug"),
    }
    if not any(given.values()):
        if values.get("forge_url"):
            raise click.UsageError("--forge-url needs --forge, --forge-token-file and --repo-slug")
        return False
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise click.UsageError(f"the forge flags go together: missing {', '.join(missing)}")
    return True


def open_forge(values: Mapping[str, Any]) -> Forge:
    """The connected forge named by the flags (call :func:`wanted` first)."""
    return connect(
        str(values["forge_kind"]),
        values.get("forge_url"),
        str(values["forge_token_file"]),
        str(values["repo_slug"]),
    )


def git_credentials(values: Mapping[str, Any], fallback: Credentials | None = None) -> Credentials:
    """Credentials for git over https from the forge token (each platform's token user)."""
    if fallback is not None and (fallback.token_file or fallback.ssh_key_file):
        return fallback
    user = "oauth2" if values.get("forge_kind") == "gitlab" else "x-access-token"
    return Credentials(token_file=values.get("forge_token_file"), username=user)


def build_bot(
    values: Mapping[str, Any],
    remote: Remote,
    cache: Path,
    *,
    path: str,
    status_branch: str,
) -> Bot | None:
    """The controller's bot when the forge flags are given, else None."""
    if not wanted(values):
        return None
    forge = open_forge(values)
    return Bot(
        forge,
        Branches(cache, remote),
        branch=remote.branch,
        path=path,
        status_branch=status_branch,
        persistence=int(values.get("drift_persistence") or DEFAULT_PERSISTENCE),
        sweep_interval=float(values.get("pr_sweep_interval") or 300.0),
    )
