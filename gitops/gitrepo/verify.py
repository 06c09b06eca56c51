"""Commit signature verification against a directory of trusted keys (off unless configured).

Adapter layer, in the fetch phase between fetching a revision and handing it to the load phase:
an unsigned or untrusted revision is never applied (the controller keeps the last good one and
reports the verdict's reason).

The trusted-keys directory (``--verify-signatures DIR``) holds OpenPGP public keys (``*.asc``,
``*.gpg``) and an SSH ``allowed_signers`` file. :class:`TrustStore` turns it into private
material under the cache: a ``GNUPGHOME`` of its own (the keys imported with ultimate owner
trust, since being in the directory is the trust decision) and a copy of ``allowed_signers``,
rebuilt whenever the directory's content changes, so removing a key revokes it. The tip is
checked with ``git verify-commit --raw`` with ``gpg.ssh.allowedSignersFile`` given by ``-c``.

It must never touch the user's own keyring or git configuration, never treat a signature by a
key outside the directory as good, and never guess: when it cannot tell, the verdict says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

from gitops.errors import Stalled

VerdictKind = Literal[
    "trusted", "unsigned", "unknown-key", "bad-signature", "expired-key", "revoked-key", "error"
]

_KEY_SUFFIXES = (".asc", ".gpg")
ALLOWED_SIGNERS = "allowed_signers"


@dataclass(frozen=True)
class Verdict:
    """Whether revision ``sha`` may be applied; ``reason`` is written for the status."""

    sha: str
    kind: VerdictKind
    signer: str | None
    reason: str

    @property
    def trusted(self) -> bool:
        """True only for a good signature by a key in the trusted directory."""
        return self.kind == "trusted"


@dataclass(frozen=True)
class TrustMaterial:
    """A built trust store: where gpg and ssh-keygen find the trusted keys."""

    gnupghome: Path
    allowed_signers: Path
    fingerprints: tuple[str, ...]  # OpenPGP primary keys imported


class TrustStore:
    """The trusted keys of ``keys_dir``, materialised privately under ``home``."""

    def __init__(self, keys_dir: Path, home: Path) -> None:
        self.keys_dir = keys_dir
        self.home = home

    def material(self) -> TrustMaterial:
        """The private keyring and signers file for the directory's current content."""
        files = self._files()
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        final = self.home / digest.hexdigest()[:20]
        if not final.is_dir():
            self._build(files, final)
        for other in self.home.iterdir():
            if other != final and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)
        fingerprints = (final / "fingerprints").read_text().split()
        return TrustMaterial(final / "gnupg", final / ALLOWED_SIGNERS, tuple(fingerprints))

    def _files(self) -> list[Path]:
        if not self.keys_dir.is_dir():
            raise Stalled(f"the trusted keys directory {self.keys_dir} does not exist")
        files = sorted(
            p
            for p in self.keys_dir.iterdir()
            if p.is_file() and (p.suffix in _KEY_SUFFIXES or p.name == ALLOWED_SIGNERS)
        )
        if not files:
            raise Stalled(
                f"the trusted keys directory {self.keys_dir} holds no OpenPGP key (*.asc, *.gpg) "
                f"and no {ALLOWED_SIGNERS} file, so no revision could ever be trusted"
            )
        return files

    def _build(self, files: list[Path], final: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.home))
        try:
            gnupghome = tmp / "gnupg"
            gnupghome.mkdir(mode=0o700)
            signers = tmp / ALLOWED_SIGNERS
            signers.write_text("")
            keys = [p for p in files if p.suffix in _KEY_SUFFIXES]
            fingerprints: list[str] = []
            if keys:
                if shutil.which("gpg") is None:
                    raise Stalled(
                        f"gpg is not installed, so the OpenPGP keys in {self.keys_dir} cannot be used"
                    )
                for key in keys:
                    _gpg(gnupghome, ["--import", str(key)], f"cannot import the key file {key}")
                fingerprints = _fingerprints(gnupghome)
                trust = "".join(f"{fpr}:6:\n" for fpr in fingerprints)
                _gpg(gnupghome, ["--import-ownertrust"], "cannot set owner trust", stdin=trust)
            for path in files:
                if path.name == ALLOWED_SIGNERS:
                    shutil.copyfile(path, signers)
            (tmp / "fingerprints").write_text("\n".join(fingerprints))
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def verify_commit(repo: git.Repo, sha: str, trust: TrustStore) -> Verdict:
    """The verdict on revision ``sha`` of ``repo`` against ``trust``."""
    try:
        raw = str(repo.git.cat_file("commit", sha))
    except git.GitCommandError as err:
        return Verdict(sha, "error", None, f"revision {sha} cannot be read: {err.stderr.strip()}")
    signature = _signature(raw)
    if signature is None:
        return Verdict(sha, "unsigned", None, f"revision {sha} is not signed")
    material = trust.material()
    if "BEGIN PGP SIGNATURE" not in signature and "BEGIN SSH SIGNATURE" not in signature:
        return Verdict(sha, "error", None, f"revision {sha} has a signature of an unsupported kind")
    if "BEGIN PGP SIGNATURE" in signature and shutil.which("gpg") is None:
        return Verdict(sha, "error", None, f"revision {sha} is OpenPGP-signed but gpg is missing")
    status, out, stderr = repo.git.execute(
        [
            "git",
            "-c",
            "gpg.program=gpg",
            "-c",
            "gpg.ssh.program=ssh-keygen",
            "-c",
            f"gpg.ssh.allowedSignersFile={material.allowed_signers}",
            "-c",
            "gpg.minTrustLevel=undefined",
            "verify-commit",
            "--raw",
            sha,
        ],
        env={"GNUPGHOME": str(material.gnupghome)},
        with_extended_output=True,
        with_exceptions=False,
    )
    text = f"{out}\n{stderr}"
    if "BEGIN PGP SIGNATURE" in signature:
        return _openpgp_verdict(sha, status, text)
    return _ssh_verdict(sha, status, text)


