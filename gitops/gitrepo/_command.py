"""Running git through gitpython and translating its failures into the project's typed errors.

Adapter layer, private to ``gitops.gitrepo``. Every git command the package runs goes through
:func:`run` so that three things hold everywhere: a timeout kills a hung command, a failure
becomes ``Transient`` (the network: retry with backoff) or ``Stalled`` (a bad URL, ref or
credential: a human must act), and no secret ever reaches a message. It must never raise a
``GitCommandError`` past the package boundary.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import git

from gitops.errors import GitopsError, Stalled, Transient
from gitops.gitrepo.auth import redact

# Said by git, curl or ssh when the remote could not be reached or the transfer broke off.
_TRANSIENT = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known"
    r"|Connection refused|Connection reset|Connection timed out|timed out|Timeout:"
    r"|Network is unreachable|No route to host|unable to connect|Failed to connect"
    r"|early EOF|the remote end hung up unexpectedly|RPC failed|Empty reply from server"
    r"|returned error: (408|429|5\d\d)|Operation too slow|transfer closed|SSL_ERROR_SYSCALL"
    r"|gnutls_handshake",
    re.IGNORECASE,
)
# Said when retrying cannot help: wrong URL, ref, credentials or host key.
_STALLED = re.compile(
    r"Authentication failed|could not read Username|could not read Password"
    r"|returned error: (401|403|404)|Permission denied|Host key verification failed"
    r"|Repository not found|does not appear to be a git repository|not found"
    r"|couldn't find remote ref|unsupported protocol|Protocol .* is not supported"
    r"|invalid|not a valid|No such file or directory|access denied|not exported",
    re.IGNORECASE,
)


def run(
    repo: git.Repo | None,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    timeout: float | None = None,
    what: str,
    stdin: BinaryIO | None = None,
    cwd: Path | None = None,
) -> str:
    """Run ``git args`` (in ``repo`` or ``cwd``); return stdout; raise a typed error naming ``what``."""
    runner = repo.git if repo is not None else git.Git(str(cwd) if cwd else None)
    try:
        out = runner.execute(
            ["git", *args],
            env=dict(env or {}),
            kill_after_timeout=timeout,
            istream=stdin,
            strip_newline_in_stdout=True,
        )
    except git.GitCommandError as err:
        raise translate(err, what, secrets) from err
    return str(out)


# Said by git when a push lost a race: the remote ref moved since it was read (or a lease on
# its old value failed); and when a hook or a branch protection refused it.
_RACE = re.compile(
    r"stale info|non-fast-forward|fetch first|failed to update ref|cannot lock ref"
    r"|failed to lock|incorrect old value|already exists",
    re.IGNORECASE,
)
_DECLINED = re.compile(r"\[remote rejected\]|declined|protected", re.IGNORECASE)


class BranchMoved(Transient):
    """The branch moved between our look and our push (the lease failed); look again."""


def push(
    repo: git.Repo,
    url: str,
    refspecs: Sequence[str],
    *,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    timeout: float | None = None,
    what: str,
) -> None:
    """``git push``: ``BranchMoved`` when it lost a race, ``Stalled`` when it was refused."""
    try:
        run(
            repo,
            ["push", *options, "--", url, *refspecs],
            env=env,
            secrets=secrets,
            timeout=timeout,
            what=what,
        )
    except GitopsError as err:
        if _RACE.search(str(err)):
            raise BranchMoved(str(err)) from err
        if _DECLINED.search(str(err)):
            raise Stalled(str(err)) from err  # a hook or a branch protection said no
        raise


def fetch(
    repo: git.Repo,
    url: str,
    refspec: str,
    *,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    timeout: float | None = None,
    what: str,
) -> None:
    """``git fetch`` of one refspec (or commit) from ``url``: no tags, no FETCH_HEAD."""
    run(
        repo,
        ["fetch", "--no-tags", "--no-write-fetch-head", *options, "--", url, refspec],
        env=env,
        secrets=secrets,
        timeout=timeout,
        what=what,
    )


def translate(err: git.GitCommandError, what: str, secrets: Sequence[str] = ()) -> GitopsError:
    """A typed error for a failed git command, its message redacted and on one line."""
    stderr = err.stderr if isinstance(err.stderr, str) else str(err.stderr or "")
    detail = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    detail = re.sub(r"^stderr: '?|'$", "", detail).strip() or f"git exited with status {err.status}"
    message = redact(f"{what}: {detail}", secrets)
    if _TRANSIENT.search(detail) and not _STALLED_FIRST.search(detail):
        return Transient(message)
    if _STALLED.search(detail):
        return Stalled(message)
    # Unknown failures are retried with backoff: a human sees them in the status meanwhile.
    return Transient(message)


# Messages that look transient but are not ("fatal: Could not read from remote repository" also
# follows an authentication failure or a missing repository).
_STALLED_FIRST = re.compile(
    r"Permission denied|Host key verification failed|Repository not found"
    r"|does not appear to be a git repository|returned error: (401|403|404)|access denied"
    r"|not exported|Authentication failed",
    re.IGNORECASE,
)


def commit_tree(
    repo: git.Repo, tree: str, parent: str | None, message: str, *, name: str, email: str, what: str
) -> str:
    """Create a commit of ``tree`` on ``parent`` (none: a root commit) by ``name <email>``."""
    who = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    with tempfile.TemporaryFile() as text:
        text.write(message.encode())
        text.seek(0)
        parents = ["-p", parent] if parent else []
        return run(repo, ["commit-tree", tree, *parents, "-F", "-"], env=who, stdin=text, what=what)
