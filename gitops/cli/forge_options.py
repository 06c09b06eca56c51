"""The forge flags, declared once for ``gitops plan --pr`` and ``gitops run``.

Entry layer. ``forge_options`` adds ``--forge``, ``--forge-url``, ``--forge-token-file`` and
``--repo-slug`` (and, for the controller, ``--pr-sweep-interval`` and ``--drift-persistence``)
to a command; ``forge_flags`` checks that they were given together and turns them into the
bot's typed :class:`~gitops.bot.options.ForgeFlags`. The forge adapters are imported only
when a forge is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gitops.cli.durations import duration

if TYPE_CHECKING:
    from gitops.bot.options import ForgeFlags

F = TypeVar("F", bound=Callable[..., Any])

# gitops.forge.KINDS, spelled out so that declaring the flags loads no HTTP client (a test
# keeps the two equal).
KINDS = ("github", "gitlab", "gitea")
# gitops.bot.driftpr.DEFAULT_PERSISTENCE, for the same reason (a test keeps the two equal).
DEFAULT_PERSISTENCE = 2
FLAGS = ("forge_kind", "forge_url", "forge_token_file", "repo_slug")
CONTROLLER_FLAGS = ("pr_sweep_interval", "drift_persistence")


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
                callback=duration,
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


def forge_flags(values: Mapping[str, Any]) -> ForgeFlags | None:
    """The typed forge settings when the flags were given (all together), else None."""
    if not wanted(values):
        return None
    from gitops.bot.options import ForgeFlags

    return ForgeFlags(
        kind=str(values["forge_kind"]),
        url=values.get("forge_url"),
        token_file=Path(values["forge_token_file"]),
        slug=str(values["repo_slug"]),
        sweep_interval=float(values.get("pr_sweep_interval") or 300.0),
        persistence=int(values.get("drift_persistence") or DEFAULT_PERSISTENCE),
    )
