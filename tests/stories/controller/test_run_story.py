"""The controller loop end to end, in a thread: real git (file:// or git daemon), the simulator.

An engineer's commit bumping the image rolls through the waves and the converged state shows
on the status branch, with every phase timed; a malformed commit is reported Stalled (with its
file:line:col) while the last good revision stays in force; an unreachable remote is a
Transient fetch that readiness names and that heals by itself; an idle controller writes no
status commit.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitops.gitrepo.status import trailers
from tests.adapters.controller.conftest import (
    Story,
    World,
    commit,
    condition,
    converged_at,
    phase,
    run_story,
    set_image,
    status_doc,
    until,
)
from tests.adapters.gitrepo import servers
from tests.adapters.gitrepo.servers import GitDaemon
from tests.conftest import git


def _sample(story: Story, name: str, **labels: str) -> float | None:
    return story.controller.metrics.registry.get_sample_value(name, labels)


@pytest.mark.slow
def test_a_pushed_image_bump_rolls_out_and_the_status_branch_shows_it(story: Story) -> None:
    work, controller = story.world.work, story.controller
    first = git(work, "rev-parse", "HEAD")
    until(lambda: status_doc(story.status, "status/prod-b.yaml").get("fleetRevision") == first)
    set_image(work, "os-1", "os-2")
    bumped = commit(work, "Roll the fleet to os-2")
    until(lambda: converged_at(story.status, bumped), 90, "the fleet on os-2")
    tip = story.status.tip()
    assert tip is not None and trailers(tip.message)["Fleet-Revision"] == bumped
    assert git(story.world.bare, "rev-parse", "main") == bumped  # main never written by us
    assert controller.state.history == [first, bumped]
    # Every phase that runs on its own is timed under its name; plan is timed with act.
    for name in ("fetch", "load", "observe", "act", "report"):
        count = _sample(story, "gitops_reconcile_duration_seconds_count", phase=name)
        assert count is not None and count >= 1, name
    assert _sample(story, "gitops_reconcile_duration_seconds_count", phase="plan") is None
    until(lambda: _sample(story, "gitops_phase_result", phase="plan", result="ok") == 1)
    assert phase(status_doc(story.status, "controller.yaml"), "plan")["message"] == "converged"


@pytest.mark.slow
def test_a_malformed_commit_is_stalled_and_the_last_good_revision_stays(story: Story) -> None:
    work, controller = story.world.work, story.controller
    good = git(work, "rev-parse", "HEAD")
    until(lambda: status_doc(story.status, "status/canary.yaml").get("fleetRevision") == good)
    (work / "canary.yaml").write_text(
        "apiVersion: fleet.gitops.io/v1alpha1\nkind: Cluster\nspec: [\n"
    )
    bad = commit(work, "Break the canary file")
    until(lambda: "Stalled" in story.status.read().get("README.md", b"").decode())
    readme = story.status.read()["README.md"].decode()
    assert f"revision {bad[:12]} is invalid" in readme
    assert re.search(r"canary\.yaml:\d+:\d+: ", readme), readme  # file:line:col
    assert controller.state.fleet is not None and controller.state.fleet.revision == good
    stalled = condition(status_doc(story.status, "status/canary.yaml"), "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RevisionNotApplied"
    load = phase(status_doc(story.status, "controller.yaml"), "load")
    assert load["result"] == "Stalled" and f"revision {bad[:12]} is invalid" in load["message"]
    ready, why = controller.ready()
    assert ready  # the last good revision runs on ...
    assert f"revision {good[:12]} is in force" in why and "load: Stalled: " in why  # ... and says


@pytest.mark.slow
def test_an_unreachable_remote_is_transient_named_by_readiness_and_heals(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = GitDaemon(world.root).start()
    port = daemon.port
    try:
        with run_story(world, daemon.url("fleet.git")) as story:
            controller = story.controller
            good = git(world.work, "rev-parse", "HEAD")
            until(lambda: controller.state.fleet is not None, 30, "the first revision in force")
            daemon.stop()
            until(
                lambda: controller.state.outcomes["fetch"].kind == "transient",
                30,
                "a transient fetch",
            )
            until(lambda: controller.state.failures >= 2, 30, "a second failing pass")
            fetch = controller.state.outcomes["fetch"]
            assert "Connection refused" in fetch.message or "unable to connect" in fetch.message
            assert fetch.requeue is not None and fetch.requeue > 0  # retried with backoff
            ready, why = controller.ready()
            assert ready and "fetch: Transient: " in why
            assert controller.state.fleet is not None and controller.state.fleet.revision == good
            assert controller.state.outcomes["load"].ok  # the last word on the revision stands
            metrics = controller.metrics.registry
            assert metrics.get_sample_value(
                "gitops_phase_result", {"phase": "fetch", "result": "transient"}
            )
            monkeypatch.setattr(servers, "free_port", lambda: port)
            daemon.start()
            until(lambda: controller.state.outcomes["fetch"].ok, 30, "the fetch to heal")
            healed = (True, f"revision {good[:12]} is in force")
            until(lambda: controller.ready() == healed, 30, "readiness to say nothing is wrong")
            # the count of failing passes resets when the healed pass ends (after its report
            # phase), a moment after its fetch outcome shows: wait for that pass to end
            until(lambda: controller.state.failures == 0, 30, "the backoff to reset")
    finally:
        daemon.stop()


@pytest.mark.slow
def test_an_idle_controller_writes_no_status_commit(story: Story) -> None:
    controller = story.controller
    until(lambda: phase(status_doc(story.status, "controller.yaml"), "plan").get("result") == "Ok")
    tip = story.status.tip()
    passes = controller.state.reconciles
    until(lambda: controller.state.reconciles >= passes + 10, 30, "ten more passes")
    assert story.status.tip() == tip  # no timings or counters leak into the status files


@pytest.mark.slow
def test_the_status_file_of_the_controller_names_every_phase_but_report(story: Story) -> None:
    until(lambda: "report" in story.controller.state.outcomes, 30)
    doc = YAML(typ="safe").load(story.controller.controller_file())
    assert [p["phase"] for p in doc["phases"]] == ["fetch", "load", "observe", "plan", "act"]
    assert doc["fleetRevision"] == git(Path(story.world.work), "rev-parse", "HEAD")


@pytest.mark.slow
def test_leadership_lost_and_won_back_never_runs_two_loops_at_once(story: Story) -> None:
    controller = story.controller
    until(lambda: controller.state.reconciles >= 2, 30, "the loop to run")
    inside, most = [0], [0]
    reconcile_once = controller.reconcile_once

    def counted() -> tuple[Any, ...]:
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.05)  # holds the pass open, so that a second loop would overlap it
            return reconcile_once()
        finally:
            inside[0] -= 1

    controller.reconcile_once = counted  # type: ignore[method-assign]
    controller.pause()  # lost ...
    controller.resume()  # ... and won back before the first loop noticed
    second = threading.Thread(target=lambda: controller.run(interval=0.2), daemon=True)
    second.start()
    passes = controller.state.reconciles
    until(lambda: controller.state.reconciles >= passes + 10, 30, "ten more passes")
    assert most[0] == 1
    controller.pause()
    second.join(10)
    assert not second.is_alive()
