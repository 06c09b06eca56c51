"""The status-branch writer: the report phase's way of writing status back to git.

Adapter layer, report phase. The report layer decides *what* the status files say; this module
makes a set of files (path → content) the whole content of the status branch (default
``gitops/status``), as one commit, only when that content differs from the branch's tip:

- the branch is created as an orphan (no shared history with the fleet) when missing;
- the commit carries the caller's message and the trailers ``Fleet-Revision:`` and
  ``Plan-Id:``, with a configurable committer identity, so the controller (and people) can tell
  its commits apart (:func:`is_own_commit`);
- the push is a plain fast-forward of that one ref. When it is rejected because someone else
  moved the branch between our look and our push, the writer looks again, re-applies its file
  set on the new tip (the branch holds generated files only, so this *is* the rebase), and
  retries, a bounded number of times with jittered exponential backoff (tenacity).

:class:`CoalescingWriter` keeps at most one commit per interval: it holds the latest desired
content and writes it when the interval allows (clock injected, for tests in virtual time).

It works in its own bare repository (``<cache>/status.git``), never in the mirror of the
watched branch. It must never write to the watched branch (it refuses to be configured with it
and pushes one explicit refspec), never force-push, never commit unchanged content (no
heartbeat commits), and never put a credential on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Protocol

import git
from gitdb.base import IStream  # type: ignore[import-untyped]
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from gitops.errors import Stalled, Transient
from gitops.gitrepo import _command
from gitops.gitrepo.auth import check_url, environment
from gitops.gitrepo.mirror import Remote
from gitops.gitrepo.snapshots import CommitInfo

log = logging.getLogger("gitops.gitrepo")

DEFAULT_BRANCH = "gitops/status"
FLEET_REVISION = "Fleet-Revision"
PLAN_ID = "Plan-Id"
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# A push lost a race: the ref moved between our look at it and our update of it.


@dataclass(frozen=True)
class Identity:
    """Who the status commits are by (author and committer)."""

    name: str = "gitops"
    email: str = "gitops@localhost"


DEFAULT_IDENTITY = Identity()


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one write: a new commit, or none because the content was already there."""

    committed: bool
    revision: str | None  # the branch's tip afterwards (None: no branch and nothing to write)
    changed_paths: tuple[str, ...]
    attempts: int
    created_branch: bool = False


class _Rejected(Exception):
    """The push lost a race with another writer; look again and retry."""


