"""``gitops.gitrepo.branches`` against a real bare repository: commits, leases, one-file puts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.gitrepo import branches as branches_module
from gitops.gitrepo.branches import Branches, BranchMoved
from gitops.gitrepo.mirror import Remote
from gitops.gitrepo.status import is_own_commit
from tests.adapters.bot.conftest import Repo
from tests.conftest import git


def test_a_commit_changes_only_the_given_paths_and_is_recognised_as_the_bots(
    repo: Repo, tmp_path: Path
) -> None:
    branches = Branches(tmp_path / "cache", Remote(repo.url))
    base = branches.fetch("main")
    assert base == repo.tip()
    commit = branches.commit(
        base,
        {"drift/a.yaml": "x: 1\n", "fleet.schema.json": None},
        "Drift in a",
        fleet_revision=base,
        plan_id="p1",
    )
    assert branches.changed_paths(base, commit) == ("drift/a.yaml", "fleet.schema.json")
    branches.push("gitops/drift/a", commit, expect=None)
    assert repo.tip("gitops/drift/a") == commit
    assert is_own_commit(branches.commit_info(commit))
    assert not is_own_commit(branches.commit_info(base))
    assert branches.read(commit, "drift/a.yaml") == b"x: 1\n"
    assert branches.read(commit, "nope") is None


def test_a_push_whose_lease_fails_never_overwrites_someone_elses_commit(
    repo: Repo, tmp_path: Path
) -> None:
    branches = Branches(tmp_path / "cache", Remote(repo.url))
    base = branches.fetch("main")
    assert base is not None
    ours = branches.commit(base, {"a": "1\n"}, "ours", fleet_revision=base, plan_id="p")
    branches.push("bot", ours, expect=None)
    human = repo.commit({"b": "2\n"}, "human", branch="bot")
    again = branches.commit(base, {"a": "3\n"}, "ours again", fleet_revision=base, plan_id="p")
    with pytest.raises(BranchMoved):
        branches.push("bot", again, expect=ours)
    with pytest.raises(BranchMoved):
        branches.push("bot", again, expect=None)
    assert repo.tip("bot") == human
    branches.delete("bot", expect=human)
    assert not repo.has("bot")


def test_put_keeps_the_other_files_and_commits_nothing_unchanged(
    repo: Repo, tmp_path: Path
) -> None:
    git(repo.bare, "branch", "gitops/status", "main")
    branches = Branches(tmp_path / "cache", Remote(repo.url))
    first = branches.put(
        "gitops/status", "plans/pr-1.md", "plan\n", "Plan", fleet_revision="h", plan_id="p"
    )
    assert repo.show(first, "plans/pr-1.md") == "plan\n"
    assert repo.show(first, "fleet.yaml") == repo.show("main", "fleet.yaml")
    same = branches.put(
        "gitops/status", "plans/pr-1.md", "plan\n", "Plan", fleet_revision="h", plan_id="p"
    )
    assert same == first == repo.tip("gitops/status")
    fresh = branches.put("new-branch", "x.md", "x\n", "X", fleet_revision="h", plan_id="p")
    assert repo.tip("new-branch") == fresh


def test_a_branch_moving_between_listing_and_fetching_answers_what_arrived(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A human pushes after our ``ls-remote`` and before our fetch: ``fetch`` names the commit
    that arrived (present here), and ``fetch_any`` still brings the listed head it was asked for."""
    branches = Branches(tmp_path / "cache", Remote(repo.url))
    listed = repo.commit({"a": "1\n"}, "listed", branch="topic")
    pushed: list[str] = []
    real_fetch = branches_module._command.fetch

    def racing_fetch(*args: object, **kwargs: object) -> object:
        if not pushed:
            pushed.append(repo.commit({"a": "2\n"}, "pushed meanwhile", branch="topic"))
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(branches_module._command, "fetch", racing_fetch)
    tip = branches.fetch("topic")
    assert tip == pushed[0] != listed and branches.has(tip)
    assert branches.read(tip, "a") == b"2\n"

    other = Branches(tmp_path / "other", Remote(repo.url))
    newest = repo.commit({"a": "3\n"}, "newest", branch="topic")
    pushed.clear()
    assert other.fetch_any(["refs/heads/topic"], newest) == "refs/heads/topic"
    assert other.has(newest) and other.read(newest, "a") == b"3\n"
