"""The GitHub adapter sends GitHub's documented requests (REST v3) and reads its answers.

Adapter tier: every method of ``Forge`` against ``FakeGitHub`` over real HTTP, asserting the
exact method, path, query and JSON body the server received, and what came back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gitops.forge import (
    AlreadyExists,
    CommitStatus,
    Forge,
    GitHub,
    Invalid,
    Limiters,
    NotFound,
    connect,
)
from gitops.sim.forges import FakeForge, FakeGitHub

from .conftest import SLUG, TOKEN, last

Make = Callable[..., tuple[FakeForge, Forge]]


@pytest.fixture
def gh(make_forge: Make) -> tuple[FakeForge, Forge]:
    return make_forge("github")


def test_open_pull_request_posts_title_head_base_body(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.set_branch("gitops/drift-1", "a" * 40)
    pr = forge.open_pull_request(head_ref="gitops/drift-1", base_ref="main", title="T", body="B")
    req = last(fake)
    assert (req.method, req.path) == ("POST", "/repos/acme/fleet/pulls")
    assert req.body == {"title": "T", "head": "gitops/drift-1", "base": "main", "body": "B"}
    assert req.status == 201
    assert pr.number == 1 and pr.state == "open"
    assert (pr.head_ref, pr.head_sha, pr.base_ref) == ("gitops/drift-1", "a" * 40, "main")
    assert pr.url.endswith("/acme/fleet/pull/1") and pr.author == "gitops-bot"


def test_open_pull_request_twice_is_already_exists_with_githubs_message(
    gh: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gh
    forge.open_pull_request(head_ref="gitops/x", base_ref="main", title="T", body="")
    with pytest.raises(AlreadyExists) as e:
        forge.open_pull_request(head_ref="gitops/x", base_ref="main", title="T", body="")
    assert e.value.status == 422
    assert "A pull request already exists for acme:gitops/x." in e.value.platform_message
    assert last(fake).status == 422


def test_pull_request_reads_one_and_merged_means_merged_at(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("feature", title="Feature", body="text")
    fake.merge(1)
    pr = forge.pull_request(1)
    assert (last(fake).method, last(fake).path) == ("GET", "/repos/acme/fleet/pulls/1")
    assert pr.state == "merged" and pr.title == "Feature" and pr.body == "text"


def test_pull_request_missing_is_not_found_with_message(gh: tuple[FakeForge, Forge]) -> None:
    _, forge = gh
    with pytest.raises(NotFound) as e:
        forge.pull_request(7)
    assert e.value.status == 404 and e.value.platform_message == "Not Found"
    assert "/repos/acme/fleet/pulls/7" in str(e.value)


def test_pull_requests_lists_state_with_the_largest_page(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("a")
    fake.open_pull("b")
    forge.close_pull_request(1)
    assert [p.number for p in forge.pull_requests()] == [2]
    assert last(fake).query == {"state": "open", "per_page": "100"}
    assert [(p.number, p.state) for p in forge.pull_requests(state="all")] == [
        (1, "closed"),
        (2, "open"),
    ]
    assert last(fake).query == {"state": "all", "per_page": "100"}


def test_find_pull_request_filters_by_owner_and_branch(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("other")
    fake.open_pull("gitops/drift")
    found = forge.find_pull_request("gitops/drift")
    # The fake, like GitHub, ignores a head filter not of the form owner:branch and lists
    # every pull request: an adapter sending the bare branch would find #1 here.
    assert found is not None and found.number == 2
    req = last(fake)
    assert (req.method, req.path) == ("GET", "/repos/acme/fleet/pulls")
    assert req.query == {"state": "open", "head": "acme:gitops/drift", "per_page": "100"}
    assert forge.find_pull_request("nothing") is None


def test_update_pull_request_patches_only_what_is_given(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("a", title="old", body="old body")
    pr = forge.update_pull_request(1, body="new body")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "PATCH",
        "/repos/acme/fleet/pulls/1",
        {"body": "new body"},
    )
    assert (pr.title, pr.body) == ("old", "new body")
    forge.update_pull_request(1, title="new")
    assert last(fake).body == {"title": "new"}


def test_close_pull_request_patches_state_closed(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("a")
    pr = forge.close_pull_request(1)
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "PATCH",
        "/repos/acme/fleet/pulls/1",
        {"state": "closed"},
    )
    assert pr.state == "closed" and fake.pull(1).state == "closed"


def test_comments_create_update_list_use_the_issue_endpoints(gh: tuple[FakeForge, Forge]) -> None:
    fake, forge = gh
    fake.open_pull("a")
    fake.add_comment(1, "a human says hi", author="alice")
    created = forge.create_comment(1, "plan v1")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "POST",
        "/repos/acme/fleet/issues/1/comments",
        {"body": "plan v1"},
    )
    updated = forge.update_comment(1, created.id, "plan v2")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "PATCH",
        f"/repos/acme/fleet/issues/comments/{created.id}",
        {"body": "plan v2"},
    )
    assert updated.id == created.id and updated.body == "plan v2"
    listed = forge.comments(1)
    assert (last(fake).method, last(fake).path) == ("GET", "/repos/acme/fleet/issues/1/comments")
    assert [(c.author, c.body) for c in listed] == [
        ("alice", "a human says hi"),
        ("gitops-bot", "plan v2"),
    ]
    assert listed[1].url.endswith(f"#issuecomment-{created.id}")


def test_commit_status_posts_state_context_and_reads_the_combined_status(
    gh: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gh
    sha = "b" * 40
    forge.set_commit_status(
        CommitStatus(sha, "gitops/plan", "pending", "planning", "https://ci.example/1")
    )
    req = last(fake)
    assert (req.method, req.path) == ("POST", f"/repos/acme/fleet/statuses/{sha}")
    assert req.body == {
        "state": "pending",
        "context": "gitops/plan",
        "description": "planning",
        "target_url": "https://ci.example/1",
    }
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "failure", "x" * 300))
    assert last(fake).body["description"] == "x" * 140  # GitHub refuses a longer one
    forge.set_commit_status(CommitStatus(sha, "gitops/drift", "success"))
    assert "target_url" not in last(fake).body
    statuses = forge.commit_statuses(sha)
    req = last(fake)
    assert (req.method, req.path) == ("GET", f"/repos/acme/fleet/commits/{sha}/status")
    assert [(s.context, s.state) for s in statuses] == [
        ("gitops/drift", "success"),
        ("gitops/plan", "failure"),
    ]
    assert len(fake.statuses(sha)) == 3  # history kept by the server, latest read back


def test_enterprise_base_url_keeps_its_path_prefix(
    make_forge: Make, limiters: Limiters, token_file: Path
) -> None:
    with FakeGitHub([SLUG], token=TOKEN, prefix="/api/v3") as fake:
        assert fake.url.endswith("/api/v3")
        with connect("github", fake.url, str(token_file), SLUG, limiters=limiters) as forge:
            forge.open_pull_request(head_ref="x", base_ref="main", title="T", body="")
            assert forge.pull_requests()[0].number == 1
        assert [r.path for r in fake.requests] == [
            "/api/v3/repos/acme/fleet/pulls",
            "/api/v3/repos/acme/fleet/pulls",
        ]
        assert all(r.status < 400 for r in fake.requests)


def test_github_requests_carry_bearer_token_version_and_user_agent(
    gh: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gh
    forge.pull_requests()
    headers = last(fake).headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("gitops/")
    assert isinstance(forge, GitHub) and forge.max_body_chars == 65_536


def _numbers(fake: FakeForge, **params: str) -> list[int]:
    answer = httpx.get(
        f"{fake.url}/repos/acme/fleet/pulls",
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200
    return [int(p["number"]) for p in answer.json()]


def test_fake_filters_head_only_in_the_owner_branch_form_as_github_does(
    gh: tuple[FakeForge, Forge],
) -> None:
    # GitHub documents ``head`` as ``user:ref-name`` and ignores any other value: a bare
    # branch name lists every pull request, so an adapter sending it picks the wrong one.
    fake, _ = gh
    fake.open_pull("other")
    fake.open_pull("gitops/drift")
    assert _numbers(fake, head="gitops/drift") == [2, 1]
    assert _numbers(fake, head="acme:gitops/drift") == [2]
    assert _numbers(fake, head="ACME:gitops/drift") == [2]  # logins are case-insensitive
    assert _numbers(fake, head="someone-else:gitops/drift") == []
    assert _numbers(fake, head="acme:nothing") == []


def test_fake_refuses_a_pull_request_from_a_branch_onto_itself(
    gh: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gh
    with pytest.raises(Invalid) as e:
        forge.open_pull_request(head_ref="main", base_ref="main", title="T", body="")
    assert e.value.status == 422
    assert "No commits between main and main" in e.value.platform_message
    assert fake.pulls() == []


def test_fake_refuses_more_than_1000_statuses_per_sha_and_context(
    make_forge: Make,
) -> None:
    fake, forge = make_forge("github")
    assert isinstance(fake, FakeGitHub)
    fake.max_statuses_per_context = 2  # GitHub's 1000, lowered so the test sends three
    sha = "c" * 40
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "pending"))
    forge.set_commit_status(CommitStatus(sha, "GitOps/Plan", "success"))  # case-insensitive
    with pytest.raises(Invalid) as e:
        forge.set_commit_status(CommitStatus(sha, "gitops/plan", "success"))
    assert e.value.status == 422
    assert "maximum number of statuses" in e.value.platform_message
    forge.set_commit_status(CommitStatus(sha, "gitops/drift", "success"))  # another context
    assert len(fake.statuses(sha)) == 3
