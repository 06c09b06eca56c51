"""Stories: a revert pull request after a failure-budget halt; deployment statuses."""

from __future__ import annotations

from pathlib import Path

from gitops.fleet import Fleet
from gitops.plan import RolloutState, make
from tests.adapters.bot.conftest import Hub, make_bot
from tests.adapters.bot.helpers import with_failed_machine
from tests.conftest import git
from tests.unit.core.factories import T0, declared

CANARY = "clusters/canary-eu-1.yaml"


def test_a_budget_halt_opens_one_revert_pr_that_changes_only_image_lines(
    hub: Hub, tmp_path: Path
) -> None:
    old = hub.repo.show("main", CANARY)
    # The last good revision ran talos-1.8.4 in the canary; it converged.
    good_text = old.replace("image: talos-1.9.2", "image: talos-1.8.4")
    hub.repo.commit({CANARY: good_text}, "canary on 1.8.4")
    good = hub.repo.fleet()
    bot = make_bot(hub, tmp_path)
    converged = declared(good)
    bot.report(good, make(good, converged, RolloutState(revision=good.revision), T0), converged)

    # The next revision moves the canary to 1.9.2; two replacements fail: the rollout halts.
    hub.repo.commit({CANARY: old}, "canary to 1.9.2")
    bad = hub.repo.fleet()
    observed = with_failed_machine(
        declared(bad, image=lambda c, p: "talos-1.8.4" if c == "canary-eu-1" else "talos-1.9.2")
    )
    state = (
        RolloutState(revision=bad.revision)
        .record_failure("canary")
        .record_failure("canary")
        .record_failure("canary")
    )
    halted = make(bad, observed, state, T0)
    assert halted.status == "halted" and "maxFailedNodes" in halted.reason
    assert bot.report(bad, halted, observed).errors == ()
    bot.report(bad, halted, observed)  # again: still one pull request

    branch = f"gitops/revert/{bad.revision[:12]}"
    pulls = [p for p in hub.server.pulls() if p.head_ref == branch]
    assert len(pulls) == 1
    body = pulls[0].body
    assert "| canary-eu-1 | system | `talos-1.9.2` | `talos-1.8.4` |" in body
    assert "| canary-eu-1 | general | `talos-1.9.2` | `talos-1.8.4` |" in body
    assert "canary-eu-1-system-new-1" in body and "nodeStartupTimeout" in body
    assert halted.reason in body
    numstat = git(hub.repo.bare, "diff", "--numstat", bad.revision, branch)
    assert numstat == f"2\t2\t{CANARY}"
    diff = git(hub.repo.bare, "diff", "-U0", bad.revision, branch)
    changed = [x for x in diff.splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    assert sorted(changed) == sorted(
        ["-      image: talos-1.9.2"] * 2 + ["+      image: talos-1.8.4"] * 2
    )
    assert hub.repo.show(branch, CANARY) == good_text  # comments and layout intact


def test_after_a_restart_the_healthy_nodes_tell_what_to_revert_to(
    github: Hub, tmp_path: Path
) -> None:
    fleet = github.repo.fleet()
    bot = make_bot(github, tmp_path)  # never saw an earlier revision converge
    observed = declared(
        fleet, image=lambda c, p: "talos-1.8.4" if (c, p) == ("canary-eu-1", "general") else None
    )
    state = RolloutState(revision=fleet.revision).halt(
        "3 nodes failed in wave canary, more than maxFailedNodes 2", T0
    )
    halted = make(fleet, observed, state, T0)
    bot.report(fleet, halted, observed)
    (pull,) = github.server.pulls()
    assert (
        "| canary-eu-1 | general | `talos-1.9.2` | `talos-1.8.4` | the image its healthy nodes run |"
        in pull.body
    )
    assert "were not seen by this controller" in pull.body
    assert (
        git(github.repo.bare, "diff", "--numstat", fleet.revision, pull.head_ref)
        == f"1\t1\t{CANARY}"
    )


def on_previous(fleet: Fleet, cluster: str, pool: str) -> str:
    """The image before the pool's declared one in its family (GPU pools: the NVIDIA one)."""
    doc = fleet.cluster(cluster)
    declared_pool = doc.pool(pool) if doc is not None else None
    assert declared_pool is not None
    return fleet.previous_image(declared_pool.image)


def test_no_revert_for_a_halt_that_is_not_the_failure_budget(github: Hub, tmp_path: Path) -> None:
    fleet = github.repo.fleet()
    observed = declared(fleet, image=lambda c, p: on_previous(fleet, c, p))
    halted = make(
        fleet, observed, RolloutState(revision=fleet.revision).halt("drain of n timed out", T0), T0
    )
    make_bot(github, tmp_path).report(fleet, halted, observed)
    assert github.server.pulls() == []


def test_deploy_statuses_go_pending_then_success_or_failure_only_on_change(
    hub: Hub, tmp_path: Path
) -> None:
    fleet = hub.repo.fleet()
    bot = make_bot(hub, tmp_path)
    rolling = declared(fleet, image=lambda c, p: on_previous(fleet, c, p))
    state = RolloutState(revision=fleet.revision)

    def latest() -> dict[str, str]:
        found: dict[str, str] = {}
        for s in hub.server.statuses(fleet.revision):
            found[s.context] = s.state
        return found

    bot.report(fleet, make(fleet, rolling, state, T0), rolling)
    assert latest() == {f"gitops/deploy/{c.name}": "pending" for c in fleet.clusters}
    hub.server.clear_requests()
    bot.report(fleet, make(fleet, rolling, state, T0 + 1), rolling)
    assert hub.writes() == []

    done = declared(fleet)
    bot.report(fleet, make(fleet, done, state, T0 + 2), done)
    assert set(latest().values()) == {"success"}

    # A restarted bot reads what is there and sends nothing new.
    hub.server.clear_requests()
    make_bot(hub, tmp_path).report(fleet, make(fleet, done, state, T0 + 3), done)
    assert hub.writes() == []

    halted = make(fleet, rolling, state.halt("3 nodes failed in wave canary", T0), T0 + 4)
    bot.report(fleet, halted, rolling)
    assert set(latest().values()) in ({"failure"}, {"failed"})