class StatusWriter:
    """Writes the status branch of ``remote`` (whose watched branch it never touches)."""

    def __init__(
        self,
        cache: Path,
        remote: Remote,
        *,
        branch: str = DEFAULT_BRANCH,
        identity: Identity = DEFAULT_IDENTITY,
        attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_url(remote.url)
        if branch in (remote.branch, remote.ref) or f"refs/heads/{branch}" == remote.ref:
            raise Stalled(
                f"the status branch {branch} is the watched branch; status must go to a branch "
                "of its own (the default is gitops/status)"
            )
        if not _valid_branch(branch):
            raise Stalled(f"{branch!r} is not a valid branch name for the status branch")
        self.remote = remote
        self.branch = branch
        self.identity = identity
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self._git_dir = cache / "status.git"
        self._repo: git.Repo | None = None

    @property
    def ref(self) -> str:
        """The full name of the status branch."""
        return f"refs/heads/{self.branch}"

    def write(
        self,
        files: Mapping[str, bytes | str],
        message: str,
        *,
        fleet_revision: str,
        plan_id: str,
    ) -> WriteResult:
        """Make ``files`` the branch's whole content: one commit if it changed, none otherwise."""
        blobs = {_check_path(p): c.encode() if isinstance(c, str) else c for p, c in files.items()}
        text = compose_message(message, fleet_revision=fleet_revision, plan_id=plan_id)
        attempt = 0

        def once() -> WriteResult:
            nonlocal attempt
            attempt += 1
            return self._attempt(blobs, text, attempt)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception_type(_Rejected),
            sleep=self.sleep,
        )
        with self._lock():
            try:
                return retrying(once)
            except RetryError as err:
                raise Transient(
                    f"cannot push the status branch {self.branch} to {self.remote.display}: "
                    f"another writer moved it {self.attempts} times in a row ({err.last_attempt.exception()})"
                ) from err

    def read(self) -> dict[str, bytes]:
        """The status branch's files on the remote now (empty when the branch does not exist)."""
        with self._lock():
            tip = self._look()
            if tip is None:
                return {}
            repo = self._open()
            names = repo.git.ls_tree("-r", "-z", "--name-only", tip).split("\0")
            return {
                n: repo.git.show(
                    f"{tip}:{n}", stdout_as_string=False, strip_newline_in_stdout=False
                )
                for n in names
                if n
            }

    def tip(self) -> CommitInfo | None:
        """The status branch's tip commit on the remote, or None when it does not exist."""
        with self._lock():
            sha = self._look()
            return None if sha is None else CommitInfo.of(self._open().commit(sha))

    # -- internals -----------------------------------------------------------------------------

    def _attempt(self, blobs: Mapping[str, bytes], message: str, attempt: int) -> WriteResult:
        repo = self._open()
        tip = self._look()
        tree = self._tree(repo, blobs)
        base = str(repo.git.rev_parse(f"{tip}^{{tree}}")) if tip else _EMPTY_TREE
        if tree == base and tip is not None:
            log.debug("The status branch %s already holds this content; no commit.", self.branch)
            return WriteResult(False, tip, (), attempt)
        if tree == base:  # no branch and nothing to write
            return WriteResult(False, None, (), attempt)
        changed = tuple(
            p for p in repo.git.diff_tree("-r", "-z", "--name-only", base, tree).split("\0") if p
        )
        commit = self._commit(repo, tree, tip, message)
        self._push(commit, attempt)
        repo.git.update_ref(self._tracking, commit)
        log.info(
            "Committed %s to the status branch %s of %s (%d file(s) changed).",
            commit,
            self.branch,
            self.remote.display,
            len(changed),
        )
        return WriteResult(True, commit, changed, attempt, created_branch=tip is None)

    @property
    def _tracking(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    def _look(self) -> str | None:
        """The branch's tip on the remote, fetched when not yet here; None when missing."""
        env, secrets = environment(self.remote.url, self.remote.credentials)
        out = _command.run(
            None,
            ["ls-remote", "--", self.remote.url, self.ref],
            env=env,
            secrets=secrets,
            timeout=self.remote.timeout,
            what=f"cannot list {self.ref} at {self.remote.display}",
            cwd=self.cache,
        )
        tip = next(
            (s for s, _, n in (x.partition("\t") for x in out.splitlines()) if n == self.ref), None
        )
        if tip is None:
            return None
        repo = self._open()
        try:
            repo.git.cat_file("-e", f"{tip}^{{commit}}")
        except git.GitCommandError:
            _command.fetch(
                repo,
                self.remote.url,
                f"+{self.ref}:{self._tracking}",
                options=["--depth=1"],
                env=env,
                secrets=secrets,
                timeout=self.remote.timeout,
                what=f"cannot fetch {self.ref} from {self.remote.display}",
            )
            # The branch may have moved between the listing and the fetch: the tip is what
            # arrived, a newer state of the same branch, never the one we could not fetch.
            tip = str(repo.git.rev_parse(self._tracking))
        return tip

    def _tree(self, repo: git.Repo, blobs: Mapping[str, bytes]) -> str:
        lines = []
        for path in sorted(blobs):
            data = blobs[path]
            sha = repo.odb.store(IStream("blob", len(data), BytesIO(data))).hexsha.decode()
            lines.append(f"100644 {sha}\t{path}\n")
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp, tempfile.TemporaryFile() as info:
            info.write("".join(lines).encode())
            info.seek(0)
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _command.run(
                repo,
                ["update-index", "--index-info"],
                env=env,
                stdin=info,
                what="cannot stage the status files",
            )
            return _command.run(repo, ["write-tree"], env=env, what="cannot write the status tree")

    def _commit(self, repo: git.Repo, tree: str, parent: str | None, message: str) -> str:
        return _command.commit_tree(
            repo,
            tree,
            parent,
            message,
            name=self.identity.name,
            email=self.identity.email,
            what="cannot create the status commit",
        )

    def _push(self, commit: str, attempt: int) -> None:
        env, secrets = environment(self.remote.url, self.remote.credentials)
        try:
            _command.push(
                self._open(),
                self.remote.url,
                [f"{commit}:{self.ref}"],
                env=env,
                secrets=secrets,
                timeout=self.remote.timeout,
                what=f"cannot push the status branch {self.branch} to {self.remote.display}",
            )
        except _command.BranchMoved as err:
            log.info(
                "The status branch %s moved under attempt %d; looking again and re-applying "
                "the status on its new tip.",
                self.branch,
                attempt,
            )
            raise _Rejected(str(err)) from err

    def _open(self) -> git.Repo:
        if self._repo is None:
            if not self._git_dir.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-status-", dir=self.cache))
                git.Repo.init(tmp, bare=True).close()
                tmp.rename(self._git_dir)
            self._repo = git.Repo(self._git_dir)
        return self._repo

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.cache / "status.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def compose_message(message: str, *, fleet_revision: str, plan_id: str) -> str:
    """The commit message: the caller's text, then the trailers as its last paragraph."""
    body = message.strip() or "Update fleet status"
    return f"{body}\n\n{FLEET_REVISION}: {fleet_revision}\n{PLAN_ID}: {plan_id}\n"


def trailers(message: str) -> dict[str, str]:
    """The ``Key: value`` trailers of a commit message's last paragraph."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9-]*): (.*)", line.strip())
        if match is None:
            return {}
        found[match.group(1)] = match.group(2)
    return found


def is_own_commit(commit: CommitInfo, identity: Identity = DEFAULT_IDENTITY) -> bool:
    """Whether ``commit`` is a status commit written by a controller with ``identity``."""
    marks = trailers(commit.message)
    return commit.committer_email == identity.email and FLEET_REVISION in marks and PLAN_ID in marks


# -- coalescing --------------------------------------------------------------------------------


class Writes(Protocol):
    """What :class:`CoalescingWriter` needs of a writer (a :class:`StatusWriter`)."""

    def write(
        self, files: Mapping[str, bytes | str], message: str, *, fleet_revision: str, plan_id: str
    ) -> WriteResult: ...


@dataclass(frozen=True)
class _Desired:
    files: dict[str, bytes]
    message: str
    fleet_revision: str
    plan_id: str


class CoalescingWriter:
    """At most one status commit per ``interval`` seconds, always of the latest desired content.

    The controller :meth:`offer` s the status it wants after every reconcile; content equal to
    what was written last is dropped at once (no git traffic); otherwise it is written now if
    ``interval`` has passed since the last commit, or kept (replacing any older pending content)
    until :meth:`due_in` says it may go. A failed write keeps the content pending.
    """

    def __init__(
        self, writer: Writes, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.writer = writer
        self.interval = interval
        self.clock = clock
        self._pending: _Desired | None = None
        self._written: dict[str, bytes] | None = None
        self._last_commit: float | None = None

    @property
    def pending(self) -> bool:
        """Whether content waits to be written."""
        return self._pending is not None

    def offer(
        self, files: Mapping[str, bytes | str], message: str, *, fleet_revision: str, plan_id: str
    ) -> WriteResult | None:
        """Take the latest desired status; write it if the interval allows (else None)."""
        content = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
        if content == self._written:
            self._pending = None
            return None
        self._pending = _Desired(content, message, fleet_revision, plan_id)
        return self.flush_if_due()

    def due_in(self) -> float | None:
        """Seconds until the pending content may be written (0: now); None when nothing waits."""
        if self._pending is None:
            return None
        if self._last_commit is None:
            return 0.0
        return max(0.0, self._last_commit + self.interval - self.clock())

    def flush_if_due(self) -> WriteResult | None:
        """Write the pending content if the interval has passed."""
        wait = self.due_in()
        if wait is None or wait > 0:
            return None
        return self.flush()

    def flush(self) -> WriteResult | None:
        """Write the pending content now, whatever the interval (e.g. on shutdown)."""
        desired = self._pending
        if desired is None:
            return None
        result = self.writer.write(
            desired.files,
            desired.message,
            fleet_revision=desired.fleet_revision,
            plan_id=desired.plan_id,
        )
        self._pending = None
        self._written = desired.files
        if result.committed:
            self._last_commit = self.clock()
        return result


def _check_path(path: str) -> str:
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or any(part in ("", ".", "..", ".git") for part in path.split("/"))
        or any(c in path for c in "\t\n\0\\")
    ):
        raise ValueError(f"{path!r} is not a plain relative path for a status file")
    return path


def _valid_branch(branch: str) -> bool:
    try:
        git.Git().check_ref_format(f"refs/heads/{branch}")
    except git.GitCommandError:
        return False
    return True
