"""Web addresses on each forge: a repository's page from a pull request's, a file at a commit.

Part of the bot's pure core. The forge interface gives each pull request's web address; the
repository's address is that minus the platform's pull-request suffix, and a file at a commit
has one documented path shape per platform (GitHub ``/blob/<sha>/<path>``, GitLab
``/-/blob/<sha>/<path>``, Gitea and Forgejo ``/src/commit/<sha>/<path>``), and so has a commit
(``/commit/<sha>``, GitLab ``/-/commit/<sha>``). A permalink names
the commit, so it stays true when the branch moves on.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_PULL_SUFFIX = {
    "github": re.compile(r"/pull/\d+/?$"),
    "gitlab": re.compile(r"/-/merge_requests/\d+/?$"),
    "gitea": re.compile(r"/pulls/\d+/?$"),
}
_COMMIT = {
    "github": "{repo}/commit/{sha}",
    "gitlab": "{repo}/-/commit/{sha}",
    "gitea": "{repo}/commit/{sha}",
}
_FILE = {
    "github": "{repo}/blob/{sha}/{path}",
    "gitlab": "{repo}/-/blob/{sha}/{path}",
    "gitea": "{repo}/src/commit/{sha}/{path}",
}


def repository_url(kind: str, pull_url: str) -> str:
    """The repository's web page, from one of its pull requests' pages ("" when unrecognised)."""
    pattern = _PULL_SUFFIX.get(kind)
    if pattern is None or not pattern.search(pull_url):
        return ""
    return pattern.sub("", pull_url)


def file_url(kind: str, repository: str, sha: str, path: str) -> str:
    """A permalink to ``path`` at commit ``sha`` ("" when the repository's page is unknown)."""
    if not repository or kind not in _FILE:
        return ""
    return _FILE[kind].format(repo=repository.rstrip("/"), sha=sha, path=quote(path))


def commit_url(kind: str, repository: str, sha: str) -> str:
    """The page of commit ``sha`` ("" when the repository's page is unknown)."""
    if not repository or kind not in _COMMIT:
        return ""
    return _COMMIT[kind].format(repo=repository.rstrip("/"), sha=sha)
