"""Stories: drift pull requests kept in step with persistent drift (real git, fake forge)."""

from __future__ import annotations

from pathlib import Path

from gitops.bot import driftpr
from tests.adapters.bot.conftest import Hub, make_bot
from tests.adapters.bot.helpers import BRANCH, CLUSTER, patched, planned
from tests.conftest import git
from tests.unit.core.factories import declared


def drift_pulls(hub: Hub, state: str = "open") -> list[int]:
    return [p.number for p in hub.server.pulls() if p.head_ref == BRANCH and p.state == state]


def test_drift_opens_one_pr_after_two_observations_updates_it_and_closes_it(
    hub: Hub, tmp_path: Path
) -> None:
    fleet = hub.repo.fleet()
    bot = make_bot(hub, tmp_path)
    one = patched(fleet, {0})

    assert bot.report(fleet, planned(fleet, one), one).errors == ()
    assert hub.server.pulls() == []  # seen once: not reported yet
    assert bot.report(fleet, planned(fleet, one), one).errors == ()
    (number,) = drift_pulls(hub)
    body = hub.server.pull(number).body
    assert (
        "| new | canary-eu-1-system-000 | ImageMismatch | kernelVersion: 6.12.9-talos | 6.6.99 |"
        in body
    )
    tip = hub.repo.tip(BRANCH)
    report = hub.repo.show(tip, "drift/canary-eu-1.yaml")
    assert driftpr.acknowledged(report) == {
        f.fingerprint for f in planned(fleet, one).findings if f.is_drift
    }
    assert git(hub.repo.bare, "diff", "--name-only", "main", tip) == "drift/canary-eu-1.yaml"

    # Unchanged: nothing is written (this process does not even ask).
    hub.server.clear_requests()
    bot.report(fleet, planned(fleet, one), one)
    assert hub.writes() == []

    # The drift changes: the same pull request is updated, from a new commit.
    two = patched(fleet, {0, 1})
    bot.report(fleet, planned(fleet, two), two)
    bot.report(fleet, planned(fleet, two), two)
    assert drift_pulls(hub) == [number]
    assert "canary-eu-1-system-001" in hub.server.pull(number).body
    assert hub.repo.tip(BRANCH) != tip

    # The drift is gone: the pull request is closed with a comment.
    clean = declared(fleet)
    bot.report(fleet, planned(fleet, clean), clean)
    assert drift_pulls(hub) == [] and drift_pulls(hub, "closed") == [number]
    (closing,) = [c.body for c in hub.server.comments(number) if not c.system]
    assert "is gone" in closing
    assert not hub.repo.has(BRANCH)


def test_a_human_commit_on_the_drift_branch_is_never_overwritten(
    github: Hub, tmp_path: Path
) -> None:
    fleet = github.repo.fleet()
    bot = make_bot(github, tmp_path, persistence=1)
    one = patched(fleet, {0})
    bot.report(fleet, planned(fleet, one), one)
    (number,) = drift_pulls(github)
    human = github.repo.commit({"drift/NOTES.md": "investigating\n"}, "notes", branch=BRANCH)

    for nodes in ({0, 1}, {0, 1, 2}):  # the drift changes twice
        seen = patched(fleet, nodes)
        bot.report(fleet, planned(fleet, seen), seen)
    assert github.repo.tip(BRANCH) == human
    comments = [c.body for c in github.server.comments(number)]
    assert len(comments) == 1 and human[:12] in comments[0]
    # A restarted bot finds its comment and does not repeat it.
    again = patched(fleet, {1})
    make_bot(github, tmp_path, persistence=1).report(fleet, planned(fleet, again), again)
    assert len(github.server.comments(number)) == 1
    assert github.repo.tip(BRANCH) == human


def test_merged_findings_are_acknowledged_and_not_reported_again(
    github: Hub, tmp_path: Path
) -> None:
    fleet = github.repo.fleet()
    bot = make_bot(github, tmp_path, persistence=1)
    one = patched(fleet, {0})
    bot.report(fleet, planned(fleet, one), one)
    (number,) = drift_pulls(github)
    # A human merges the drift pull request: main now holds drift/canary-eu-1.yaml.
    git(github.repo.bare, "update-ref", "refs/heads/main", github.repo.tip(BRANCH))
    github.server.merge(number)
    merged = github.repo.fleet("main")

    github.server.clear_requests()
    bot.report(merged, planned(merged, one), one)
    bot.report(merged, planned(merged, one), one)
    assert drift_pulls(github) == []
    # (the new revision gets its deployment statuses; nothing about drift is written)
    assert [r.path for r in github.writes() if "/statuses/" not in r.path] == []

    # A new finding reopens the report, which lists the acknowledged one as such.
    two = patched(merged, {0, 1})
    bot.report(merged, planned(merged, two), two)
    (again,) = drift_pulls(github)
    body = github.server.pull(again).body
    assert "| acknowledged | canary-eu-1-system-000 |" in body
    assert "| new | canary-eu-1-system-001 |" in body


def test_an_unknown_cluster_neither_confirms_nor_clears_its_drift(
    github: Hub, tmp_path: Path
) -> None:
    fleet = github.repo.fleet()
    bot = make_bot(github, tmp_path, persistence=2)
    one = patched(fleet, {0})
    dark = declared(fleet, unreachable={CLUSTER: "dial tcp: timeout"})
    bot.report(fleet, planned(fleet, one), one)
    bot.report(fleet, planned(fleet, dark), dark)
    bot.report(fleet, planned(fleet, one), one)
    assert len(drift_pulls(github)) == 1
    bot.report(fleet, planned(fleet, dark), dark)
    assert len(drift_pulls(github)) == 1


def test_forge_failures_are_returned_not_raised_and_retried(github: Hub, tmp_path: Path) -> None:
    fleet = github.repo.fleet()
    bot = make_bot(github, tmp_path, persistence=1)
    one = patched(fleet, {0})
    github.server.fail_next(500, {"message": "boom"}, times=50)
    result = bot.report(fleet, planned(fleet, one), one)
    assert result.errors and any(e.startswith("drift:") for e in result.errors)
    github.server._faults.clear()  # the outage ends
    assert bot.report(fleet, planned(fleet, one), one).errors == ()
    assert len(drift_pulls(github)) == 1
