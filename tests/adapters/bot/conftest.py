"""Fixtures of the bot's stories: a real fleet repository on disk and a fake forge over HTTP.

The git side is real: a bare repository reached through ``file://`` holding the example fleet,
and an engineer's clone that commits and pushes to it. The forge is one of the stand-ins of
``gitops.sim.forges`` (GitHub, GitLab or Gitea), reached by the real adapter of
``gitops.forge`` over HTTP; its pull requests' heads are the bare repository's real commits.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitops.bot.service import Bot
from gitops.fleet import Fleet, load
from gitops.forge import Limiters, connect
from gitops.forge.base import Forge
from gitops.gitrepo.branches import Branches
from gitops.gitrepo.mirror import Remote
from gitops.sim.forges import FakeForge, FakeGitea, FakeGitHub, FakeGitLab, RecordedRequest
from tests.adapters.commands.conftest import serve  # noqa: F401  (the simulator fixture, shared)
from tests.conftest import EXAMPLE, git

FAKES: dict[str, type[FakeForge]] = {"github": FakeGitHub, "gitlab": FakeGitLab, "gitea": FakeGitea}
TOKEN = "fake-token-7"
SLUG = "acme/fleet"


@dataclass
class Repo:
    """The upstream bare repository and an engineer's working clone."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def tip(self, branch: str = "main") -> str:
        return git(self.bare, "rev-parse", f"refs/heads/{branch}")

    def commit(
        self, files: dict[str, str | None], message: str, branch: str = "main", base: str = "main"
    ) -> str:
        """Commit ``files`` (None deletes) on ``branch`` (new ones start at ``base``); push."""
        git(self.work, "fetch", "-q", "--prune", "origin")
        start = f"origin/{branch}" if self.has(branch) else f"origin/{base}"
        git(self.work, "checkout", "-q", "-B", branch, start)
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        git(self.work, "fetch", "-q", "origin")
        return git(self.work, "rev-parse", "HEAD")

    def has(self, branch: str) -> bool:
        try:
            git(self.bare, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return False
        return True

    def show(self, rev: str, path: str) -> str:
        """The exact content of ``path`` at ``rev``."""
        return subprocess.run(
            ["git", "cat-file", "blob", f"{rev}:{path}"],
            cwd=self.bare,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def fleet(self, rev: str = "main") -> Fleet:
        """The fleet at ``rev``, loaded from a checkout, named by its commit."""
        sha = git(self.bare, "rev-parse", rev)
        out = self.work.parent / f"at-{sha[:12]}"
        if not out.exists():
            git(self.bare, "worktree", "add", "-q", "--detach", str(out), sha)
        return load(out).with_revision(sha)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    bare, work = tmp_path / "fleet.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    shutil.copytree(EXAMPLE, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Initial fleet")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    git(work, "fetch", "-q", "origin")
    return Repo(bare, work)


@dataclass
class Hub:
    """A fake forge serving the repository, and a connected client."""

    kind: str
    server: FakeForge
    forge: Forge
    token_file: Path
    repo: Repo
    extra: dict[str, Any] = field(default_factory=dict)

    def writes(self) -> list[RecordedRequest]:
        """Every request that changed something (not a GET)."""
        return [r for r in self.server.requests if r.method != "GET"]

    def open_pull(self, branch: str, **kwargs: Any) -> int:
        self.server.set_branch(branch, self.repo.tip(branch))
        return self.server.open_pull(branch, **kwargs).number

    def pushed(self, branch: str) -> None:
        """Tell the forge a branch moved (as a push would)."""
        self.server.set_branch(branch, self.repo.tip(branch))


def start_hub(kind: str, repo: Repo, tmp_path: Path) -> Iterator[Hub]:
    server = FAKES[kind]((SLUG,), token=TOKEN)
    server.start()
    token_file = tmp_path / f"{kind}-token"
    token_file.write_text(TOKEN + "\n")
    forge = connect(
        kind, server.url, str(token_file), SLUG, limiters=Limiters(), min_write_interval=0.0
    )
    try:
        yield Hub(kind, server, forge, token_file, repo)
    finally:
        forge.close()
        server.stop()


@pytest.fixture(params=["github", "gitlab", "gitea"])
def hub(request: pytest.FixtureRequest, repo: Repo, tmp_path: Path) -> Iterator[Hub]:
    """The repository on each platform in turn."""
    yield from start_hub(request.param, repo, tmp_path)


@pytest.fixture
def github(repo: Repo, tmp_path: Path) -> Iterator[Hub]:
    yield from start_hub("github", repo, tmp_path)


def make_bot(hub: Hub, tmp_path: Path, **options: Any) -> Bot:
    branches = Branches(
        tmp_path / f"bot-cache-{len(list(tmp_path.iterdir()))}", Remote(hub.repo.url)
    )
    options.setdefault("sweep_interval", None)
    return Bot(hub.forge, branches, **options)
