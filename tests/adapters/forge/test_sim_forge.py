"""The stand-in forge's test side: what the demo and the tests drive directly.

Tool tier: pushes, merges, other people's comments and an injected sha resolver, seen through
the GitHub adapter as a bot would see them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gitops.forge import Forge, NotFound
from gitops.sim.forges import FakeForge, FakeGitHub

from .conftest import TOKEN

Make = Callable[..., tuple[FakeForge, Forge]]


def test_a_push_moves_the_head_of_the_open_pull_request(make_forge: Make) -> None:
    fake, forge = make_forge("github")
    fake.set_branch("gitops/drift", "1" * 40)
    pr = forge.open_pull_request(head_ref="gitops/drift", base_ref="main", title="T", body="")
    assert pr.head_sha == "1" * 40
    fake.set_branch("gitops/drift", "2" * 40)
    assert forge.pull_request(pr.number).head_sha == "2" * 40


def test_merge_from_the_test_side(make_forge: Make) -> None:
    fake, forge = make_forge("github")
    pr = forge.open_pull_request(head_ref="x", base_ref="main", title="T", body="")
    fake.merge(pr.number)
    assert forge.pull_request(pr.number).state == "merged"
    assert forge.find_pull_request("x") is None
    with pytest.raises(ValueError, match="only an open one merges"):
        fake.merge(pr.number)


def test_resolver_gives_head_shas_and_unknown_repos_are_404(make_forge: Make) -> None:
    fake, forge = make_forge("github", resolve_sha=lambda slug, branch: f"{branch:0>40}")
    pr = forge.open_pull_request(head_ref="abc", base_ref="main", title="T", body="")
    assert pr.head_sha == "0" * 37 + "abc"
    fake.add_repo("acme/new")
    assert [p.number for p in fake.pulls()] == [1]
    assert fake.pulls(repo="acme/new") == []
    with FakeGitHub(["acme/only"], token=TOKEN) as other:
        assert other.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not started"):
        _ = other.url


def test_request_log_records_method_path_query_body_headers(make_forge: Make) -> None:
    fake, forge = make_forge("gitea")
    with pytest.raises(NotFound):
        forge.create_comment(5, "hi")
    (req,) = fake.requests
    assert (req.method, req.path, req.query, req.body, req.status) == (
        "POST",
        "/api/v1/repos/acme/fleet/issues/5/comments",
        {},
        {"body": "hi"},
        404,
    )
    assert req.headers["authorization"] == f"token {TOKEN}"
