"""The GitLab adapter sends GitLab's documented requests (REST v4) and reads its answers.

Adapter tier: every method of ``Forge`` against ``FakeGitLab`` over real HTTP: merge requests
addressed by the URL-encoded project path, notes without system notes, statuses in GitLab's
vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gitops.forge import AlreadyExists, CommitStatus, Forge, GitLab, NotFound
from gitops.sim.forge import FakeForge

from .conftest import TOKEN, last

Make = Callable[..., tuple[FakeForge, Forge]]
PROJECT = "/api/v4/projects/acme%2Ffleet"


@pytest.fixture
def gl(make_forge: Make) -> tuple[FakeForge, Forge]:
    return make_forge("gitlab")


def test_open_merge_request_posts_source_target_title_description(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gl
    fake.set_branch("gitops/drift-1", "c" * 40)
    pr = forge.open_pull_request(head_ref="gitops/drift-1", base_ref="main", title="T", body="B")
    req = last(fake)
    assert (req.method, req.path) == ("POST", f"{PROJECT}/merge_requests")
    assert req.body == {
        "source_branch": "gitops/drift-1",
        "target_branch": "main",
        "title": "T",
        "description": "B",
    }
    assert (pr.number, pr.state, pr.head_sha, pr.body) == (1, "open", "c" * 40, "B")
    assert pr.url.endswith("/acme/fleet/-/merge_requests/1")


def test_open_merge_request_twice_is_already_exists_409(gl: tuple[FakeForge, Forge]) -> None:
    _, forge = gl
    forge.open_pull_request(head_ref="gitops/x", base_ref="main", title="T", body="")
    with pytest.raises(AlreadyExists) as e:
        forge.open_pull_request(head_ref="gitops/x", base_ref="main", title="T", body="")
    assert e.value.status == 409
    assert e.value.platform_message == (
        "Another open merge request already exists for this source branch: !1"
    )


def test_merge_request_states_and_404(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    fake.open_pull("a")
    fake.open_pull("b")
    fake.merge(2)
    assert forge.pull_request(1).state == "open"
    assert (last(fake).method, last(fake).path) == ("GET", f"{PROJECT}/merge_requests/1")
    assert forge.pull_request(2).state == "merged"
    with pytest.raises(NotFound) as e:
        forge.pull_request(9)
    assert e.value.platform_message == "404 Not found"


def test_list_and_find_use_opened_all_and_source_branch(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    fake.open_pull("a")
    fake.open_pull("gitops/drift")
    forge.close_pull_request(1)
    assert [p.number for p in forge.pull_requests()] == [2]
    assert last(fake).query == {"state": "opened", "per_page": "100"}
    assert [p.state for p in forge.pull_requests(state="all")] == ["closed", "open"]
    assert last(fake).query == {"state": "all", "per_page": "100"}
    found = forge.find_pull_request("gitops/drift")
    assert last(fake).query == {
        "state": "opened",
        "source_branch": "gitops/drift",
        "per_page": "100",
    }
    assert found is not None and found.number == 2
    assert forge.find_pull_request("a") is None  # closed


def test_update_and_close_put_description_and_state_event(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    fake.open_pull("a", title="old")
    pr = forge.update_pull_request(1, title="new", body="desc")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "PUT",
        f"{PROJECT}/merge_requests/1",
        {"title": "new", "description": "desc"},
    )
    assert (pr.title, pr.body) == ("new", "desc")
    pr = forge.close_pull_request(1)
    assert last(fake).body == {"state_event": "close"}
    assert pr.state == "closed"


def test_notes_leave_out_system_notes_and_come_oldest_first(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    fake.open_pull("a")
    fake.add_comment(1, "looks good", author="alice")
    note = forge.create_comment(1, "plan v1")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "POST",
        f"{PROJECT}/merge_requests/1/notes",
        {"body": "plan v1"},
    )
    forge.update_pull_request(1, body="changed")  # GitLab adds a system note for this
    updated = forge.update_comment(1, note.id, "plan v2")
    req = last(fake)
    assert (req.method, req.path, req.body) == (
        "PUT",
        f"{PROJECT}/merge_requests/1/notes/{note.id}",
        {"body": "plan v2"},
    )
    assert updated.body == "plan v2"
    comments = forge.comments(1)
    assert last(fake).query == {"sort": "asc", "order_by": "created_at", "per_page": "100"}
    assert [(c.author, c.body) for c in comments] == [
        ("alice", "looks good"),
        ("gitops-bot", "plan v2"),
    ]
    assert any(c.system for c in fake.comments(1))  # the server did hold a system note


@pytest.mark.parametrize(
    ("state", "written", "read"),
    [
        ("pending", "pending", "pending"),
        ("success", "success", "success"),
        ("failure", "failed", "failure"),
        ("error", "failed", "failure"),
    ],
)
def test_statuses_are_written_in_gitlabs_states_under_name(
    gl: tuple[FakeForge, Forge], state: str, written: str, read: str
) -> None:
    fake, forge = gl
    sha = "d" * 40
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", state, "desc", "https://x/1"))  # type: ignore[arg-type]
    req = last(fake)
    assert (req.method, req.path) == ("POST", f"{PROJECT}/statuses/{sha}")
    assert req.body == {
        "state": written,
        "name": "gitops/plan",
        "description": "desc",
        "target_url": "https://x/1",
    }
    (status,) = forge.commit_statuses(sha)
    assert (last(fake).method, last(fake).path) == (
        "GET",
        f"{PROJECT}/repository/commits/{sha}/statuses",
    )
    assert (status.context, status.state, status.description) == ("gitops/plan", read, "desc")


def test_repeating_a_pending_status_is_done_not_an_error(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    sha = "e" * 40
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "pending"))
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "pending"))
    assert last(fake).status == 400  # GitLab's "Cannot transition status via :enqueue"
    assert [s.state for s in forge.commit_statuses(sha)] == ["pending"]


def test_gitlab_sends_private_token(gl: tuple[FakeForge, Forge]) -> None:
    fake, forge = gl
    forge.pull_requests()
    assert last(fake).headers["private-token"] == TOKEN
    assert "authorization" not in last(fake).headers
    assert isinstance(forge, GitLab) and forge.max_body_chars == 1_000_000
