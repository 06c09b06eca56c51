"""Credentials reach git only through the environment; failures are typed and redacted."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

import git
import pytest

from gitops.errors import Stalled, Transient
from gitops.gitrepo import _command
from gitops.gitrepo.auth import Credentials, check_url, environment, redact, ssh_command
from gitops.gitrepo.mirror import Mirror, Remote
from tests.adapters.gitrepo.servers import free_port


def _config(env: dict[str, str]) -> dict[str, str]:
    return {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(env["GIT_CONFIG_COUNT"]))
    }


def test_an_https_token_becomes_a_header_scoped_to_the_remote(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-123\n")
    env, secrets = environment(
        "https://git.example.com:8443/acme/fleet.git", Credentials(token_file=tmp_path / "token")
    )
    header = _config(env)["http.https://git.example.com:8443/.extraHeader"]
    pair = base64.b64encode(b"x-access-token:tok-123").decode()
    assert header == f"Authorization: Basic {pair}"
    assert set(secrets) == {"tok-123", pair}
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_a_bearer_token_and_no_token_for_other_transports(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-123")
    creds = Credentials(token_file=tmp_path / "token", scheme="bearer")
    env, _ = environment("https://h/f.git", creds)
    assert _config(env)["http.https://h/.extraHeader"] == "Authorization: Bearer tok-123"
    for url in ("ssh://git@h/f.git", "git@h:f.git", "file:///srv/f.git", "/srv/f.git"):
        env, secrets = environment(url, creds)
        assert secrets == () and not any("extraHeader" in k for k in _config(env))


def test_a_token_file_that_is_missing_or_empty_is_stalled(tmp_path: Path) -> None:
    with pytest.raises(Stalled, match="cannot read the git token file"):
        environment("https://h/f.git", Credentials(token_file=tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(Stalled, match="is empty"):
        environment("https://h/f.git", Credentials(token_file=tmp_path / "empty"))
    with pytest.raises(Stalled, match="FLEET_TOKEN_UNSET"):
        environment("https://h/f.git", Credentials(token_env="FLEET_TOKEN_UNSET"))


def test_ssh_uses_our_key_and_known_hosts_strictly(tmp_path: Path) -> None:
    creds = Credentials(ssh_key_file=tmp_path / "id key", known_hosts_file=tmp_path / "known_hosts")
    env, _ = environment("ssh://git@h/f.git", creds)
    words = shlex.split(env["GIT_SSH_COMMAND"])
    assert (
        words[0] == "ssh"
        and ["-i", str(tmp_path / "id key")] == words[words.index("-i") : words.index("-i") + 2]
    )
    for option in (
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
    ):
        assert option in words
    assert env["GIT_SSH_COMMAND"] == ssh_command(creds)


def test_an_unreachable_ssh_remote_is_transient(tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("")
    creds = Credentials(ssh_key_file=tmp_path / "key", known_hosts_file=tmp_path / "known_hosts")
    remote = Remote(f"ssh://git@127.0.0.1:{free_port()}/fleet.git", credentials=creds)
    with pytest.raises(Transient, match="Connection refused"):
        Mirror(tmp_path / "cache", remote).sync()


def test_redact_scrubs_secrets_and_url_passwords() -> None:
    text = "fatal: https://bot:hunter2@h/x failed with header Basic Ym90Omh1bnRlcjI= tok-9"
    assert redact(text, ["tok-9", "Ym90Omh1bnRlcjI="]) == (
        "fatal: https://bot:<redacted>@h/x failed with header Basic <redacted> <redacted>"
    )
    with pytest.raises(Stalled, match="embeds a password"):
        check_url("https://bot:hunter2@h/x.git")
    check_url("ssh://git@h/x.git")
    check_url("https://bot@h/x.git")


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("fatal: unable to access 'https://h/': Could not resolve host: h", Transient),
        (
            "fatal: unable to access 'https://h/': Failed to connect to h port 443: Connection refused",
            Transient,
        ),
        ("fatal: unable to access 'https://h/': The requested URL returned error: 503", Transient),
        ("error: RPC failed; curl 18 transfer closed\nfatal: early EOF", Transient),
        ('Timeout: the command "git fetch" did not complete in 5 secs.', Transient),
        ("fatal: Authentication failed for 'https://h/f.git/'", Stalled),
        ("fatal: unable to access 'https://h/': The requested URL returned error: 403", Stalled),
        ("fatal: could not read Username for 'https://h': terminal prompts disabled", Stalled),
        (
            "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            Stalled,
        ),
        ("Host key verification failed.\nfatal: Could not read from remote repository.", Stalled),
        ("fatal: '/srv/x' does not appear to be a git repository", Stalled),
        ("fatal: couldn't find remote ref refs/heads/nope", Stalled),
        ("something nobody has seen before", Transient),
    ],
)
def test_git_failures_are_classified(stderr: str, kind: type[Exception]) -> None:
    error = _command.translate(git.GitCommandError(["git", "fetch"], 128, stderr), "cannot fetch")
    assert type(error) is kind
    assert str(error).startswith("cannot fetch: ") and "\n" not in str(error)
