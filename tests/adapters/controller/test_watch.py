"""The local repository watch: which directories count as local, and which changes wake the loop.

A real repository and real inotify events (watchfiles); the negative checks wait a bounded
second for a wake-up that must not come.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.controller.watch import RefWatcher, local_git_dir
from gitops.controller.webhooks import Trigger
from tests.conftest import git

QUIET = 1.0  # how long a change that must not wake the loop is given to (wrongly) do so


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "fleet.yaml").write_text("generation: 1\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "First")
    return work


def test_local_paths_and_file_urls_are_local_and_network_urls_are_not(
    work: Path, tmp_path: Path
) -> None:
    git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "bare.git"))
    git(work, "worktree", "add", "-q", str(tmp_path / "linked"))
    assert local_git_dir(str(work)) == work / ".git"
    assert local_git_dir(f"file://{work}") == work / ".git"
    assert local_git_dir(str(tmp_path / "bare.git")) == tmp_path / "bare.git"
    assert local_git_dir(str(tmp_path / "linked")) == work / ".git"  # branches live there
    assert local_git_dir("https://git.example.com/fleet.git") is None
    assert local_git_dir("ssh://git@example.com/fleet.git") is None
    assert local_git_dir(str(tmp_path / "missing")) is None
    assert local_git_dir(str(tmp_path)) is None  # a directory, but no repository


@pytest.fixture
def watched(work: Path) -> Iterator[tuple[RefWatcher, Trigger]]:
    trigger = Trigger("main")
    git_dir = local_git_dir(str(work))
    assert git_dir is not None
    watcher = RefWatcher(git_dir, "main", trigger, debounce_ms=100).start()
    yield watcher, trigger
    watcher.stop()


def test_a_commit_to_the_watched_branch_wakes_the_loop(
    work: Path, watched: tuple[RefWatcher, Trigger]
) -> None:
    watcher, trigger = watched
    (work / "fleet.yaml").write_text("generation: 2\n")
    assert not trigger.wait(QUIET)  # an uncommitted edit is not applied, so it does not wake
    git(work, "commit", "-qam", "Second")
    assert trigger.wait(10)
    assert watcher.wakes >= 1


def test_other_refs_and_the_status_branch_do_not_wake_the_loop(
    work: Path, watched: tuple[RefWatcher, Trigger]
) -> None:
    watcher, trigger = watched
    git(work, "branch", "feature")
    git(work, "update-ref", "refs/heads/gitops/status", "HEAD")  # the controller's own writes
    git(work, "checkout", "-q", "feature")
    assert not trigger.wait(QUIET)
    assert watcher.wakes == 0
