"""The controller's mirror of the fleet repository: the fetch phase of every reconcile.

Adapter layer. A :class:`Mirror` keeps one branch of the remote in a bare repository under a
cache directory and answers, each cycle, "what is the branch's revision now, and did it move?":

1. ``git ls-remote`` the one watched ref. When it names the revision already fetched, the cycle
   stops there: no fetch, no checkout (:attr:`SyncResult.fetched` is False).
2. Otherwise fetch that single branch, shallow (``--depth``) and without tags; then decide
   whether the new tip descends from the previous one, deepening the shallow history step by
   step (and unshallowing as a last resort) until the answer is certain. A tip that does not
   descend is a force-push (history rewritten): it is followed, flagged and logged with both shas.
3. :meth:`Mirror.snapshot` checks a revision out into an immutable ``<cache>/snapshots/<sha>``
   (see :mod:`gitops.gitrepo.snapshots`), keeping the cache bounded.

Cache layout: ``<cache>/repo.git`` (bare, no remote configured: the URL is passed on each call
and credentials only through the environment, see :mod:`gitops.gitrepo.auth`), ``<cache>/
snapshots/``, ``<cache>/trust/`` (signature verification), ``<cache>/lock``.

Failures are typed: an unreachable remote or a timeout is ``Transient``; a bad URL, branch or
credential is ``Stalled``. The mirror must never write a credential to disk, never fetch a branch
other than the watched one, never move a snapshot that is in use, and never decide anything
about the fleet: it hands revisions to the load phase.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import git

from gitops.errors import Stalled
from gitops.gitrepo import _command
from gitops.gitrepo.auth import Credentials, check_url, environment, redact
from gitops.gitrepo.snapshots import CommitInfo, Snapshot, SnapshotStore
from gitops.gitrepo.verify import TrustStore, Verdict, verify_commit

log = logging.getLogger("gitops.gitrepo")

_TRACKING = "refs/remotes/origin/"


@dataclass(frozen=True)
class Remote:
    """Where the fleet lives: a URL (https, ssh, ``file://`` or a path) and the watched branch."""

    url: str
    branch: str = "main"
    credentials: Credentials = field(default_factory=Credentials)
    timeout: float = 120.0  # seconds for any one git command talking to the remote

    @property
    def ref(self) -> str:
        """The full name of the watched ref."""
        return f"refs/heads/{self.branch}"

    @property
    def display(self) -> str:
        """The URL with any password removed, for logs and messages."""
        return redact(self.url)


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one :meth:`Mirror.sync`.

    ``changed``: the branch's revision differs from the one fetched before (always True on the
    first sync of an empty cache). ``fetched``: a fetch ran; False means ``ls-remote`` showed an
    unmoved ref and nothing else was done. ``forced``: the new revision does not descend from
    the previous one (a force-push rewrote history).
    """

    revision: str
    previous: str | None
    changed: bool
    fetched: bool
    forced: bool
    shallow: bool


class Mirror:
    """One watched branch of one remote, mirrored under ``cache``."""

    def __init__(
        self,
        cache: Path,
        remote: Remote,
        *,
        keep_snapshots: int = 3,
        depth: int = 8,
        max_depth: int = 512,
    ) -> None:
        check_url(remote.url)
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        self.cache = cache
        self.remote = remote
        self.keep_snapshots = keep_snapshots
        self.depth = depth
        self.max_depth = max_depth
        self.fetches = 0  # fetches run by this object: lets callers and tests see skipped work
        cache.mkdir(parents=True, exist_ok=True)
        self._git_dir = cache / "repo.git"
        self._repo: git.Repo | None = None
        self.snapshots = SnapshotStore(cache / "snapshots")
        with self._lock():
            self.snapshots.clean()

    # -- fetch phase -------------------------------------------------------------------------

    def remote_revision(self) -> str:
        """The watched branch's revision on the remote (``ls-remote``; nothing is fetched)."""
        env, secrets = self._env()
        out = _command.run(
            None,
            ["ls-remote", "--", self.remote.url, self.remote.ref],
            env=env,
            secrets=secrets,
            timeout=self.remote.timeout,
            what=f"cannot list {self.remote.ref} at {self.remote.display}",
            cwd=self.cache,
        )
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == self.remote.ref:
                return sha
        raise Stalled(f"the branch {self.remote.branch} does not exist at {self.remote.display}")

    def revision(self) -> str | None:
        """The revision fetched last, or None before the first fetch."""
        if not self._git_dir.is_dir():
            return None
        return self._local(self._tracking)

    def sync(self) -> SyncResult:
        """Bring the mirror to the remote branch's current revision (see the module docstring)."""
        remote_sha = self.remote_revision()
        with self._lock():
            repo = self._open()
            previous = self._local(self._tracking)
            if previous == remote_sha and self._has_commit(repo, remote_sha):
                return SyncResult(remote_sha, previous, False, False, False, self._is_shallow())
            revision = self._fetch(repo, ["--depth", str(self.depth)])
            forced = previous is not None and not self._descends(repo, previous, revision)
            if forced:
                log.warning(
                    "The branch %s of %s was force-pushed: history was rewritten from %s to %s; "
                    "following the new history.",
                    self.remote.branch,
                    self.remote.display,
                    previous,
                    revision,
                    extra={"old_revision": previous, "new_revision": revision},
                )
            elif previous != revision:
                log.info(
                    "Fetched revision %s of the branch %s of %s (was %s).",
                    revision,
                    self.remote.branch,
                    self.remote.display,
                    previous or "nothing",
                )
            return SyncResult(
                revision=revision,
                previous=previous,
                changed=previous != revision,
                fetched=True,
                forced=forced,
                shallow=self._is_shallow(),
            )

    def commit(self, sha: str) -> CommitInfo:
        """Author, committer, times and message of a fetched revision."""
        repo = self._open()
        try:
            return CommitInfo.of(repo.commit(sha))
        except (ValueError, git.BadName) as err:
            raise Stalled(f"revision {sha} is not in the mirror of {self.remote.display}") from err

    def snapshot(self, sha: str, *, in_use: Iterable[str] = ()) -> Snapshot:
        """The immutable snapshot of a fetched revision; older ones beyond the bound are pruned.

        ``in_use`` names revisions that must survive pruning (the one currently applied).
        """
        with self._lock():
            repo = self._open()
            path = self.snapshots.ensure(repo, sha)
            self.snapshots.prune(self.keep_snapshots, {sha, *in_use})
            return Snapshot(path=path, sha=sha, commit=CommitInfo.of(repo.commit(sha)))

    def verify(self, sha: str, trust: TrustStore) -> Verdict:
        """Whether the fetched revision ``sha`` is signed by a key in ``trust``."""
        with self._lock():
            return verify_commit(self._open(), sha, trust)

    def watches(self, ref: str) -> bool:
        """Whether a push to ``ref`` (a webhook's ``ref``) concerns this mirror."""
        return ref in (self.remote.ref, self.remote.branch)

    # -- internals -----------------------------------------------------------------------------

    @property
    def _tracking(self) -> str:
        return _TRACKING + self.remote.branch

    def _env(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return environment(self.remote.url, self.remote.credentials)

    def _open(self) -> git.Repo:
        if self._repo is None:
            if not self._git_dir.is_dir():
                # Initialised aside and renamed, so a crash never leaves a half-made repository.
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-repo-", dir=self.cache))
                git.Repo.init(tmp, bare=True).close()
                tmp.rename(self._git_dir)
            self._repo = git.Repo(self._git_dir)
        return self._repo

    def _local(self, ref: str) -> str | None:
        repo = self._open()
        try:
            return str(repo.git.rev_parse("--verify", "--quiet", ref + "^{commit}"))
        except git.GitCommandError:
            return None

    def _has_commit(self, repo: git.Repo, sha: str) -> bool:
        try:
            repo.git.cat_file("-e", sha + "^{commit}")
        except git.GitCommandError:
            return False
        return True

    def _fetch(self, repo: git.Repo, options: list[str]) -> str:
        env, secrets = self._env()
        refspec = f"+{self.remote.ref}:{self._tracking}"
        self.fetches += 1
        started = time.monotonic()
        _command.fetch(
            repo,
            self.remote.url,
            refspec,
            options=options,
            env=env,
            secrets=secrets,
            timeout=self.remote.timeout,
            what=f"cannot fetch {self.remote.ref} from {self.remote.display}",
        )
        log.debug(
            "Fetched %s from %s in %.3f s (%s).",
            self.remote.ref,
            self.remote.display,
            time.monotonic() - started,
            " ".join(options) or "full",
        )
        sha = self._local(self._tracking)
        if sha is None:  # pragma: no cover - git just wrote it
            raise Stalled(f"fetching {self.remote.ref} from {self.remote.display} gave no revision")
        return sha

    def _descends(self, repo: git.Repo, old: str, new: str) -> bool:
        """Whether ``new`` has ``old`` in its history, fetching more history until certain."""
        deepen = self.depth
        while True:
            if old == new or self._is_ancestor(repo, old, new):
                return True
            if not self._history_cut(repo, new, old):
                return False  # the whole history of ``new`` is here and ``old`` is not in it
            if deepen > self.max_depth:
                self._fetch(repo, ["--unshallow"])
                continue
            self._fetch(repo, [f"--deepen={deepen}"])
            deepen *= 2

    def _is_ancestor(self, repo: git.Repo, old: str, new: str) -> bool:
        if not self._has_commit(repo, old):
            return False
        try:
            repo.git.merge_base("--is-ancestor", old, new)
        except git.GitCommandError:
            return False
        return True

    def _history_cut(self, repo: git.Repo, new: str, old: str) -> bool:
        """Whether ``old`` may hide behind a shallow boundary in the history of ``new``.

        Only a boundary that is not itself in the history of ``old`` can hide it (``old`` cannot
        be both an ancestor and a descendant of one commit), so rewriting the last few commits
        is recognised without fetching more.
        """
        boundaries = self._shallow_commits()
        if not boundaries:
            return False
        exclude = ["--not", old] if self._has_commit(repo, old) else []
        reachable = repo.git.rev_list(new, *exclude).split()
        return any(c in boundaries for c in reachable)

    def _shallow_commits(self) -> set[str]:
        path = self._git_dir / "shallow"
        return set(path.read_text().split()) if path.exists() else set()

    def _is_shallow(self) -> bool:
        return bool(self._shallow_commits())

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes sharing one cache take turns; within a process the caller serialises.
        with open(self.cache / "lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
