"""Commit signature verification verdicts with throwaway OpenPGP and SSH keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops.errors import Stalled
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.verify import TrustStore
from tests.adapters.gitrepo.conftest import Signers, Upstream, run_git


def _publish_signed(upstream: Upstream, args: list[str], env: dict[str, str]) -> str:
    sha = upstream.commit(sign=args, env=env)
    upstream.push()
    return sha


@pytest.fixture
def mirror(upstream: Upstream, tmp_path: Path) -> Mirror:
    return Mirror(tmp_path / "cache", Remote(upstream.path))


@pytest.fixture
def trust(signers: Signers, tmp_path: Path) -> TrustStore:
    return TrustStore(signers.keys_dir, tmp_path / "cache" / "trust")


def test_a_commit_signed_by_a_trusted_openpgp_key_is_trusted(
    upstream: Upstream, mirror: Mirror, trust: TrustStore, signers: Signers
) -> None:
    sha = _publish_signed(upstream, *signers.gpg(signers.alice))
    verdict = mirror.verify(mirror.sync().revision, trust)
    assert verdict.trusted and verdict.kind == "trusted"
    assert verdict.sha == sha
    assert verdict.signer is not None and signers.alice in verdict.signer
    assert "alice@example.com" in verdict.signer


def test_a_commit_signed_by_a_trusted_ssh_key_is_trusted(
    upstream: Upstream, mirror: Mirror, trust: TrustStore, signers: Signers
) -> None:
    _publish_signed(upstream, *signers.ssh(signers.bob_key))
    verdict = mirror.verify(mirror.sync().revision, trust)
    assert verdict.trusted
    assert verdict.signer is not None and verdict.signer.startswith(
        "bob@example.com (ED25519 SHA256:"
    )


@pytest.mark.parametrize("who", ["mallory", "eve"])
def test_a_commit_signed_by_an_unknown_key_is_not_trusted(
    upstream: Upstream, mirror: Mirror, trust: TrustStore, signers: Signers, who: str
) -> None:
    args, env = signers.gpg(signers.mallory) if who == "mallory" else signers.ssh(signers.eve_key)
    sha = _publish_signed(upstream, args, env)
    verdict = mirror.verify(mirror.sync().revision, trust)
    assert (verdict.trusted, verdict.kind, verdict.signer) == (False, "unknown-key", None)
    assert sha in verdict.reason and "not trusted" in verdict.reason


def test_an_unsigned_commit_is_not_trusted(
    upstream: Upstream, mirror: Mirror, trust: TrustStore
) -> None:
    sha = upstream.publish()
    verdict = mirror.verify(mirror.sync().revision, trust)
    assert (verdict.trusted, verdict.kind) == (False, "unsigned")
    assert verdict.reason == f"revision {sha} is not signed"


@pytest.mark.parametrize("kind", ["gpg", "ssh"])
def test_a_tampered_commit_has_a_bad_signature(
    upstream: Upstream, mirror: Mirror, trust: TrustStore, signers: Signers, kind: str
) -> None:
    args, env = signers.gpg(signers.alice) if kind == "gpg" else signers.ssh(signers.bob_key)
    sha = _publish_signed(upstream, args, env)
    raw = run_git(upstream.bare, "cat-file", "commit", sha)
    forged_text = raw.replace("Change", "Forged change") + "\n"
    forged_file = upstream.work / "forged"
    forged_file.write_text(forged_text)
    forged = run_git(upstream.bare, "hash-object", "-t", "commit", "-w", str(forged_file))
    run_git(upstream.bare, "update-ref", "refs/heads/main", forged)
    verdict = mirror.verify(mirror.sync().revision, trust)
    assert (verdict.trusted, verdict.kind, verdict.sha) == (False, "bad-signature", forged)


def test_removing_a_key_from_the_directory_revokes_its_trust(
    upstream: Upstream, mirror: Mirror, signers: Signers, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    shutil.copytree(signers.keys_dir, keys)
    trust = TrustStore(keys, tmp_path / "cache" / "trust")
    _publish_signed(upstream, *signers.gpg(signers.alice))
    sha = mirror.sync().revision
    assert mirror.verify(sha, trust).trusted
    (keys / "alice.asc").unlink()
    assert mirror.verify(sha, trust).kind == "unknown-key"
    assert len(list((tmp_path / "cache" / "trust").iterdir())) == 1  # the old keyring is gone


def test_the_private_keyring_lives_under_the_cache_and_never_in_the_users(
    upstream: Upstream,
    mirror: Mirror,
    trust: TrustStore,
    signers: Signers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_home = tmp_path / "user-gnupg"
    monkeypatch.setenv("GNUPGHOME", str(user_home))
    _publish_signed(upstream, *signers.gpg(signers.alice))
    assert mirror.verify(mirror.sync().revision, trust).trusted
    material = trust.material()
    assert material.gnupghome.is_relative_to(tmp_path / "cache" / "trust")
    assert material.fingerprints == (signers.alice,)
    assert not user_home.exists()


def test_verification_works_under_a_cache_path_too_long_for_a_gpg_socket(
    upstream: Upstream, signers: Signers, tmp_path: Path
) -> None:
    cache = tmp_path / ("deep" * 30) / "cache"
    mirror = Mirror(cache, Remote(upstream.path))
    _publish_signed(upstream, *signers.gpg(signers.alice))
    verdict = mirror.verify(mirror.sync().revision, TrustStore(signers.keys_dir, cache / "trust"))
    assert verdict.trusted, verdict.reason


def test_an_empty_or_missing_keys_directory_is_stalled(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Stalled, match="no revision could ever be trusted"):
        TrustStore(tmp_path / "empty", tmp_path / "trust").material()
    with pytest.raises(Stalled, match="does not exist"):
        TrustStore(tmp_path / "missing", tmp_path / "trust").material()


def test_a_broken_key_file_is_stalled(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "broken.asc").write_text("not a key\n")
    with pytest.raises(Stalled, match=r"cannot import the key file .*broken\.asc"):
        TrustStore(tmp_path / "keys", tmp_path / "trust").material()
