"""One-shot checkouts of a fleet repository for commands given ``--repo URL[#ref]``.

Adapter layer: clones through gitpython (https, ssh, file:// or a local path), shallow and
single-branch where the ref is a branch or tag, and names the revision it checked out so that
plans can carry it. Failures become ``Stalled`` (a bad URL or ref) or ``Transient`` (network).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from gitops.errors import Stalled, Transient


@dataclass(frozen=True)
class Checkout:
    """A working tree of the fleet repository at ``revision`` (a full commit sha)."""

    path: Path
    revision: str
    url: str
    ref: str


def split_url(spec: str) -> tuple[str, str]:
    """``URL#ref`` into (URL, ref); the ref is "" when not given (the remote's default branch)."""
    url, _, ref = spec.partition("#")
    return url, ref


def clone(spec: str, into: Path | None = None) -> Checkout:
    """Clone ``URL[#ref]`` into ``into`` (a new temporary directory by default)."""
    url, ref = split_url(spec)
    target = into or Path(tempfile.mkdtemp(prefix="gitops-checkout-"))
    options: dict[str, Any] = {"depth": 1, "single_branch": True, "no_tags": True}
    try:
        if ref and not _looks_like_sha(ref):
            repo = git.Repo.clone_from(url, target, branch=ref, **options)
        else:
            repo = git.Repo.clone_from(url, target, **({} if ref else options))
            if ref:
                repo.git.checkout("--detach", ref)
        revision = repo.head.commit.hexsha
    except git.GitCommandError as err:
        message = (err.stderr or str(err)).strip().replace("\n", " ")
        transient = any(
            s in message for s in ("Could not resolve host", "timed out", "Connection refused")
        )
        error = Transient if transient else Stalled
        raise error(f"cannot clone {url}{'#' + ref if ref else ''}: {message}") from err
    return Checkout(path=target, revision=revision, url=url, ref=ref)


def _looks_like_sha(ref: str) -> bool:
    return 7 <= len(ref) <= 40 and all(c in "0123456789abcdef" for c in ref.lower())
