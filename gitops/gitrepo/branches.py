"""Bot branches: read any branch of the fleet repository, commit a few files onto one, push it.

Adapter layer, used by the pull-request bot (``gitops.bot``) in the report phase and by
``gitops plan --pr``. Where the status writer (:mod:`gitops.gitrepo.status`) owns a whole branch
of generated files, :class:`Branches` edits *some* files of a branch on top of a base commit:

- :meth:`Branches.fetch` brings one branch (or a pull request's ref) into a private bare
  repository (``<cache>/branches.git``), shallow, and says which commit it is at;
- :meth:`Branches.commit` builds a commit from a parent's tree with a few paths replaced or
  removed (the other files and their modes untouched), by the bot's identity, with the
  ``Fleet-Revision:``/``Plan-Id:`` trailers that :func:`gitops.gitrepo.status.is_own_commit`
  recognises;
- :meth:`Branches.push` moves one branch with an explicit lease (the tip the caller looked at,
  or "must not exist"), so a commit pushed by someone else in between is never overwritten:
  the push is refused with :class:`BranchMoved` and the caller looks again;
- :meth:`Branches.put` is the fetch-commit-push cycle for one file on a branch (the full plan of
  a pull request on the status branch), retried a bounded number of times when it loses a race.

It must never write to a branch without a lease, never touch the watched branch's history
except through a pull request, and never put a credential on disk (see :mod:`.auth`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from io import BytesIO
from pathlib import Path

import git
from gitdb.base import IStream  # type: ignore[import-untyped]

from gitops.errors import Stalled
from gitops.gitrepo import _command
from gitops.gitrepo._command import BranchMoved
from gitops.gitrepo.auth import check_url, environment
from gitops.gitrepo.mirror import Remote
from gitops.gitrepo.snapshots import CommitInfo, SnapshotStore
from gitops.gitrepo.status import DEFAULT_IDENTITY, Identity, compose_message

log = logging.getLogger("gitops.gitrepo")

__all__ = ["BranchMoved", "Branches"]  # BranchMoved lives with the push it comes from

_TRACKING = "refs/remotes/bot/"


class Branches:
    """Branches of ``remote`` seen through a private bare repository under ``cache``."""

    def __init__(
        self,
        cache: Path,
        remote: Remote,
        *,
        identity: Identity = DEFAULT_IDENTITY,
        keep_snapshots: int = 8,
    ) -> None:
        check_url(remote.url)
        self.remote = remote
        self.identity = identity
        self.cache = cache
        self.keep_snapshots = keep_snapshots
        cache.mkdir(parents=True, exist_ok=True)
        self._git_dir = cache / "branches.git"
        self._repo: git.Repo | None = None
        self.snapshots = SnapshotStore(cache / "snapshots")

    # -- reading -------------------------------------------------------------------------------

    def tips(self, *refs: str) -> dict[str, str]:
        """The remote's commit for each of ``refs`` (full ref names) that exists."""
        env, secrets = self._env()
        out = _command.run(
            None,
            ["ls-remote", "--", self.remote.url, *refs],
            env=env,
            secrets=secrets,
            timeout=self.remote.timeout,
            what=f"cannot list refs at {self.remote.display}",
            cwd=self.cache,
        )
        wanted = set(refs)
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name in wanted:
                found[name] = sha
        return found

    def fetch(self, branch: str) -> str | None:
        """Fetch ``branch``; its tip (None when the branch does not exist on the remote)."""
        return self.fetch_ref(f"refs/heads/{branch}")

    def fetch_ref(self, ref: str, *, depth: int = 2) -> str | None:
        """Fetch the full ref ``ref`` (a branch or ``refs/pull/N/head``); its tip, or None."""
        tip = self.tips(ref).get(ref)
        if tip is None:
            return None
        with self._lock():
            repo = self._open()
            if not self._has(repo, tip):
                env, secrets = self._env()
                _command.fetch(
                    repo,
                    self.remote.url,
                    f"+{ref}:{_TRACKING}{ref.removeprefix('refs/')}",
                    options=[f"--depth={depth}"],
                    env=env,
                    secrets=secrets,
                    timeout=self.remote.timeout,
                    what=f"cannot fetch {ref} from {self.remote.display}",
                )
                # The ref may have moved since it was listed: answer what arrived.
                tip = str(repo.git.rev_parse(f"{_TRACKING}{ref.removeprefix('refs/')}"))
        return tip

    def fetch_any(self, refs: Sequence[str], want: str) -> str | None:
        """Fetch the first of ``refs`` whose tip is ``want`` (a pull request's head); the ref."""
        found = self.tips(*refs)
        for ref in refs:
            if found.get(ref) == want:
                if self.fetch_ref(ref) != want:  # moved on since it was listed
                    self.fetch_commit(want)
                return ref
        return None

    def fetch_commit(self, sha: str) -> None:
        """Fetch the commit ``sha`` itself (shallow), unless it is here already.

        Servers speaking protocol v2 (git 2.26+, GitHub, GitLab, Gitea) serve any reachable
        commit by id; one that does not answers with an error (``Stalled``).
        """
        with self._lock():
            repo = self._open()
            if self._has(repo, sha):
                return
            env, secrets = self._env()
            _command.fetch(
                repo,
                self.remote.url,
                sha,
                options=["--depth=1"],
                env=env,
                secrets=secrets,
                timeout=self.remote.timeout,
                what=f"cannot fetch commit {sha} from {self.remote.display}",
            )

    def has(self, sha: str) -> bool:
        """Whether the commit ``sha`` is in the private repository."""
        with self._lock():
            return self._has(self._open(), sha)

    def commit_info(self, sha: str) -> CommitInfo:
        """Author, committer and message of a fetched commit."""
        with self._lock():
            try:
                return CommitInfo.of(self._open().commit(sha))
            except (ValueError, git.BadName) as err:
                raise Stalled(
                    f"commit {sha} has not been fetched from {self.remote.display}"
                ) from err

    def read(self, sha: str, path: str) -> bytes | None:
        """The content of ``path`` at the fetched commit ``sha`` (None when it has no such file)."""
        with self._lock():
            repo = self._open()
            try:
                data = repo.git.show(
                    f"{sha}:{path}", stdout_as_string=False, strip_newline_in_stdout=False
                )
            except git.GitCommandError:
                return None
            return bytes(data)

    def snapshot(self, sha: str) -> Path:
        """A read-only checkout of the fetched commit ``sha`` (kept among the recent few)."""
        with self._lock():
            path = self.snapshots.ensure(self._open(), sha)
            self.snapshots.prune(self.keep_snapshots, {sha})
            return path

    # -- writing -------------------------------------------------------------------------------

    def commit(
        self,
        parent: str | None,
        changes: Mapping[str, bytes | str | None],
        message: str,
        *,
        fleet_revision: str,
        plan_id: str,
    ) -> str:
        """A new commit: ``parent``'s tree with ``changes`` (path → content, None removes).

        The commit is only created locally; :meth:`push` publishes it.
        """
        text = compose_message(message, fleet_revision=fleet_revision, plan_id=plan_id)
        with self._lock():
            repo = self._open()
            with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
                env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
                if parent is not None:
                    _command.run(repo, ["read-tree", parent], env=env, what=f"cannot read {parent}")
                lines = []
                for path in sorted(changes):
                    content = changes[path]
                    if content is None:
                        lines.append(f"0 {'0' * 40}\t{path}\n")
                        continue
                    data = content.encode() if isinstance(content, str) else content
                    sha = repo.odb.store(IStream("blob", len(data), BytesIO(data))).hexsha.decode()
                    lines.append(f"100644 {sha}\t{path}\n")
                with tempfile.TemporaryFile() as info:
                    info.write("".join(lines).encode())
                    info.seek(0)
                    _command.run(
                        repo,
                        ["update-index", "--index-info"],
                        env=env,
                        stdin=info,
                        what="cannot stage the bot's files",
                    )
                tree = _command.run(repo, ["write-tree"], env=env, what="cannot write a tree")
            return _command.commit_tree(
                repo,
                tree,
                parent,
                text,
                name=self.identity.name,
                email=self.identity.email,
                what="cannot create the bot's commit",
            )

    def changed_paths(self, old: str, new: str) -> tuple[str, ...]:
        """Paths that differ between two fetched or created commits."""
        with self._lock():
            out = self._open().git.diff_tree("-r", "-z", "--name-only", old, new)
        return tuple(p for p in str(out).split("\0") if p)

    def push(self, branch: str, commit: str, *, expect: str | None) -> None:
        """Point ``branch`` at ``commit`` if it is still at ``expect`` (None: must not exist).

        :class:`BranchMoved` when the lease fails (someone pushed in between); ``Stalled`` when a
        hook or branch protection refuses.
        """
        ref = f"refs/heads/{branch}"
        self._push([f"--force-with-lease={ref}:{expect or ''}", f"{commit}:{ref}"], branch)
        log.info("Pushed %s to the branch %s of %s.", commit[:12], branch, self.remote.display)

    def delete(self, branch: str, *, expect: str) -> None:
        """Delete ``branch`` if it is still at ``expect``."""
        ref = f"refs/heads/{branch}"
        self._push([f"--force-with-lease={ref}:{expect}", f":{ref}"], branch)
        log.info("Deleted the branch %s of %s.", branch, self.remote.display)

    def put(
        self,
        branch: str,
        path: str,
        content: bytes | str,
        message: str,
        *,
        fleet_revision: str,
        plan_id: str,
        attempts: int = 4,
    ) -> str:
        """Make ``path`` hold ``content`` on ``branch`` (created when missing); the tip after.

        Other files of the branch are kept. Nothing is committed when the file already holds
        ``content``. A lost race (someone pushed meanwhile) is retried on the new tip.
        """
        data = content.encode() if isinstance(content, str) else content
        for attempt in range(1, attempts + 1):
            tip = self.fetch(branch)
            if tip is not None and self.read(tip, path) == data:
                return tip
            commit = self.commit(
                tip, {path: data}, message, fleet_revision=fleet_revision, plan_id=plan_id
            )
            try:
                self.push(branch, commit, expect=tip)
            except BranchMoved:
                if attempt == attempts:
                    raise
                log.info("The branch %s moved under us; writing %s again.", branch, path)
                continue
            return commit
        raise AssertionError("unreachable")  # pragma: no cover

    # -- internals -----------------------------------------------------------------------------

    def _push(self, args: list[str], branch: str) -> None:
        env, secrets = self._env()
        with self._lock():
            _command.push(
                self._open(),
                self.remote.url,
                args[1:],
                options=args[:1],
                env=env,
                secrets=secrets,
                timeout=self.remote.timeout,
                what=f"cannot push the branch {branch} to {self.remote.display}",
            )

    def _env(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return environment(self.remote.url, self.remote.credentials)

    def _open(self) -> git.Repo:
        if self._repo is None:
            if not self._git_dir.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-branches-", dir=self.cache))
                git.Repo.init(tmp, bare=True).close()
                tmp.rename(self._git_dir)
            self._repo = git.Repo(self._git_dir)
        return self._repo

    def _has(self, repo: git.Repo, sha: str) -> bool:
        try:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
        except git.GitCommandError:
            return False
        return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # flock is per open file: public methods take it once and never call each other
        # while holding it (a nested take would wait for itself).
        with open(self.cache / "branches.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
