"""The bot's settings, shared by ``gitops plan --pr`` and ``gitops run``.

Shell layer, wiring only: turns the typed forge settings (``--forge``, ``--forge-url``,
``--forge-token-file``, ``--repo-slug`` and, for the controller, ``--pr-sweep-interval`` and
``--drift-persistence``, parsed by ``gitops.cli.forge_options``) into a connected ``Forge`` and
a :class:`~gitops.bot.service.Bot`. It parses no flags and prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops.bot.driftpr import DEFAULT_PERSISTENCE
from gitops.bot.service import Bot
from gitops.forge import connect
from gitops.forge.base import Forge
from gitops.gitrepo.auth import Credentials
from gitops.gitrepo.branches import Branches
from gitops.gitrepo.mirror import Remote


@dataclass(frozen=True)
class ForgeFlags:
    """Where the bot talks: a platform, its API, a token file and the repository on it."""

    kind: str
    url: str | None
    token_file: Path
    slug: str
    sweep_interval: float = 300.0
    persistence: int = DEFAULT_PERSISTENCE


def open_forge(flags: ForgeFlags) -> Forge:
    """The connected forge the settings name."""
    return connect(flags.kind, flags.url, str(flags.token_file), flags.slug)


def git_credentials(flags: ForgeFlags, fallback: Credentials | None = None) -> Credentials:
    """Credentials for git over https from the forge token (each platform's token user)."""
    if fallback is not None and (fallback.token_file or fallback.ssh_key_file):
        return fallback
    user = "oauth2" if flags.kind == "gitlab" else "x-access-token"
    return Credentials(token_file=flags.token_file, username=user)


def build_bot(
    flags: ForgeFlags | None,
    remote: Remote,
    cache: Path,
    *,
    path: str,
    status_branch: str,
) -> Bot | None:
    """The controller's bot when a forge is configured, else None."""
    if flags is None:
        return None
    return Bot(
        open_forge(flags),
        Branches(cache, remote),
        branch=remote.branch,
        path=path,
        status_branch=status_branch,
        persistence=flags.persistence,
        sweep_interval=flags.sweep_interval,
    )
