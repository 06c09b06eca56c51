"""The GitLab adapter sends GitLab's documented requests (REST v4) and reads its answers.

Adapter tier: every method of ``Forge`` against ``FakeGitLab`` over real HTTP: merge requests
addressed by the URL-encoded project path, notes without system notes, statuses in GitLab's
vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gitops.errors import Stalled, Transient
from gitops.forge import (
    AlreadyExists,
    CommitStatus,
    Forge,
    GitLab,
    Invalid,
    NotFound,
    Unavailable,
)
from gitops.forge.gitlab import STATUS_CONFLICT_TRIES
from gitops.sim.forges import FakeForge, FakeGitLab

from .conftest import TOKEN, FakeClock, last

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


def test_long_description_is_cut_to_255_and_a_long_target_url_left_out(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gl
    sha = "1" * 40
    url = "https://ci.example/" + "u" * 300
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "success", "d" * 300, url))
    req = last(fake)
    assert req.status == 201
    assert req.body == {"state": "success", "name": "gitops/plan", "description": "d" * 255}
    forge.set_commit_status(CommitStatus(sha, "gitops/drift", "success", "ok", url[:255]))
    assert last(fake).body["target_url"] == url[:255]  # 255 is still accepted whole
    assert [(s.context, len(s.description)) for s in fake.statuses(sha)] == [
        ("gitops/plan", 255),
        ("gitops/drift", 2),
    ]


def test_fake_refuses_a_description_or_target_url_over_255_with_400(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, _ = gl
    sha = "2" * 40
    headers = {"PRIVATE-TOKEN": TOKEN}
    answer = httpx.post(
        f"{fake.url}/projects/acme%2Ffleet/statuses/{sha}",
        headers=headers,
        json={"state": "success", "description": "d" * 256, "target_url": "https://x/" + "u" * 250},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "message": {
            "description": ["is too long (maximum is 255 characters)"],
            "target_url": ["is too long (maximum is 255 characters)"],
        }
    }
    missing = httpx.post(
        f"{fake.url}/projects/acme%2Ffleet/statuses/{sha}", headers=headers, json={}
    )
    assert (missing.status_code, missing.json()) == (400, {"error": "state is missing"})
    not_web = httpx.post(
        f"{fake.url}/projects/acme%2Ffleet/statuses/{sha}",
        headers=headers,
        json={"state": "success", "target_url": "ftp://ci.example/1"},
    )
    assert not_web.status_code == 400
    assert not_web.json() == {
        "message": {"target_url": ["is blocked: Only allowed schemes are http, https"]}
    }
    assert fake.statuses(sha) == []


def test_a_status_write_answered_409_in_progress_is_sent_again(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("gitlab")
    assert isinstance(fake, FakeGitLab)
    sha = "3" * 40
    fake.conflict_status_writes(2)
    forge.set_commit_status(CommitStatus(sha, "gitops/plan", "success", "ok"))
    posts = [r.status for r in fake.requests if r.method == "POST"]
    assert posts == [409, 409, 201]
    assert clock.sleeps == [0.5, 1.0]  # virtual time: the waits are recorded, never slept
    assert [s.state for s in fake.statuses(sha)] == ["success"]


def test_a_status_write_still_in_progress_after_the_tries_is_transient(
    make_forge: Make, clock: FakeClock
) -> None:
    fake, forge = make_forge("gitlab")
    assert isinstance(fake, FakeGitLab)
    sha = "4" * 40
    fake.conflict_status_writes(STATUS_CONFLICT_TRIES + 1)
    with pytest.raises(Unavailable) as e:
        forge.set_commit_status(CommitStatus(sha, "gitops/plan", "success", "ok"))
    assert isinstance(e.value, Transient) and not isinstance(e.value, Stalled)
    assert e.value.status == 409
    assert "in progress" in e.value.platform_message
    assert [r.status for r in fake.requests] == [409] * STATUS_CONFLICT_TRIES
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert fake.statuses(sha) == []


def test_a_second_merge_request_is_refused_only_for_the_same_source_and_target(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gl
    forge.open_pull_request(head_ref="gitops/x", base_ref="main", title="T", body="")
    other = forge.open_pull_request(head_ref="gitops/x", base_ref="release", title="T", body="")
    assert (other.number, other.head_ref, other.base_ref) == (2, "gitops/x", "release")
    with pytest.raises(AlreadyExists):
        forge.open_pull_request(head_ref="gitops/x", base_ref="release", title="T", body="")
    assert [(p.head_ref, p.base_ref) for p in fake.pulls()] == [
        ("gitops/x", "main"),
        ("gitops/x", "release"),
    ]


def test_fake_refuses_a_merge_request_from_a_branch_onto_itself(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gl
    with pytest.raises(Invalid) as e:
        forge.open_pull_request(head_ref="main", base_ref="main", title="T", body="")
    assert e.value.status == 422
    assert e.value.platform_message == "You can't use same project/branch for source and target"
    assert fake.pulls() == []


def test_fake_checks_note_order_values_and_lists_statuses_by_ascending_id(
    gl: tuple[FakeForge, Forge],
) -> None:
    fake, forge = gl
    fake.open_pull("a")
    headers = {"PRIVATE-TOKEN": TOKEN}
    notes = f"{fake.url}/projects/acme%2Ffleet/merge_requests/1/notes"
    for params in ({"sort": "oldest"}, {"order_by": "id"}):
        answer = httpx.get(notes, headers=headers, params=params)
        assert answer.status_code == 400
        assert answer.json()["error"].endswith("does not have a valid value")
    sha = "5" * 40
    for context in ("b", "a", "c"):
        forge.set_commit_status(CommitStatus(sha, context, "success"))
    listed = httpx.get(
        f"{fake.url}/projects/acme%2Ffleet/repository/commits/{sha}/statuses", headers=headers
    )
    assert [s["name"] for s in listed.json()] == ["b", "a", "c"]
