"""One-shot checkouts of a fleet repository (``--repo URL[#ref]``) against real repositories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.errors import Stalled
from gitops.fleet import load
from gitops.gitrepo.checkout import clone, split_url
from tests.conftest import git


def test_clone_default_branch_over_file_url(
    fleet_remote: Callable[..., tuple[Path, Path]], tmp_path: Path
) -> None:
    bare, work = fleet_remote()
    checkout = clone(f"file://{bare}", tmp_path / "out")
    assert checkout.revision == git(work, "rev-parse", "HEAD")
    assert load(checkout.path).name == "acme"


def test_clone_a_branch_and_a_commit(
    fleet_remote: Callable[..., tuple[Path, Path]], tmp_path: Path
) -> None:
    bare, work = fleet_remote()
    first = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "bump")
    (work / "clusters" / "canary-eu-1.yaml").write_text(
        (work / "clusters" / "canary-eu-1.yaml").read_text().replace("replicas: 4", "replicas: 5")
    )
    git(work, "commit", "-qam", "Grow canary")
    git(work, "push", "-q", "origin", "bump")
    on_branch = clone(f"{bare}#bump", tmp_path / "branch")
    assert on_branch.revision == git(work, "rev-parse", "HEAD")
    at_commit = clone(f"{bare}#{first}", tmp_path / "commit")
    assert at_commit.revision == first


def test_bad_url_or_ref_is_stalled_with_the_reason(
    fleet_remote: Callable[..., tuple[Path, Path]], tmp_path: Path
) -> None:
    bare, _ = fleet_remote()
    with pytest.raises(Stalled, match=r"cannot clone .*#no-such-branch"):
        clone(f"{bare}#no-such-branch", tmp_path / "x")
    with pytest.raises(Stalled, match="cannot clone"):
        clone(str(tmp_path / "missing.git"), tmp_path / "y")


def test_split_url() -> None:
    assert split_url("https://example.com/fleet.git#v1") == ("https://example.com/fleet.git", "v1")
    assert split_url("/srv/fleet") == ("/srv/fleet", "")
