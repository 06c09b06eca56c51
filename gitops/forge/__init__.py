"""Forges: GitHub, GitLab, Gitea/Forgejo pull requests, comments and commit statuses.

Adapter layer (see ``base`` for the interface the bot speaks). ``connect`` builds the adapter
for a platform from the command line's ``--forge``, ``--forge-url``, ``--forge-token-file`` and
``--repo-slug``::

    with connect("github", None, "/run/secrets/token", "acme/fleet") as forge:
        forge.create_comment(12, plan_markdown)

``url`` is where the platform's REST API lives: for GitHub the REST root
(``https://api.github.com``, the default, or ``https://HOST/api/v3`` on Enterprise Server);
for GitLab and Gitea the instance (``https://gitlab.com``, the default for GitLab; Gitea has
none), to which ``/api/v4`` or ``/api/v1`` is added unless it is already there.
"""

from __future__ import annotations

import httpx

from gitops.forge import gitea, github, gitlab
from gitops.forge.base import (
    Comment,
    CommitState,
    CommitStatus,
    Forge,
    PullRequest,
    PullState,
)
from gitops.forge.errors import (
    AlreadyExists,
    BadConfig,
    Forbidden,
    ForgeError,
    Invalid,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from gitops.forge.gitea import Gitea
from gitops.forge.github import GitHub
from gitops.forge.gitlab import GitLab
from gitops.forge.http import LIMITERS, ApiClient, Limiters, RateLimiter, read_token

__all__ = [
    "KINDS",
    "LIMITERS",
    "AlreadyExists",
    "ApiClient",
    "BadConfig",
    "Comment",
    "CommitState",
    "CommitStatus",
    "Forbidden",
    "Forge",
    "ForgeError",
    "GitHub",
    "GitLab",
    "Gitea",
    "Invalid",
    "Limiters",
    "NotFound",
    "PullRequest",
    "PullState",
    "RateLimited",
    "RateLimiter",
    "Unauthorized",
    "Unavailable",
    "api_url",
    "connect",
]

KINDS = ("github", "gitlab", "gitea")


def api_url(kind: str, url: str | None) -> str:
    """The REST root for ``kind`` at ``url`` (the platform's default when ``url`` is None)."""
    if kind == "github":
        base = (url or github.DEFAULT_URL).rstrip("/")
        # The web address of github.com is a common slip; its API lives on another host.
        return github.DEFAULT_URL if httpx.URL(base).host == "github.com" else base
    if kind == "gitlab":
        return _with_prefix(url or gitlab.DEFAULT_URL, gitlab.API_PREFIX)
    if kind == "gitea":
        if not url:
            raise BadConfig(
                "A Gitea or Forgejo forge needs its URL (--forge-url); there is no default."
            )
        return _with_prefix(url, gitea.API_PREFIX)
    raise BadConfig(f"Unknown forge {kind!r}; expected one of {', '.join(KINDS)}.")


def _with_prefix(url: str, prefix: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith(prefix) else base + prefix


def connect(
    kind: str,
    url: str | None,
    token_file: str,
    slug: str,
    *,
    limiters: Limiters | None = None,
    min_write_interval: float | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> Forge:
    """The adapter for repository ``slug`` on forge ``kind``, authenticated by ``token_file``.

    One rate limiter per host comes from ``limiters`` (the process-wide ``LIMITERS`` by
    default). ``min_write_interval`` overrides the spacing of writes (GitHub 1 s, others 0).
    """
    base = api_url(kind, url)
    token = read_token(token_file)
    registry = limiters or LIMITERS
    if kind == "github":
        interval = github.MIN_WRITE_INTERVAL if min_write_interval is None else min_write_interval
        client = ApiClient(
            base,
            auth=("Authorization", f"Bearer {token}"),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": github.API_VERSION,
            },
            limiter=registry.get(base, min_write_interval=interval),
            timeout=timeout,
            transport=transport,
        )
        return _adapter(GitHub, client, slug)
    if kind == "gitlab":
        interval = gitlab.MIN_WRITE_INTERVAL if min_write_interval is None else min_write_interval
        client = ApiClient(
            base,
            auth=("PRIVATE-TOKEN", token),
            limiter=registry.get(base, min_write_interval=interval),
            timeout=timeout,
            transport=transport,
        )
        return _adapter(GitLab, client, slug)
    interval = gitea.MIN_WRITE_INTERVAL if min_write_interval is None else min_write_interval
    client = ApiClient(
        base,
        auth=("Authorization", f"token {token}"),
        limiter=registry.get(base, min_write_interval=interval),
        page_param="limit",
        page_size=gitea.PAGE_SIZE,
        timeout=timeout,
        transport=transport,
    )
    return _adapter(Gitea, client, slug)


def _adapter(cls: type[GitHub | GitLab | Gitea], client: ApiClient, slug: str) -> Forge:
    try:
        return cls(client, slug)
    except BadConfig:
        client.close()
        raise
