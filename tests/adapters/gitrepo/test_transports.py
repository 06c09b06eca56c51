"""The mirror and the status writer over the network: ``git daemon`` and ``git http-backend``.

The HTTP server requires a token and logs every request, so these tests prove from the server's
side that token auth works, that the token never lands on disk, and that an unmoved remote costs
one ref listing and no fetch.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gitops.errors import GitopsError, Stalled
from gitops.gitrepo.auth import Credentials
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import StatusWriter
from tests.adapters.gitrepo.conftest import TOKEN, Upstream
from tests.adapters.gitrepo.servers import GitDaemon, GitHttpServer


def _token_file(tmp_path: Path, token: str = TOKEN) -> Path:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return path


def _files_containing(root: Path, needle: str) -> list[Path]:
    encoded = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and encoded in p.read_bytes()]


def test_git_daemon_clone_fetch_force_push_and_unchanged(
    upstream: Upstream, daemon: GitDaemon, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(daemon.url("fleet.git")), depth=1)
    first = mirror.sync()
    assert first.revision == upstream.tip()
    assert mirror.sync().fetched is False
    new = upstream.publish(3)
    assert mirror.sync().revision == new
    rewritten = upstream.rewrite(2)
    result = mirror.sync()
    assert (result.revision, result.forced, result.previous) == (rewritten, True, new)
    assert mirror.snapshot(rewritten).path.is_dir()


def test_git_daemon_status_writes(upstream: Upstream, daemon: GitDaemon, tmp_path: Path) -> None:
    main = upstream.tip()
    writer = StatusWriter(tmp_path / "cache", Remote(daemon.url("fleet.git")))
    result = writer.write(
        {"README.md": "# Fleet\n"}, "Fleet status", fleet_revision=main or "", plan_id="p1"
    )
    assert result.committed and result.created_branch
    assert upstream.tip("gitops/status") == result.revision
    assert upstream.tip() == main


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_https_token_auth_from_a_file_never_lands_on_disk(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path, scheme: str
) -> None:
    credentials = Credentials(token_file=_token_file(tmp_path), scheme=scheme)  # type: ignore[arg-type]
    remote = Remote(http_server.url("fleet.git"), credentials=credentials)
    mirror = Mirror(tmp_path / "cache", remote)
    assert mirror.sync().revision == upstream.tip()
    writer = StatusWriter(tmp_path / "cache", remote)
    assert writer.write({"a.yaml": "a: 1\n"}, "Status", fleet_revision="r", plan_id="p").committed
    assert upstream.tip("gitops/status") is not None
    assert all(r.status != 401 for r in http_server.requests)
    assert {r.authorization.split()[0] for r in http_server.requests if r.authorization} == {
        scheme.capitalize()
    }
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert _files_containing(tmp_path / "cache", TOKEN) == []
    assert _files_containing(tmp_path / "cache", basic) == []


def test_https_token_from_the_environment_is_read_on_every_call(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_TOKEN", TOKEN)
    remote = Remote(http_server.url("fleet.git"), credentials=Credentials(token_env="FLEET_TOKEN"))
    mirror = Mirror(tmp_path / "cache", remote)
    mirror.sync()
    monkeypatch.setenv("FLEET_TOKEN", "revoked")
    with pytest.raises(Stalled, match=r"401|Authentication failed|could not read Username"):
        mirror.sync()


def test_https_without_a_token_is_stalled(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    with pytest.raises(Stalled):
        Mirror(tmp_path / "cache", Remote(http_server.url("fleet.git"))).sync()
    assert http_server.requests and all(r.status == 401 for r in http_server.requests)


def test_an_unmoved_remote_costs_one_ref_listing_and_no_fetch(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    remote = Remote(
        http_server.url("fleet.git"), credentials=Credentials(token_file=_token_file(tmp_path))
    )
    mirror = Mirror(tmp_path / "cache", remote)
    mirror.sync()
    assert "fetch" in http_server.commands()
    http_server.requests.clear()
    assert mirror.sync().fetched is False
    assert http_server.commands() == ["ls-refs"]
    upstream.publish()
    http_server.requests.clear()
    assert mirror.sync().fetched is True
    assert http_server.commands()[0] == "ls-refs" and "fetch" in http_server.commands()


def test_a_remote_echoing_the_token_gets_it_redacted(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    http_server.error_message = "no access for"
    remote = Remote(
        http_server.url("fleet.git"), credentials=Credentials(token_file=_token_file(tmp_path))
    )
    with pytest.raises(GitopsError) as caught:
        Mirror(tmp_path / "cache", remote).sync()
    message = str(caught.value)
    assert "no access for" in message and "<redacted>" in message
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert TOKEN not in message and basic not in message


def test_a_url_with_a_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    with pytest.raises(Stalled, match="embeds a password") as caught:
        Mirror(tmp_path / "cache", Remote(f"https://bot:{TOKEN}@example.com/fleet.git"))
    assert TOKEN not in str(caught.value)
