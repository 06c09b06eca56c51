"""The report phase's status-branch writer against a real bare repository."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from gitops.errors import Stalled, Transient
from gitops.gitrepo import status as status_module
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import (
    CoalescingWriter,
    Identity,
    StatusWriter,
    WriteResult,
    compose_message,
    is_own_commit,
    trailers,
)
from tests.adapters.gitrepo.conftest import Upstream, run_git

STATUS = "refs/heads/gitops/status"
FILES = {"status/canary-eu-1.yaml": "phase: Converged\n", "README.md": "# Fleet status\n"}


def _writer(upstream: Upstream, tmp_path: Path, **options: object) -> StatusWriter:
    return StatusWriter(tmp_path / "cache", Remote(upstream.file_url), **options)  # type: ignore[arg-type]


def _log(upstream: Upstream, ref: str = STATUS) -> list[str]:
    return run_git(upstream.bare, "rev-list", ref).split()


def _install_racing_hook(upstream: Upstream, times: int) -> Path:
    """A pre-receive hook that, ``times`` times, moves the status branch before our push lands."""
    counter = upstream.srv / "raced"
    hook = upstream.bare / "hooks" / "pre-receive"
    hook.write_text(
        f"""#!/bin/sh
# Another writer commits to the status branch while our push is in flight.
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
n=$(cat {counter} 2>/dev/null || echo 0)
[ "$n" -ge {times} ] && exit 0
echo $((n + 1)) > {counter}
old=$(git rev-parse -q --verify {STATUS})
blob=$(echo "competitor $n" | git hash-object -w --stdin)
tree=$(printf '100644 blob %s\\tcompetitor.txt\\n' "$blob" | git mktree)
commit=$(git commit-tree "$tree" ${{old:+-p $old}} -m "Competing status $n")
git update-ref {STATUS} "$commit" $old
"""
    )
    hook.chmod(0o755)
    return counter


def test_the_first_write_creates_an_orphan_branch_with_trailers(
    upstream: Upstream, tmp_path: Path
) -> None:
    main = upstream.tip()
    writer = _writer(upstream, tmp_path, identity=Identity("Fleet Bot", "bot@fleet.example"))
    result = writer.write(FILES, "Canary converged", fleet_revision=main or "", plan_id="plan-7")
    assert result.committed and result.created_branch and result.attempts == 1
    assert result.changed_paths == ("README.md", "status/canary-eu-1.yaml")
    assert _log(upstream) == [result.revision]  # one commit, no parent: an orphan
    tip = writer.tip()
    assert tip is not None
    assert (tip.committer_name, tip.committer_email) == ("Fleet Bot", "bot@fleet.example")
    assert (tip.author_name, tip.author_email) == ("Fleet Bot", "bot@fleet.example")
    assert tip.summary == "Canary converged"
    assert trailers(tip.message) == {"Fleet-Revision": main, "Plan-Id": "plan-7"}
    assert writer.read() == {k: v.encode() for k, v in FILES.items()}
    assert upstream.tip() == main


def test_unchanged_content_makes_no_commit_and_a_change_makes_exactly_one(
    upstream: Upstream, tmp_path: Path
) -> None:
    writer = _writer(upstream, tmp_path)
    first = writer.write(FILES, "Status", fleet_revision="r1", plan_id="p1")
    again = writer.write(dict(FILES), "Status, again", fleet_revision="r2", plan_id="p2")
    assert (again.committed, again.revision, again.changed_paths) == (False, first.revision, ())
    assert len(_log(upstream)) == 1
    changed = writer.write(
        {**FILES, "status/canary-eu-1.yaml": "phase: RollingOut\n"},
        "Status",
        fleet_revision="r3",
        plan_id="p3",
    )
    assert changed.committed and changed.changed_paths == ("status/canary-eu-1.yaml",)
    assert _log(upstream) == [changed.revision, first.revision]
    # A fresh writer (a restarted controller) compares with the remote, not with its memory.
    fresh = _writer(upstream, tmp_path / "other")
    assert (
        fresh.write(
            {**FILES, "status/canary-eu-1.yaml": b"phase: RollingOut\n"},
            "S",
            fleet_revision="r3",
            plan_id="p3",
        ).committed
        is False
    )


def test_the_file_set_is_the_whole_branch_content(upstream: Upstream, tmp_path: Path) -> None:
    writer = _writer(upstream, tmp_path)
    writer.write({**FILES, "status/gone.yaml": "x\n"}, "Status", fleet_revision="r", plan_id="p")
    result = writer.write(FILES, "Cluster gone removed", fleet_revision="r", plan_id="p")
    assert result.changed_paths == ("status/gone.yaml",)
    assert set(writer.read()) == set(FILES)


def test_a_reader_whose_branch_moves_between_listing_and_fetching_reads_the_newer_tip(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits to the status branch after our ``ls-remote`` and before our
    fetch: the read is of what arrived, never of a commit we do not have."""
    other = _writer(upstream, tmp_path / "other")
    other.write(FILES, "Status", fleet_revision="r1", plan_id="p1")
    newer = {**FILES, "README.md": "# Fleet status, v2\n"}
    real_fetch = status_module._command.fetch

    def racing_fetch(*args: object, **kwargs: object) -> object:
        other.write(newer, "Status v2", fleet_revision="r2", plan_id="p2")
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(status_module._command, "fetch", racing_fetch)
    reader = _writer(upstream, tmp_path / "reader")
    assert reader.read() == {k: v.encode() for k, v in newer.items()}
    assert reader.tip() is not None and reader.tip().summary == "Status v2"  # type: ignore[union-attr]


