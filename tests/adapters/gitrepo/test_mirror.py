"""The fetch phase's mirror against real repositories on disk (a path and ``file://``)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from gitops.errors import Stalled, Transient
from gitops.gitrepo.mirror import Mirror, Remote
from tests.adapters.gitrepo.conftest import Upstream, run_git
from tests.adapters.gitrepo.servers import free_port


@pytest.fixture(params=["path", "file-url"])
def url(request: pytest.FixtureRequest, upstream: Upstream) -> str:
    return upstream.path if request.param == "path" else upstream.file_url


def test_first_sync_clones_the_branch_shallow_and_without_other_refs(
    upstream: Upstream, url: str, tmp_path: Path
) -> None:
    upstream.publish(3)
    run_git(upstream.work, "tag", "v1")
    run_git(upstream.work, "push", "-q", "origin", "v1", "HEAD:other")
    mirror = Mirror(tmp_path / "cache", Remote(url), depth=2)
    result = mirror.sync()
    assert result.revision == upstream.tip()
    assert (result.previous, result.changed, result.fetched, result.forced) == (
        None,
        True,
        True,
        False,
    )
    assert result.shallow
    repo = tmp_path / "cache" / "repo.git"
    assert run_git(repo, "rev-list", "--count", result.revision) == "2"
    assert run_git(repo, "for-each-ref", "--format=%(refname)") == "refs/remotes/origin/main"
    assert "url" not in (repo / "config").read_text()


def test_an_unmoved_remote_is_answered_by_ls_remote_alone(
    upstream: Upstream, url: str, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(url))
    first = mirror.sync()
    objects = sorted(p.name for p in (tmp_path / "cache" / "repo.git" / "objects").rglob("*"))
    again = mirror.sync()
    assert again == type(first)(first.revision, first.revision, False, False, False, first.shallow)
    assert mirror.fetches == 1
    assert (
        sorted(p.name for p in (tmp_path / "cache" / "repo.git" / "objects").rglob("*")) == objects
    )
    # A restarted controller (a new Mirror on the same cache) skips the fetch too.
    restarted = Mirror(tmp_path / "cache", Remote(url))
    assert restarted.sync().fetched is False
    assert restarted.fetches == 0


def test_a_new_commit_is_fetched_and_snapshotted(upstream: Upstream, tmp_path: Path) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(upstream.file_url))
    first = mirror.sync()
    second_sha = upstream.commit("Bump the canary image", {"clusters/canary.yaml": "image: v2\n"})
    upstream.push()
    second = mirror.sync()
    assert (second.previous, second.revision) == (first.revision, second_sha)
    assert second.changed and second.fetched and not second.forced
    snap = mirror.snapshot(second.revision)
    assert snap.path == tmp_path / "cache" / "snapshots" / second_sha
    assert (snap.path / "clusters" / "canary.yaml").read_text() == "image: v2\n"
    assert not (snap.path / ".git").exists()
    assert snap.commit.summary == "Bump the canary image"
    assert (snap.commit.author_name, snap.commit.author_email) == (
        "Fleet Engineer",
        "engineer@example.com",
    )
    assert snap.commit.committer_email == "engineer@example.com"
    assert snap.commit.committed_at.tzinfo is not None
    assert mirror.commit(second_sha) == snap.commit


def test_many_new_commits_deepen_the_shallow_history_until_the_old_tip_is_found(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.publish(20)
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path), depth=1)
    first = mirror.sync()
    new = upstream.publish(6)
    result = mirror.sync()
    assert result.revision == new and not result.forced
    assert mirror.fetches > 2  # the first fetch (depth 1) could not see the old tip
    assert result.shallow  # deepened, not unshallowed: the history below the old tip stays out
    repo = tmp_path / "cache" / "repo.git"
    assert run_git(repo, "merge-base", "--is-ancestor", first.revision, new) == ""


@pytest.mark.parametrize("back", [1, 3])
def test_a_force_push_is_detected_followed_and_logged(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, back: int
) -> None:
    upstream.publish(4)
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path), depth=2)
    old = mirror.sync().revision
    new = upstream.rewrite(back)
    with caplog.at_level(logging.WARNING, logger="gitops.gitrepo"):
        result = mirror.sync()
    assert (result.previous, result.revision, result.forced, result.changed) == (
        old,
        new,
        True,
        True,
    )
    assert any(
        old in r.getMessage() and new in r.getMessage() and "force-pushed" in r.getMessage()
        for r in caplog.records
    )
    assert mirror.snapshot(new).sha == new
    follow_up = upstream.publish()
    assert mirror.sync().forced is False and mirror.revision() == follow_up


def test_a_branch_rewound_to_an_older_commit_is_a_force_push(
    upstream: Upstream, tmp_path: Path
) -> None:
    base = upstream.tip()
    upstream.publish()
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path))
    mirror.sync()
    run_git(upstream.work, "push", "-q", "--force", "origin", f"{base}:main")
    result = mirror.sync()
    assert result.revision == base and result.forced


def test_a_fast_forward_is_not_reported_as_a_force_push(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path), depth=1)
    mirror.sync()
    upstream.publish()
    with caplog.at_level(logging.WARNING, logger="gitops.gitrepo"):
        assert mirror.sync().forced is False
    assert not caplog.records


def _modes(root: Path) -> set[int]:
    return {stat.S_IMODE(p.lstat().st_mode) & 0o222 for p in [root, *root.rglob("*")]}


def test_snapshots_are_read_only_and_never_rewritten(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit("Add a script", {"hooks/run.sh": "#!/bin/sh\n", "clusters/a.yaml": "a: 1\n"})
    (upstream.work / "hooks" / "run.sh").chmod(0o755)
    run_git(upstream.work, "add", "-A")
    run_git(upstream.work, "commit", "-q", "-m", "Make it executable")
    upstream.push()
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path))
    sha = mirror.sync().revision
    snap = mirror.snapshot(sha)
    assert _modes(snap.path) == {0}  # no write bit anywhere, directories included
    assert stat.S_IMODE((snap.path / "hooks" / "run.sh").stat().st_mode) == 0o555
    inode = snap.path.stat().st_ino
    assert mirror.snapshot(sha).path.stat().st_ino == inode  # reused, not checked out again


def test_a_crash_mid_checkout_leaves_no_snapshot_under_the_sha(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.commit("More files", {f"clusters/c{i}.yaml": f"n: {i}\n" for i in range(20)})
    upstream.push()
    cache = tmp_path / "cache"
    mirror = Mirror(cache, Remote(upstream.path))
    sha = mirror.sync().revision

    from gitops.gitrepo import snapshots

    def crash(root: Path) -> None:
        raise KeyboardInterrupt  # the process dies after the files are written, before the rename

    monkeypatch.setattr(snapshots, "_make_read_only", crash)
    with pytest.raises(KeyboardInterrupt):
        mirror.snapshot(sha)
    assert not (cache / "snapshots" / sha).exists()
    monkeypatch.undo()
    # A hard crash (no cleanup at all) leaves a temporary directory: the next start removes it.
    leftover = cache / "snapshots" / f".tmp-{sha[:12]}-crashed"
    (leftover / "clusters").mkdir(parents=True)
    (leftover / "clusters" / "c0.yaml").write_text("half")
    restarted = Mirror(cache, Remote(upstream.path))
    assert not leftover.exists()
    assert restarted.snapshots.recent() == []
    snap = restarted.snapshot(sha)
    assert len(list((snap.path / "clusters").iterdir())) == 20


def test_the_cache_keeps_the_most_recent_snapshots_and_the_one_in_use(
    upstream: Upstream, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path), keep_snapshots=2)
    shas = []
    for _ in range(4):
        shas.append(mirror.sync().revision)
        upstream.publish()
    in_use = shas[0]
    for sha in shas:
        mirror.snapshot(sha, in_use=[in_use])
    kept = mirror.snapshots.recent()
    assert set(kept) == {in_use, shas[2], shas[3]}
    # Re-using an old snapshot makes it recent again.
    mirror.snapshot(shas[2])
    mirror.snapshot(shas[3], in_use=[])
    assert set(mirror.snapshots.recent()) == {shas[2], shas[3]}
    assert sorted(p.name for p in (tmp_path / "cache" / "snapshots").iterdir()) == sorted(shas[2:])


def test_a_missing_branch_or_repository_is_stalled(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(Stalled, match="branch nope does not exist"):
        Mirror(tmp_path / "a", Remote(upstream.path, branch="nope")).sync()
    with pytest.raises(Stalled, match="does not appear to be a git repository"):
        Mirror(tmp_path / "b", Remote(str(tmp_path / "missing.git"))).sync()


def test_an_unreachable_remote_is_transient(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there: connection refused
    for url in (f"git://127.0.0.1:{port}/fleet.git", f"http://127.0.0.1:{port}/fleet.git"):
        with pytest.raises(
            Transient, match=rf"cannot list refs/heads/main at {url}: .*127\.0\.0\.1"
        ):
            Mirror(tmp_path / "c", Remote(url)).sync()


def test_a_hung_remote_times_out_as_transient(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/fleet.git"
        with pytest.raises(Transient, match="Timeout"):
            Mirror(tmp_path / "c", Remote(url, timeout=0.5)).sync()


def test_a_corrupt_cache_entry_is_not_mistaken_for_a_snapshot(
    upstream: Upstream, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "cache", Remote(upstream.path))
    sha = mirror.sync().revision
    with pytest.raises(ValueError, match="full lowercase commit sha"):
        mirror.snapshot(sha[:10])
    assert os.listdir(tmp_path / "cache" / "snapshots") == []
