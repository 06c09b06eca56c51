"""Local development: wake the loop the moment a local fleet repository's branch moves.

Shell layer, trigger side of the reconcile cycle, like ``webhooks``: it only pokes the
``Trigger``; it never fetches, loads or acts (the fetch phase does, as for any push). When
``gitops run --repo`` names a directory on this machine (a path or a ``file://`` URL; a
working directory or a bare repository), the repository's git directory is watched with
watchfiles (inotify on Linux) and the loop reconciles as soon as the watched branch's ref
changes, instead of at the next poll.

What is watched: ``refs/heads/<branch>`` (a commit, merge, reset or push moves it) and
``packed-refs`` (where ``git pack-refs`` and ``git gc`` keep refs). What is not, on purpose:

- the working tree's files. The controller applies commits, never uncommitted edits, so an
  edit would wake the loop for nothing; commit to see it applied.
- ``HEAD`` and other refs: checking out another branch does not move the watched one, and the
  controller's own status branch (``refs/heads/gitops/status``, pushed into the same
  repository) must never wake its own loop.

Changes are debounced (watchfiles groups the events of ``debounce_ms``; a rebase that moves the
ref many times wakes the loop once, and the trigger coalesces the rest).
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from pathlib import Path

import watchfiles

from gitops.controller.webhooks import Trigger

log = logging.getLogger(__name__)


def local_git_dir(url: str) -> Path | None:
    """The git directory holding the refs of ``url`` when it is a local repository, else None.

    For a working directory that is ``.git`` (for a linked worktree, the common git directory,
    where branches live); for a bare repository, the directory itself.
    """
    if url.startswith("file://"):
        path = Path(urllib.parse.unquote(url.removeprefix("file://")))
    elif "://" in url:
        return None
    else:
        path = Path(url).expanduser()
    if not path.is_dir():
        return None
    dot = path / ".git"
    if dot.is_dir():
        return dot.resolve()
    if dot.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
        text = dot.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        git_dir = (path / text.removeprefix("gitdir:").strip()).resolve()
        common = git_dir / "commondir"
        if common.is_file():
            git_dir = (git_dir / common.read_text(encoding="utf-8").strip()).resolve()
        return git_dir
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path.resolve()  # bare
    return None


class RefWatcher:
    """Pokes ``trigger`` whenever ``branch`` moves in the repository at ``git_dir``."""

    def __init__(
        self, git_dir: Path, branch: str, trigger: Trigger, *, debounce_ms: int = 300
    ) -> None:
        self.git_dir = git_dir.resolve()
        self.branch = branch
        self.trigger = trigger
        self.debounce_ms = debounce_ms
        self.wakes = 0  # how many times it woke the loop
        self._wanted = {
            str(self.git_dir / "refs" / "heads" / branch),
            str(self.git_dir / "packed-refs"),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ref-watch", daemon=True)

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        del change  # added, modified or deleted: each moves (or removes) the branch
        return path in self._wanted

    def start(self) -> RefWatcher:
        # watchfiles logs every batch at INFO; our own line says what the batch means.
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        self._thread.start()
        log.info(
            "Watching %s for commits to the branch %s: they are reconciled at once.",
            self.git_dir,
            self.branch,
        )
        return self

    def _run(self) -> None:
        try:
            for _ in watchfiles.watch(
                self.git_dir,
                watch_filter=self._relevant,
                debounce=self.debounce_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=500,
                raise_interrupt=False,
            ):
                self.wakes += 1
                log.info("The branch %s moved in %s; reconciling now.", self.branch, self.git_dir)
                self.trigger.poke()
        except (OSError, RuntimeError) as err:
            # Polling still works without it; say so rather than end the process.
            log.warning(
                "Cannot watch %s (%s); new commits are seen at the next poll.", self.git_dir, err
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
