"""``gitops plan --pr N``: the CI job's view, against the simulator and a fake Gitea.

The working directory is the pull request's head (a worktree of the bare repository); the
plan is of that head against the simulated live fleet; the forge is reached over HTTP.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitops.bot import markers
from tests.adapters.bot.conftest import SLUG, Hub, start_hub
from tests.adapters.commands.conftest import Served, run
from tests.conftest import git

CANARY = "clusters/canary-eu-1.yaml"


@pytest.fixture
def gitea(repo, tmp_path: Path) -> Iterator[Hub]:  # type: ignore[no-untyped-def]
    yield from start_hub("gitea", repo, tmp_path)


def checkout(hub: Hub, branch: str, tmp_path: Path) -> Path:
    """The pull request's head as CI checks it out."""
    out = tmp_path / f"ci-{branch}"
    shutil.rmtree(out, ignore_errors=True)
    git(hub.repo.bare, "worktree", "add", "-q", "--detach", str(out), f"refs/heads/{branch}")
    return out


def plan_pr(hub: Hub, served: Served, head: Path, number: int, *extra: str):  # type: ignore[no-untyped-def]
    return run(
        "plan",
        "--fleet",
        str(head),
        "--kubeconfig",
        served.kubeconfig,
        "--pr",
        str(number),
        "--forge",
        hub.kind,
        "--forge-url",
        hub.server.root,
        "--forge-token-file",
        str(hub.token_file),
        "--repo-slug",
        SLUG,
        "--status-repo",
        hub.repo.url,
        *extra,
    )


def test_plan_pr_posts_once_and_sends_nothing_when_unchanged(
    gitea: Hub, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(initial="previous")
    gitea.repo.commit({"README.md": "a change\n"}, "docs", branch="docs")
    number = gitea.open_pull("docs")
    head = checkout(gitea, "docs", tmp_path)
    sha = gitea.repo.tip("docs")

    first = plan_pr(gitea, served, head, number, "-o", "json")
    assert first.code == 2, first.err
    assert "plan comment posted" in first.err
    (comment,) = gitea.server.comments(number)
    fields = markers.find(comment.body, "plan")
    assert fields == {"head": sha, "plan": first.json()["id"]}
    contexts = sorted(s.context for s in gitea.server.statuses(sha))
    assert contexts == [
        "gitops/plan/canary-eu-1",
        "gitops/plan/prod-eu-1",
        "gitops/plan/prod-us-1",
        "gitops/plan/staging-eu-1",
    ]

    gitea.server.clear_requests()
    again = plan_pr(gitea, served, head, number)
    assert again.code == 2
    assert "already current; nothing sent" in again.err
    assert gitea.writes() == []


def test_plan_pr_on_an_invalid_head_comments_the_problems_and_exits_1(
    gitea: Hub, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve()
    main = gitea.repo.show("main", CANARY)
    gitea.repo.commit({CANARY: main.replace("replicas: 3", "replicas: -3")}, "oops", branch="bad")
    number = gitea.open_pull("bad")
    result = plan_pr(gitea, served, checkout(gitea, "bad", tmp_path), number)
    assert result.code == 1
    (comment,) = gitea.server.comments(number)
    assert "clusters/canary-eu-1.yaml:" in comment.body and "is invalid" in comment.body
    sha = gitea.repo.tip("bad")
    assert {s.state for s in gitea.server.statuses(sha)} <= {"failure"}
    assert len(gitea.server.statuses(sha)) == 4


def test_forge_flags_without_pr_are_refused(gitea: Hub) -> None:
    result = run(
        "plan",
        "--fleet",
        ".",
        "--forge",
        "gitea",
        "--forge-url",
        gitea.server.root,
        "--forge-token-file",
        str(gitea.token_file),
        "--repo-slug",
        SLUG,
    )
    assert result.code == 1
    assert "--pr" in result.err


def test_pr_without_the_forge_flags_is_refused() -> None:
    result = run("plan", "--fleet", ".", "--pr", "3", "--forge", "github")
    assert result.code == 1
    assert "missing --forge-token-file, --repo-slug" in result.err


def test_plan_pr_on_a_converged_cluster_selection_exits_0(
    gitea: Hub, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve()
    gitea.repo.commit({"README.md": "a change\n"}, "docs", branch="docs")
    number = gitea.open_pull("docs")
    head = checkout(gitea, "docs", tmp_path)
    result = plan_pr(gitea, served, head, number, "-o", "json", "--cluster", "prod-eu-1")
    assert result.code == 0, result.out + result.err
    assert result.json()["status"] == "converged"
