"""The Gitea/Forgejo adapter sends Gitea's documented requests (``/api/v1``) and reads answers.

Adapter tier: every method of ``Forge`` against ``FakeGitea`` over real HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gitops.forge import (
    AlreadyExists,
    BadConfig,
    CommitStatus,
    Forge,
    Gitea,
    Invalid,
    NotFound,
    api_url,
)
from gitops.sim.forges import FakeForge

from .conftest import TOKEN, last

Make = Callable[..., tuple[FakeForge, Forge]]
REPO = "/api/v1/repos/acme/fleet"


@pytest.fixture
def gt(make_forge: Make) -> tuple[FakeForge, Forge]:
    return make_forge("gitea")


def test_open_pull_request_posts_head_base_title_body(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    pr = forge.open_pull_request(head_ref="gitops/drift", base_ref="main", title="T", body="B")
    req = last(fake)
    assert (req.method, req.path) == ("POST", f"{REPO}/pulls")
    assert req.body == {"head": "gitops/drift", "base": "main", "title": "T", "body": "B"}
    assert (pr.number, pr.state, pr.head_ref, pr.base_ref) == (1, "open", "gitops/drift", "main")
    assert pr.url.endswith("/acme/fleet/pulls/1")


def test_open_pull_request_twice_is_already_exists_409(gt: tuple[FakeForge, Forge]) -> None:
    _, forge = gt
    forge.open_pull_request(head_ref="x", base_ref="main", title="T", body="")
    with pytest.raises(AlreadyExists) as e:
        forge.open_pull_request(head_ref="x", base_ref="main", title="T", body="")
    assert e.value.status == 409
    assert e.value.platform_message.startswith("pull request already exists for these targets")


def test_read_list_find_update_close(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    fake.open_pull("a")
    fake.open_pull("gitops/drift")
    fake.open_pull("merged")
    fake.merge(3)
    assert forge.pull_request(3).state == "merged"
    assert (last(fake).method, last(fake).path) == ("GET", f"{REPO}/pulls/3")
    assert [p.number for p in forge.pull_requests()] == [1, 2]
    assert last(fake).query == {"state": "open", "limit": "50"}
    found = forge.find_pull_request("gitops/drift")
    assert found is not None and found.number == 2
    assert last(fake).query == {"state": "open", "limit": "50"}  # no head filter on Gitea
    pr = forge.update_pull_request(2, title="new")
    assert (last(fake).method, last(fake).path, last(fake).body) == (
        "PATCH",
        f"{REPO}/pulls/2",
        {"title": "new"},
    )
    assert last(fake).status == 201 and pr.title == "new"  # Gitea answers an edit with 201
    assert forge.close_pull_request(2).state == "closed"
    assert last(fake).body == {"state": "closed"}
    assert [p.state for p in forge.pull_requests(state="all")] == ["open", "closed", "merged"]
    with pytest.raises(NotFound) as e:
        forge.pull_request(42)
    assert e.value.platform_message == "The target couldn't be found."


def test_comments_use_issue_endpoints(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    fake.open_pull("a")
    fake.add_comment(1, "hi", author="alice")
    created = forge.create_comment(1, "plan v1")
    assert (last(fake).method, last(fake).path, last(fake).body) == (
        "POST",
        f"{REPO}/issues/1/comments",
        {"body": "plan v1"},
    )
    updated = forge.update_comment(1, created.id, "plan v2")
    assert (last(fake).method, last(fake).path, last(fake).body) == (
        "PATCH",
        f"{REPO}/issues/comments/{created.id}",
        {"body": "plan v2"},
    )
    assert updated.body == "plan v2"
    assert [(c.author, c.body) for c in forge.comments(1)] == [
        ("alice", "hi"),
        ("gitops-bot", "plan v2"),
    ]
    assert (last(fake).method, last(fake).path) == ("GET", f"{REPO}/issues/1/comments")


def test_statuses_post_context_and_read_gitea_status_field(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    sha = "f" * 40
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "error", "broke", "https://x/2"))
    req = last(fake)
    assert (req.method, req.path) == ("POST", f"{REPO}/statuses/{sha}")
    assert req.body == {
        "state": "error",
        "context": "gitops/plan",
        "description": "broke",
        "target_url": "https://x/2",
    }
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "success", "ok"))
    forge.set_commit_status(CommitStatus(sha, "gitops/drift", "failure", "drift"))
    statuses = forge.commit_statuses(sha)
    assert (last(fake).method, last(fake).path) == ("GET", f"{REPO}/commits/{sha}/status")
    assert [(s.context, s.state, s.description) for s in statuses] == [
        ("gitops/drift", "failure", "drift"),
        ("gitops/plan", "success", "ok"),
    ]


def test_gitea_sends_token_scheme_and_has_no_default_url(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    forge.pull_requests()
    assert last(fake).headers["authorization"] == f"token {TOKEN}"
    assert isinstance(forge, Gitea) and forge.max_body_chars == 65_536
    with pytest.raises(BadConfig):
        api_url("gitea", None)
    assert api_url("gitea", "https://code.example/") == "https://code.example/api/v1"
    assert api_url("gitea", "https://code.example/api/v1") == "https://code.example/api/v1"


def _raw(fake: FakeForge, method: str, path: str, **kwargs: object) -> httpx.Response:
    """A request straight to the stand-in, to see its headers and status as a client would."""
    headers = {"Authorization": f"token {TOKEN}"}
    return httpx.request(method, fake.url + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_more_than_fifty_statuses_are_all_read_by_x_total_count(
    gt: tuple[FakeForge, Forge],
) -> None:
    # Gitea cuts a page to 50 and names no next page on the combined status: a fleet of more
    # than 50 clusters has more statuses than one page holds.
    fake, forge = gt
    sha = "a" * 40
    contexts = [f"gitops/cluster-{i:03}" for i in range(60)]
    for context in contexts:
        forge.set_commit_status(CommitStatus(sha, context, "success", "converged"))
    fake.clear_requests()
    assert [s.context for s in forge.commit_statuses(sha)] == contexts
    assert [(r.path, r.query.get("page")) for r in fake.requests] == [
        (f"{REPO}/commits/{sha}/status", None),
        (f"{REPO}/commits/{sha}/status", "2"),
    ]


def test_a_commit_without_statuses_reads_as_none(gt: tuple[FakeForge, Forge]) -> None:
    fake, forge = gt
    assert forge.commit_statuses("b" * 40) == []
    assert len(fake.requests) == 1


def test_fake_combined_status_pages_by_x_total_count_without_link(
    gt: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gt
    sha = "c" * 40
    for i in range(3):
        forge.set_commit_status(CommitStatus(sha, f"ctx-{i}", "pending"))
    first = _raw(fake, "GET", f"/repos/acme/fleet/commits/{sha}/status", params={"limit": 2})
    assert first.status_code == 200
    assert "link" not in first.headers
    assert first.headers["x-total-count"] == "3"
    # ToCombinedStatus counts the page it was given, not every status.
    assert first.json()["total_count"] == 2 and len(first.json()["statuses"]) == 2
    empty = _raw(fake, "GET", f"/repos/acme/fleet/commits/{'d' * 40}/status")
    assert "x-total-count" not in empty.headers
    assert empty.json()["statuses"] is None and empty.json()["state"] == ""
    # Gitea reads page and limit with FormInt: a word is 0, which means the default.
    lax = _raw(fake, "GET", f"/repos/acme/fleet/commits/{sha}/status", params={"limit": "x"})
    assert lax.status_code == 200 and len(lax.json()["statuses"]) == 3


def test_fake_refuses_an_unknown_status_state_with_400_as_documented(
    gt: tuple[FakeForge, Forge],
) -> None:
    fake, _ = gt
    answer = _raw(fake, "POST", f"/repos/acme/fleet/statuses/{'e' * 40}", json={"state": "done"})
    assert answer.status_code == 400
    assert "done" in answer.json()["message"]
    assert fake.statuses("e" * 40) == []


def test_closing_a_pull_request_merged_meanwhile_returns_it_merged(
    gt: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gt
    fake.open_pull("gitops/drift")
    fake.merge(1)
    pr = forge.close_pull_request(1)
    assert pr.state == "merged"
    assert [(r.method, r.status) for r in fake.requests] == [("PATCH", 412), ("GET", 200)]


def test_fake_answers_412_to_a_state_change_of_a_merged_pull_request(
    gt: tuple[FakeForge, Forge],
) -> None:
    fake, _ = gt
    fake.open_pull("a")
    fake.merge(1)
    answer = _raw(fake, "PATCH", "/repos/acme/fleet/pulls/1", json={"state": "closed"})
    assert answer.status_code == 412
    assert "already merged" in answer.json()["message"]
    fake.open_pull("b", title="kept")
    edited = _raw(fake, "PATCH", "/repos/acme/fleet/pulls/2", json={"title": ""})
    assert (edited.status_code, edited.json()["title"]) == (201, "kept")  # empty: unchanged


def test_fake_refuses_a_pull_request_from_a_branch_onto_itself(
    gt: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gt
    with pytest.raises(Invalid) as e:
        forge.open_pull_request(head_ref="main", base_ref="main", title="T", body="")
    assert e.value.status == 422
    assert "no changes between the head and the base" in e.value.platform_message
    assert fake.pulls() == []


def test_fake_keeps_an_empty_context_empty(gt: tuple[FakeForge, Forge]) -> None:
    # Gitea stores form.Context as given; only GitHub names a missing context "default".
    fake, _ = gt
    answer = _raw(fake, "POST", f"/repos/acme/fleet/statuses/{'6' * 40}", json={"state": "success"})
    assert answer.status_code == 201 and answer.json()["context"] == ""
    assert [s.context for s in fake.statuses("6" * 40)] == [""]


def test_a_list_that_ignores_page_is_not_read_twice(gt: tuple[FakeForge, Forge]) -> None:
    # Gitea's issue comments come whole, whatever ``page`` says; should X-Total-Count ever
    # count more than the list holds, asking for page 2 must not add the same comments again.
    fake, forge = gt
    fake.open_pull("a")
    fake.add_comment(1, "one")
    fake.add_comment(1, "two")
    original = fake._dispatch

    def overcounted(*args: Any, **kwargs: Any) -> Any:
        reply = original(*args, **kwargs)
        if "x-total-count" in {k.lower() for k in reply.headers}:
            reply.headers["X-Total-Count"] = "5"
        return reply

    fake._dispatch = overcounted  # type: ignore[method-assign]
    assert [c.body for c in forge.comments(1)] == ["one", "two"]
    assert [r.query.get("page") for r in fake.requests] == [None, "2"]