def test_a_push_racing_another_writer_is_rebased_and_retried(
    upstream: Upstream, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    writer = _writer(upstream, tmp_path, sleep=sleeps.append, backoff=0.01)
    first = writer.write(FILES, "Status", fleet_revision="r1", plan_id="p1")
    _install_racing_hook(upstream, times=1)
    new = {**FILES, "README.md": "# Fleet status, v2\n"}
    result = writer.write(new, "Status v2", fleet_revision="r2", plan_id="p2")
    assert result.committed and result.attempts == 2 and len(sleeps) == 1
    history = _log(upstream)
    assert len(history) == 3 and history[0] == result.revision and history[2] == first.revision
    competitor = history[1]
    assert run_git(upstream.bare, "log", "-1", "--format=%s", competitor) == "Competing status 0"
    assert run_git(upstream.bare, "rev-parse", f"{result.revision}^") == competitor
    assert writer.read() == {k: v.encode() for k, v in new.items()}  # ours, re-applied on top


def test_a_push_that_keeps_losing_gives_up_as_transient(upstream: Upstream, tmp_path: Path) -> None:
    sleeps: list[float] = []
    writer = _writer(
        upstream, tmp_path, sleep=sleeps.append, attempts=3, backoff=0.5, max_backoff=2.0
    )
    writer.write(FILES, "Status", fleet_revision="r1", plan_id="p1")
    _install_racing_hook(upstream, times=100)
    with pytest.raises(Transient, match="moved it 3 times"):
        writer.write({"README.md": "v2\n"}, "Status v2", fleet_revision="r2", plan_id="p2")
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)
    assert run_git(upstream.bare, "log", "-1", "--format=%s", STATUS).startswith("Competing status")


def test_a_push_declined_by_policy_is_stalled_without_retrying(
    upstream: Upstream, tmp_path: Path
) -> None:
    hook = upstream.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'status branch is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    sleeps: list[float] = []
    with pytest.raises(Stalled, match="status branch is protected"):
        _writer(upstream, tmp_path, sleep=sleeps.append).write(
            FILES, "S", fleet_revision="r", plan_id="p"
        )
    assert sleeps == []