def _signature(raw: str) -> str | None:
    header = raw.split("\n\n", 1)[0]
    lines = header.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(("gpgsig ", "gpgsig-sha256 ")):
            block = [line.split(" ", 1)[1]]
            block += [c[1:] for c in lines[i + 1 :] if c.startswith(" ")]
            return "\n".join(block)
    return None


def _openpgp_verdict(sha: str, status: int, text: str) -> Verdict:
    status_lines = {m.group(1): m.group(2) for m in re.finditer(r"\[GNUPG:\] (\w+) ?(.*)", text)}
    if "BADSIG" in status_lines:
        who = status_lines["BADSIG"].split(" ", 1)[-1]
        return Verdict(sha, "bad-signature", None, f"revision {sha} has a bad signature ({who})")
    if "EXPKEYSIG" in status_lines:
        who = status_lines["EXPKEYSIG"]
        return Verdict(sha, "expired-key", who, f"revision {sha} is signed by an expired key {who}")
    if "REVKEYSIG" in status_lines:
        who = status_lines["REVKEYSIG"]
        return Verdict(sha, "revoked-key", who, f"revision {sha} is signed by a revoked key {who}")
    if "NO_PUBKEY" in status_lines or "ERRSIG" in status_lines:
        key = status_lines.get("NO_PUBKEY") or status_lines["ERRSIG"].split(" ", 1)[0]
        return Verdict(
            sha,
            "unknown-key",
            None,
            f"revision {sha} is signed by OpenPGP key {key}, which is not trusted",
        )
    if status == 0 and "GOODSIG" in status_lines and "VALIDSIG" in status_lines:
        uid = status_lines["GOODSIG"].split(" ", 1)[-1]
        primary = status_lines["VALIDSIG"].split()[-1]
        signer = f"{uid} ({primary})"
        return Verdict(sha, "trusted", signer, f"revision {sha} is signed by {signer}")
    return Verdict(sha, "error", None, f"revision {sha}: gpg gave no verdict: {_one_line(text)}")


def _ssh_verdict(sha: str, status: int, text: str) -> Verdict:
    good = re.search(r'Good "git" signature for (\S+) with (\S+) key (\S+)', text)
    if status == 0 and good:
        signer = f"{good.group(1)} ({good.group(2)} {good.group(3)})"
        return Verdict(sha, "trusted", signer, f"revision {sha} is signed by {signer}")
    if "No principal matched" in text:
        key = re.search(r"key (SHA256:\S+)", text)
        named = f"SSH key {key.group(1)}" if key else "an SSH key"
        return Verdict(
            sha, "unknown-key", None, f"revision {sha} is signed by {named}, which is not trusted"
        )
    if re.search(
        r"Signature verification failed|Could not verify signature|incorrect signature", text
    ):
        return Verdict(sha, "bad-signature", None, f"revision {sha} has a bad SSH signature")
    return Verdict(
        sha, "error", None, f"revision {sha}: ssh-keygen gave no verdict: {_one_line(text)}"
    )


def _gpg(home: Path, args: list[str], what: str, stdin: str | None = None) -> None:
    result = subprocess.run(
        ["gpg", "--batch", "--no-autostart", "--status-fd", "1", "--homedir", str(home), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GNUPGHOME": str(home)},
    )
    # Importing public keys needs no agent, yet gpg tries to reach one and exits 2 when it
    # cannot (e.g. a cache path too long for its socket): judge an import by its status lines.
    imported = "[GNUPG:] IMPORT_OK" in result.stdout
    importing = "--import" in args
    if (importing and not imported) or (not importing and result.returncode != 0):
        noise = ("agent", "Total number processed")
        reason = [ln for ln in result.stderr.splitlines() if not any(n in ln for n in noise)]
        raise Stalled(f"{what}: {_one_line(chr(10).join(reason)) or 'gpg failed'}")


def _fingerprints(home: Path) -> list[str]:
    out = subprocess.run(
        [
            "gpg",
            "--batch",
            "--no-autostart",
            "--homedir",
            str(home),
            "--with-colons",
            "--list-keys",
        ],
        capture_output=True,
        text=True,
        check=False,  # exits 2 when it cannot reach an agent it does not need; read the listing
    ).stdout
    fingerprints: list[str] = []
    primary = False
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            primary = True
        elif fields[0] == "sub":
            primary = False
        elif fields[0] == "fpr" and primary:
            fingerprints.append(fields[9])
            primary = False
    return fingerprints


def _one_line(text: str) -> str:
    return " ".join(text.split())
