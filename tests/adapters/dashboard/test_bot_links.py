"""What the bot remembers for the dashboard's links: its open pull requests and the repository's
web page, on each forge (real git, the simulator's fake forges)."""

from __future__ import annotations

from pathlib import Path

from gitops.bot import links
from gitops.plan import RolloutState, make
from tests.adapters.bot.conftest import Hub, make_bot
from tests.adapters.bot.helpers import BRANCH, patched, planned, with_failed_machine
from tests.unit.core.factories import T0, declared


def test_the_bot_remembers_its_open_drift_pull_request_until_it_closes_it(
    hub: Hub, tmp_path: Path
) -> None:
    fleet = hub.repo.fleet()
    bot = make_bot(hub, tmp_path)
    assert bot.pulls == {} and bot.repository == ""
    drifted = patched(fleet, {0})
    for _ in range(2):  # drift is reported once it persisted over two observations
        assert bot.report(fleet, planned(fleet, drifted), drifted).errors == ()
    (opened,) = [p for p in hub.server.pulls() if p.head_ref == BRANCH]
    remembered = bot.pulls[BRANCH]
    assert (remembered.number, remembered.state) == (opened.number, "open")
    assert remembered.url and bot.repository == links.repository_url(hub.kind, remembered.url)
    assert remembered.url.startswith(bot.repository + "/")

    clean = declared(fleet)
    for _ in range(2):
        assert bot.report(fleet, planned(fleet, clean), clean).errors == ()
    assert [p.state for p in hub.server.pulls() if p.head_ref == BRANCH] == ["closed"]
    assert BRANCH not in bot.pulls
    assert bot.repository == links.repository_url(hub.kind, remembered.url)  # still known


def test_the_bot_remembers_the_revert_pull_request_it_opened(hub: Hub, tmp_path: Path) -> None:
    old = hub.repo.show("main", "clusters/canary-eu-1.yaml")
    hub.repo.commit(
        {"clusters/canary-eu-1.yaml": old.replace("image: talos-1.9.2", "image: talos-1.8.4")},
        "canary on 1.8.4",
    )
    good = hub.repo.fleet()
    bot = make_bot(hub, tmp_path)
    converged = declared(good)
    bot.report(good, make(good, converged, RolloutState(revision=good.revision), T0), converged)
    hub.repo.commit({"clusters/canary-eu-1.yaml": old}, "canary to 1.9.2")
    bad = hub.repo.fleet()
    observed = with_failed_machine(
        declared(bad, image=lambda c, p: "talos-1.8.4" if c == "canary-eu-1" else "talos-1.9.2")
    )
    state = RolloutState(revision=bad.revision)
    for _ in range(3):
        state = state.record_failure("canary")
    halted = make(bad, observed, state, T0)
    assert bot.report(bad, halted, observed).errors == ()
    head = f"gitops/revert/{bad.revision[:12]}"
    (opened,) = [p for p in hub.server.pulls() if p.head_ref == head]
    assert bot.pulls[head].number == opened.number