def test_the_watched_branch_is_never_the_status_branch(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(Stalled, match="is the watched branch"):
        _writer(upstream, tmp_path, branch="main")
    with pytest.raises(Stalled, match="not a valid branch name"):
        _writer(upstream, tmp_path, branch="bad..name")
    with pytest.raises(ValueError, match="plain relative path"):
        _writer(upstream, tmp_path).write({"../escape": "x"}, "S", fleet_revision="r", plan_id="p")


def test_status_commits_never_wake_the_mirror_and_are_recognisable(
    upstream: Upstream, tmp_path: Path
) -> None:
    main = upstream.tip()
    mirror = Mirror(tmp_path / "mirror", Remote(upstream.path))
    mirror.sync()
    writer = StatusWriter(tmp_path / "status", Remote(upstream.path))
    for n in range(3):
        writer.write(
            {"README.md": f"n={n}\n"}, "Status", fleet_revision=main or "", plan_id=f"p{n}"
        )
    assert mirror.sync().fetched is False
    assert upstream.tip() == main
    assert not mirror.watches("refs/heads/gitops/status") and mirror.watches("refs/heads/main")
    tip = writer.tip()
    assert tip is not None and is_own_commit(tip)
    assert not is_own_commit(mirror.commit(main or ""))
    assert not is_own_commit(tip, Identity("gitops", "someone-else@example.com"))


def test_message_and_trailers() -> None:
    text = compose_message(
        "Canary converged\n\nAll pools on talos-1.9.2.", fleet_revision="abc", plan_id="p1"
    )
    assert text.endswith("\n\nFleet-Revision: abc\nPlan-Id: p1\n")
    assert trailers(text) == {"Fleet-Revision": "abc", "Plan-Id": "p1"}
    assert trailers("Just a subject") == {}
    assert trailers("Subject\n\nA body: with a colon\nand prose") == {}


class FakeWriter:
    def __init__(self) -> None:
        self.writes: list[Mapping[str, bytes | str]] = []
        self.content: Mapping[str, bytes | str] | None = None

    def write(
        self, files: Mapping[str, bytes | str], message: str, *, fleet_revision: str, plan_id: str
    ) -> WriteResult:
        changed = files != self.content
        self.content = files
        if changed:
            self.writes.append(files)
        return WriteResult(changed, "sha", tuple(files) if changed else (), 1)


def test_coalescing_writes_at_most_once_per_interval_the_latest_content() -> None:
    now = [100.0]
    fake = FakeWriter()
    coalescer = CoalescingWriter(fake, interval=60, clock=lambda: now[0])
    assert (
        coalescer.offer({"a": "1"}, "m", fleet_revision="r", plan_id="p") is not None
    )  # first: at once
    assert coalescer.offer({"a": "2"}, "m", fleet_revision="r", plan_id="p") is None
    now[0] += 30
    assert coalescer.offer({"a": "3"}, "m", fleet_revision="r", plan_id="p") is None
    assert coalescer.pending and coalescer.due_in() == 30
    assert coalescer.flush_if_due() is None
    now[0] += 30
    assert coalescer.flush_if_due() is not None
    assert [w["a"] for w in fake.writes] == [b"1", b"3"]  # "2" was superseded, never written
    assert coalescer.due_in() is None and not coalescer.pending


def test_coalescing_drops_content_equal_to_the_last_write() -> None:
    now = [0.0]
    fake = FakeWriter()
    coalescer = CoalescingWriter(fake, interval=60, clock=lambda: now[0])
    coalescer.offer({"a": "1"}, "m", fleet_revision="r", plan_id="p")
    coalescer.offer({"a": "2"}, "m", fleet_revision="r", plan_id="p")
    coalescer.offer({"a": b"1"}, "m", fleet_revision="r", plan_id="p")  # back to what git holds
    assert not coalescer.pending
    now[0] += 1000
    assert coalescer.flush_if_due() is None and len(fake.writes) == 1


def test_coalescing_keeps_content_pending_when_the_write_fails() -> None:
    class Failing(FakeWriter):
        def write(self, *args: object, **kwargs: object) -> WriteResult:
            raise Transient("remote down")

    coalescer = CoalescingWriter(Failing(), interval=60, clock=lambda: 0.0)
    with pytest.raises(Transient):
        coalescer.offer({"a": "1"}, "m", fleet_revision="r", plan_id="p")
    assert coalescer.pending and coalescer.due_in() == 0


def test_coalescing_over_a_real_branch(upstream: Upstream, tmp_path: Path) -> None:
    now = [0.0]
    coalescer = CoalescingWriter(_writer(upstream, tmp_path), interval=10, clock=lambda: now[0])
    for n in range(5):
        coalescer.offer({"README.md": f"n={n}\n"}, f"Status {n}", fleet_revision="r", plan_id="p")
        now[0] += 3
    assert len(_log(upstream)) == 2  # n=0 at t=0, n=4 at t=12
    assert coalescer.flush() is None
    assert run_git(upstream.bare, "show", f"{STATUS}:README.md") == "n=4"
