"""Fixtures of the git adapter tests: an upstream fleet repository, git servers, signing keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.adapters.gitrepo.servers import GitDaemon, GitHttpServer

ENGINEER = {
    "GIT_AUTHOR_NAME": "Fleet Engineer",
    "GIT_AUTHOR_EMAIL": "engineer@example.com",
    "GIT_COMMITTER_NAME": "Fleet Engineer",
    "GIT_COMMITTER_EMAIL": "engineer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in ``cwd`` as the fleet engineer; return stdout."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**ENGINEER, "HOME": str(cwd), **(env or {})},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Upstream:
    """A bare fleet repository ``<root>/srv/fleet.git`` and an engineer's clone pushing to it."""

    def __init__(self, root: Path) -> None:
        self.srv = root / "srv"
        self.bare = self.srv / "fleet.git"
        self.work = root / "engineer"
        self.srv.mkdir(parents=True)
        run_git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        run_git(root, "init", "-q", "-b", "main", str(self.work))
        run_git(self.work, "remote", "add", "origin", str(self.bare))
        self.sign_args: Sequence[str] = ()
        self.sign_env: dict[str, str] = {}
        self.counter = 0

    @property
    def path(self) -> str:
        return str(self.bare)

    @property
    def file_url(self) -> str:
        return f"file://{self.bare}"

    def commit(
        self,
        message: str | None = None,
        files: dict[str, str] | None = None,
        *,
        sign: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> str:
        """Commit ``files`` (or a change to ``fleet.yaml``) on the engineer's branch; return sha."""
        self.counter += 1
        for name, text in (files or {"fleet.yaml": f"generation: {self.counter}\n"}).items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        run_git(self.work, "add", "-A")
        run_git(
            self.work, *sign, "commit", "-q", "-m", message or f"Change {self.counter}", env=env
        )
        return run_git(self.work, "rev-parse", "HEAD")

    def push(self, branch: str = "main", *, force: bool = False) -> None:
        run_git(
            self.work, "push", "-q", *(["--force"] if force else []), "origin", f"HEAD:{branch}"
        )

    def publish(self, count: int = 1) -> str:
        """Commit ``count`` changes and push them; return the new tip."""
        for _ in range(count):
            sha = self.commit()
        self.push()
        return sha

    def rewrite(self, back: int = 1) -> str:
        """Drop the last ``back`` commits, commit something else and force-push it."""
        run_git(self.work, "reset", "-q", "--hard", f"HEAD~{back}")
        sha = self.commit("Rewritten history")
        self.push(force=True)
        return sha

    def tip(self, branch: str = "main") -> str | None:
        try:
            return run_git(self.bare, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """A fleet repository with one commit on ``main``."""
    repo = Upstream(tmp_path / "upstream")
    repo.publish()
    return repo


@pytest.fixture
def daemon(upstream: Upstream) -> Iterator[GitDaemon]:
    """``git daemon`` serving the upstream's ``srv`` directory (pushes enabled)."""
    server = GitDaemon(upstream.srv).start()
    yield server
    server.stop()


TOKEN = "s3cr3t-t0ken-4f9a"


@pytest.fixture
def http_server(upstream: Upstream) -> Iterator[GitHttpServer]:
    """``git http-backend`` serving the upstream's ``srv`` directory, requiring ``TOKEN``."""
    server = GitHttpServer(upstream.srv, token=TOKEN).start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Signers:
    """Throwaway signing keys: Alice (OpenPGP) and Bob (SSH) trusted, Mallory and Eve not."""

    gnupghome: Path
    alice: str  # OpenPGP fingerprint
    mallory: str
    bob_key: Path  # SSH private key files
    eve_key: Path
    keys_dir: Path  # the trusted-keys directory: alice.asc and allowed_signers naming Bob

    def gpg(self, fingerprint: str) -> tuple[list[str], dict[str, str]]:
        """git arguments and environment to sign a commit with an OpenPGP key."""
        return [
            "-c",
            "gpg.program=gpg",
            "-c",
            f"user.signingkey={fingerprint}",
            "-c",
            "commit.gpgsign=true",
        ], {"GNUPGHOME": str(self.gnupghome)}

    def ssh(self, key: Path) -> tuple[list[str], dict[str, str]]:
        """git arguments and environment to sign a commit with an SSH key."""
        return [
            "-c",
            "gpg.format=ssh",
            "-c",
            f"user.signingkey={key}",
            "-c",
            "commit.gpgsign=true",
        ], {}


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="session")
def signers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signers]:
    """Keys made once per session (gpg's agent socket wants a short path, hence mkdtemp)."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (CI must apt-get install -y gnupg)")
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    root = tmp_path_factory.mktemp("signers")
    keys = root / "trusted"
    keys.mkdir()
    fingerprints = {}
    for name in ("Alice", "Mallory"):
        _gpg(
            home,
            "--passphrase",
            "",
            "--quick-gen-key",
            f"{name} <{name.lower()}@example.com>",
            "ed25519",
            "sign",
            "never",
        )
        listing = _gpg(home, "--with-colons", "--list-keys", f"{name.lower()}@example.com")
        fingerprints[name] = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
        )
    (keys / "alice.asc").write_text(_gpg(home, "--armor", "--export", fingerprints["Alice"]))
    for name in ("bob", "eve"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(root / name)],
            check=True,
        )
    bob_pub = (root / "bob.pub").read_text().strip()
    (keys / "allowed_signers").write_text(f"bob@example.com {bob_pub}\n")
    yield Signers(
        home, fingerprints["Alice"], fingerprints["Mallory"], root / "bob", root / "eve", keys
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    shutil.rmtree(home, ignore_errors=True)
