"""Fixtures shared across test tiers: real git repositories on disk."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fleet-repo-example"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fleet Engineer",
    "GIT_AUTHOR_EMAIL": "engineer@example.com",
    "GIT_COMMITTER_NAME": "Fleet Engineer",
    "GIT_COMMITTER_EMAIL": "engineer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; return stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def fleet_remote(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """A bare remote holding the example fleet on ``main``, and a working clone of it."""

    def make(source: Path = EXAMPLE) -> tuple[Path, Path]:
        bare, work = tmp_path / "fleet.git", tmp_path / "work"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
        shutil.copytree(source, work)
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "Initial fleet")
        git(work, "remote", "add", "origin", str(bare))
        git(work, "push", "-q", "origin", "main")
        return bare, work

    return make


class FakeTime:
    """A clock that moves only when told to (``now``) or when something sleeps on it; the
    sleeps are recorded, never slept."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
