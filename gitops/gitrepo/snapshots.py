"""Immutable, content-addressed snapshots of fleet revisions: ``<cache>/snapshots/<sha>``.

Adapter layer, end of the fetch phase: after the mirror fetched a revision (and, when asked,
its signature was verified), the revision's tree is checked out into a directory that the load
phase reads and nothing ever changes again. A snapshot is

- complete or absent: it is written into ``.tmp-<sha>-*`` next to its final place, made read-only
  and renamed into place in one step, so a crash leaves at most a temporary directory (removed
  on the next start), never a half snapshot under a sha's name;
- read-only: files ``0444`` (``0555`` if executable), directories ``0555``;
- bounded: :meth:`SnapshotStore.prune` keeps the most recently used few and never removes one
  that is in use (the revision currently applied), however old.

It must never modify a snapshot in place, nor delete the one in use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import git

from gitops.gitrepo import _command

log = logging.getLogger("gitops.gitrepo")

_TMP = ".tmp-"
_TRASH = ".trash-"


@dataclass(frozen=True)
class CommitInfo:
    """What the status and the logs say about a revision."""

    sha: str
    author_name: str
    author_email: str
    authored_at: datetime
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str

    @property
    def summary(self) -> str:
        """The message's first line."""
        return self.message.split("\n", 1)[0]

    @classmethod
    def of(cls, commit: git.Commit) -> CommitInfo:
        """Read a gitpython commit into plain data (no gitpython object leaves the package)."""
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        return cls(
            sha=commit.hexsha,
            author_name=str(commit.author.name),
            author_email=str(commit.author.email),
            authored_at=commit.authored_datetime,
            committer_name=str(commit.committer.name),
            committer_email=str(commit.committer.email),
            committed_at=commit.committed_datetime,
            message=message,
        )


@dataclass(frozen=True)
class Snapshot:
    """A revision's files at ``path`` (read-only), with the commit they come from."""

    path: Path
    sha: str
    commit: CommitInfo


class SnapshotStore:
    """The ``snapshots`` directory of a cache; callers serialise access (the mirror's lock)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        """Where the snapshot of ``sha`` lives (whether or not it exists)."""
        if len(sha) < 40 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"a snapshot is named by a full lowercase commit sha, not {sha!r}")
        return self.root / sha

    def recent(self) -> list[str]:
        """The shas that have a complete snapshot, most recently used first."""
        entries = [p for p in self.root.iterdir() if not p.name.startswith(".") and p.is_dir()]
        entries.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        return [p.name for p in entries]

    def ensure(self, repo: git.Repo, sha: str) -> Path:
        """The snapshot of ``sha``, created from ``repo`` when missing, marked as just used."""
        final = self.path(sha)
        if not final.is_dir():
            self._create(repo, sha, final)
        self._touch(final)
        return final

    def prune(self, keep: int, in_use: Iterable[str] = ()) -> list[str]:
        """Remove all but the ``keep`` most recently used snapshots and those ``in_use``."""
        protected = set(in_use)
        removed: list[str] = []
        for position, sha in enumerate(self.recent()):
            if position < keep or sha in protected:
                continue
            _remove(self.root / sha, self.root)
            removed.append(sha)
            log.info("Removed the snapshot of revision %s to keep the cache bounded.", sha)
        return removed

    def clean(self) -> None:
        """Remove what a crash may have left: temporary and half-deleted directories."""
        for entry in self.root.iterdir():
            if entry.name.startswith((_TMP, _TRASH)):
                _force_rmtree(entry)

    def _create(self, repo: git.Repo, sha: str, final: Path) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP}{sha[:12]}-", dir=self.root))
        index = tmp.with_name(tmp.name + ".index")
        try:
            # A faithful checkout (as a clone would give) with a throwaway index, no .git inside.
            _command.run(
                repo,
                [f"--work-tree={tmp}", "read-tree", "-u", "--reset", sha],
                env={"GIT_INDEX_FILE": str(index)},
                what=f"cannot check out revision {sha}",
            )
            _make_read_only(tmp)
            try:
                tmp.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
                _force_rmtree(tmp)  # someone else finished the same snapshot first
        except BaseException:
            _force_rmtree(tmp)
            raise
        finally:
            index.unlink(missing_ok=True)
        log.info("Checked out revision %s into the snapshot %s.", sha, final)

    def _touch(self, path: Path) -> None:
        # Strictly after every other snapshot's mark, so "most recently used" has no ties.
        latest = max((p.stat().st_mtime_ns for p in self.root.iterdir()), default=0)
        now = max(time.time_ns(), latest + 1)
        os.utime(path, ns=(now, now))


def _make_read_only(root: Path) -> None:
    for directory, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(directory, name)
            if path.is_symlink():
                continue
            executable = path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o555 if executable else 0o444)
        for name in dirnames:
            Path(directory, name).chmod(0o555)
    root.chmod(0o555)


def _remove(path: Path, root: Path) -> None:
    # Rename first so the snapshot disappears from its name at once, then delete at leisure.
    # (Within the same directory: moving a read-only directory elsewhere needs write access to it.)
    trash = root / f"{_TRASH}{path.name}-{os.getpid()}-{time.time_ns()}"
    path.rename(trash)
    _force_rmtree(trash)


def _force_rmtree(path: Path) -> None:
    if not path.exists():
        return
    for directory, dirnames, _ in os.walk(path):
        Path(directory).chmod(0o755)
        for name in dirnames:
            with contextlib.suppress(OSError):
                Path(directory, name).chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)
