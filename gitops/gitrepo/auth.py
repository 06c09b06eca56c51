"""Credentials for talking to the fleet repository's remote, and redaction of secrets.

Adapter layer, used by every git command of the fetch phase (mirror, ls-remote) and of the report
phase (status-branch push). It turns a :class:`Credentials` into process environment for git:

- https: the token (read fresh from a file or an environment variable on every call, so a rotated
  Secret is picked up) travels as an ``Authorization`` header through ``http.<url>.extraHeader``
  given in ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment variables;
- ssh: ``GIT_SSH_COMMAND`` with the key file, ``StrictHostKeyChecking=yes`` and the given
  ``UserKnownHostsFile``, in batch mode so ssh never prompts.

It must never write a secret into a URL, into ``.git/config``, onto a command line (visible in
``ps``), or into a log line or error message: :func:`redact` scrubs every message that leaves the
adapter.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from gitops.errors import Stalled

REDACTED = "<redacted>"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to the remote; all fields optional (anonymous by default).

    ``scheme`` chooses the https header: ``basic`` sends ``username:token`` (what GitHub,
    GitLab and Gitea accept for tokens: ``x-access-token``, ``oauth2``, any name), ``bearer``
    sends ``Bearer <token>``.
    """

    token_file: Path | None = None
    token_env: str | None = None
    username: str = "x-access-token"
    scheme: Literal["basic", "bearer"] = "basic"
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    connect_timeout: int = 20

    def token(self) -> str | None:
        """The current token, or None when none is configured; a missing source is Stalled."""
        if self.token_file is not None:
            try:
                value = self.token_file.read_text().strip()
            except OSError as err:
                raise Stalled(f"cannot read the git token file {self.token_file}: {err}") from err
            if not value:
                raise Stalled(f"the git token file {self.token_file} is empty")
            return value
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise Stalled(
                    f"the environment variable {self.token_env} holding the git token is unset or empty"
                )
            return value
        return None

    def authorization(self, token: str) -> str:
        """The ``Authorization`` header value carrying ``token``."""
        if self.scheme == "bearer":
            return f"Bearer {token}"
        pair = base64.b64encode(f"{self.username}:{token}".encode()).decode()
        return f"Basic {pair}"


def check_url(url: str) -> None:
    """Refuse a URL carrying a password: tokens belong in a file or the environment."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.password:
        raise Stalled(
            f"the repository URL {redact(url)} embeds a password; give the token with a token "
            "file or environment variable instead"
        )


def environment(url: str, credentials: Credentials) -> tuple[dict[str, str], tuple[str, ...]]:
    """Process environment for git talking to ``url``, and the secrets to redact from its output."""
    env: dict[str, str] = {
        "GIT_TERMINAL_PROMPT": "0",  # fail instead of prompting for a password
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
    }
    config: list[tuple[str, str]] = [
        # A transfer slower than 1 KB/s for a minute is a dead connection, not a slow one.
        ("http.lowSpeedLimit", "1000"),
        ("http.lowSpeedTime", "60"),
    ]
    secrets: list[str] = []
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        token = credentials.token()
        if token is not None:
            header = credentials.authorization(token)
            # Scoped to this scheme, host and port so a redirect elsewhere never gets the token.
            scope = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
            config.append((f"http.{scope}.extraHeader", f"Authorization: {header}"))
            secrets += [token, header.split(" ", 1)[1]]
    if credentials.ssh_key_file is not None or credentials.known_hosts_file is not None:
        env["GIT_SSH_COMMAND"] = ssh_command(credentials)
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env, tuple(secrets)


def ssh_command(credentials: Credentials) -> str:
    """``GIT_SSH_COMMAND``: our key only, known hosts checked strictly, never a prompt."""
    words = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    words += ["-o", f"ConnectTimeout={credentials.connect_timeout}"]
    if credentials.known_hosts_file is not None:
        words += ["-o", f"UserKnownHostsFile={credentials.known_hosts_file}"]
        words += ["-o", "GlobalKnownHostsFile=/dev/null"]
    if credentials.ssh_key_file is not None:
        words += ["-i", str(credentials.ssh_key_file), "-o", "IdentitiesOnly=yes"]
    return shlex.join(words)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret and every password in a URL replaced by ``<redacted>``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return _URL_USERINFO.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
