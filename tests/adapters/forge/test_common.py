"""What all three adapters share: pages, ETags, tokens, error mapping, the connect factory.

Adapter tier, parametrized over GitHub, GitLab and Gitea stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.errors import Stalled, Transient, Waiting
from gitops.forge import (
    BadConfig,
    CommitStatus,
    Forge,
    Limiters,
    Unauthorized,
    Unavailable,
    api_url,
    connect,
)
from gitops.sim.forges import FakeForge

from .conftest import FAKES, SLUG, TOKEN, forge_url, last

Make = Callable[..., tuple[FakeForge, Forge]]
PAGE = {"github": "per_page", "gitlab": "per_page", "gitea": "limit"}


def test_pull_requests_follow_every_page(kind: str, make_forge: Make) -> None:
    fake, forge = make_forge(kind, max_page_size=2)
    for i in range(5):
        fake.open_pull(f"branch-{i}")
    pulls = forge.pull_requests()
    assert [p.number for p in pulls] == [1, 2, 3, 4, 5]
    pages = [r for r in fake.requests if r.method == "GET"]
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]
    assert all(r.query[PAGE[kind]] == ("50" if kind == "gitea" else "100") for r in pages)


def test_gitlab_pages_by_x_next_page_alone(make_forge: Make) -> None:
    fake, forge = make_forge("gitlab", max_page_size=2)
    for i in range(3):
        fake.open_pull(f"b{i}")
    fake.add_comment(1, "first")
    for i in range(4):
        fake.add_comment(1, f"note {i}")
    # Strip Link so that only X-Next-Page can lead to the next page.
    original = fake._page

    def without_link(*args: object, **kwargs: object) -> tuple[list[object], dict[str, str]]:
        items, headers = original(*args, **kwargs)  # type: ignore[arg-type]
        headers.pop("Link", None)
        return items, headers

    fake._page = without_link  # type: ignore[method-assign]
    assert [c.body for c in forge.comments(1)] == ["first"] + [f"note {i}" for i in range(4)]
    assert [r.query.get("page") for r in fake.requests] == [None, "2", "3"]


def test_commit_statuses_follow_pages_of_the_combined_status(kind: str, make_forge: Make) -> None:
    fake, forge = make_forge(kind, max_page_size=2)
    sha = "1" * 40
    for i in range(5):
        forge.set_commit_status(CommitStatus(sha, f"ctx-{i}", "success"))
    fake.clear_requests()
    assert [s.context for s in forge.commit_statuses(sha)] == [f"ctx-{i}" for i in range(5)]
    assert len(fake.requests) == 3


def test_second_get_is_conditional_and_served_from_cache_on_304(
    kind: str, make_forge: Make
) -> None:
    fake, forge = make_forge(kind)
    fake.open_pull("a", title="first")
    assert forge.pull_request(1).title == "first"
    first = last(fake)
    assert "if-none-match" not in first.headers
    assert forge.pull_request(1).title == "first"
    second = last(fake)
    assert second.headers["if-none-match"].startswith('"')
    assert second.status == 304
    # A change on the server changes the ETag: the client gets the new data, not the cache.
    fake.pull(1).title = "second"
    assert forge.pull_request(1).title == "second"
    assert last(fake).status == 200


def test_bad_token_is_unauthorized_with_the_platforms_message(
    kind: str, tmp_path: Path, limiters: Limiters
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")
    with FAKES[kind]([SLUG], token=TOKEN) as fake:
        forge = connect(kind, forge_url(kind, fake), str(wrong), SLUG, limiters=limiters)
        with pytest.raises(Unauthorized) as e:
            forge.pull_requests()
        forge.close()
    assert e.value.status == 401
    assert e.value.platform_message  # the server's own words
    assert e.value.platform_message in str(e.value)
    assert isinstance(e.value, Stalled)


def test_token_is_read_from_file_stripped(kind: str, make_forge: Make) -> None:
    fake, forge = make_forge(kind)  # the file holds "  s3cret-token\n\n"
    forge.pull_requests()
    req = last(fake)
    assert req.status == 200
    sent = req.headers.get("private-token") or req.headers["authorization"]
    assert sent.endswith(TOKEN) and sent.split()[-1] == TOKEN


def test_empty_or_missing_token_file_is_bad_config(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n  \n")
    with pytest.raises(BadConfig, match="empty"):
        connect("github", None, str(empty), SLUG)
    with pytest.raises(BadConfig, match="cannot be read"):
        connect("github", None, str(tmp_path / "absent"), SLUG)


def test_unknown_kind_and_bad_slug_are_bad_config(token_file: Path) -> None:
    with pytest.raises(BadConfig, match="Unknown forge"):
        connect("bitbucket", None, str(token_file), SLUG)
    with pytest.raises(BadConfig, match="OWNER/NAME"):
        connect("github", None, str(token_file), "just-a-name")


def test_default_urls() -> None:
    assert api_url("github", None) == "https://api.github.com"
    assert api_url("github", "https://github.com") == "https://api.github.com"
    assert api_url("github", "https://ghe.example/api/v3/") == "https://ghe.example/api/v3"
    assert api_url("gitlab", None) == "https://gitlab.com/api/v4"
    assert api_url("gitlab", "https://git.example/") == "https://git.example/api/v4"


def test_server_error_on_a_write_is_unavailable_and_not_resent(
    kind: str, make_forge: Make, clock: object
) -> None:
    fake, forge = make_forge(kind)
    fake.open_pull("a")
    fake.fail_next(502, {"message": "Bad gateway"}, times=5)
    fake.clear_requests()
    with pytest.raises(Unavailable) as e:
        forge.create_comment(1, "hello")
    assert e.value.status == 502 and "Bad gateway" in str(e.value)
    assert isinstance(e.value, Transient) and not isinstance(e.value, Waiting)
    assert len(fake.requests) == 1  # a POST that may have landed is not repeated
