"""A failure-budget halt holds under ``gitops run`` after the bot opens its revert pull request.

The story of ``gitops demo``'s third act, as small as it goes: the world of the controller
stories (``tests.adapters.controller.conftest``), a fake GitHub, and ``gitops run`` as a real process.
A revision moves the canary pool to an image whose nodes never boot (the simulator's boot
failure rate at 1), ``maxFailedNodes: 1`` is spent, the rollout halts and the bot opens the
revert pull request, which nobody merges. The fleet revision does not change, so the halt must
hold pass after pass: the plan stays ``halted`` in the status branch's files, in the
dashboard's JSON and in ``/readyz``, and the audit log shows no Machine created after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitops.sim.forges import FakeGitHub
from tests.adapters.bot.conftest import SLUG, TOKEN
from tests.adapters.controller.conftest import (
    Launch,
    RunProcess,
    World,
    commit,
    in_force,
    phase,
    set_image,
    status_doc,
    until,
)
from tests.conftest import git

PASSES_AFTER_HALT = 5  # reconcile passes watched after the revert pull request is open


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub((SLUG,), token=TOKEN)
    server.start()
    yield server
    server.stop()


def _passes(run: RunProcess) -> int:
    """How many act phases the controller has run (its reconcile passes), from ``/metrics``."""
    _, body = run.get("/metrics")
    match = re.search(r'^gitops_reconcile_duration_seconds_count\{phase="act"\} (\S+)$', body, re.M)
    return int(float(match.group(1))) if match else 0


def _dashboard(run: RunProcess) -> dict[str, object]:
    code, body = run.get("/api/v1/fleet")
    assert code == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def _status_of(readme: str) -> str:
    """The plan's status as a status README states it."""
    match = re.search(r"plan `[^`]*`: \*\*([a-z-]+)\*\*", readme)
    return match.group(1) if match else ""


def _plan_status(world: World) -> str:
    """The plan's status on the status branch now."""
    return _status_of(world.status.read().get("README.md", b"").decode())


def _history(world: World, revision: str) -> list[tuple[str, dict[str, Any]]]:
    """The status commits of ``revision``, oldest first: the plan status each states, and the
    act phase of its ``controller.yaml``."""
    out = []
    for sha in git(world.bare, "log", "--reverse", "--format=%H", "gitops/status").split():
        readme = git(world.bare, "show", f"{sha}:README.md")
        if revision not in readme:
            continue
        doc = YAML(typ="safe").load(git(world.bare, "show", f"{sha}:controller.yaml"))
        out.append((_status_of(readme), phase(doc, "act")))
    return out


@pytest.mark.slow
def test_the_halt_holds_after_the_revert_pull_request_until_a_new_revision(
    world: World, gitops_run: Launch, github: FakeGitHub, tmp_path: Path
) -> None:
    token = tmp_path / "forge-token"
    token.write_text(TOKEN)
    forge = ("--forge", "github", "--forge-url", github.url, "--forge-token-file", str(token))
    run = gitops_run("a", *forge, "--repo-slug", SLUG, "--pr-sweep-interval", "1s")
    run.wait_log(in_force(git(world.work, "rev-parse", "HEAD")))

    # The canary moves to an image whose nodes never boot.
    world.sim.world.physics.boot_failure_rate = 1.0  # type: ignore[union-attr]
    set_image(world.work, "os-1", "os-2", "canary.yaml")
    broken = commit(world.work, "Roll the canary to os-2")
    reverts = until(
        lambda: [p for p in github.pulls() if p.head_ref.startswith("gitops/revert/")],
        90,
        "the revert pull request",
    )
    # The bot acts on a plan only once its status is out: the revert pull request never
    # shows before the status branch and the dashboard say halted.
    assert _plan_status(world) == "halted"
    assert _dashboard(run)["status"] == "halted"
    assert len(reverts) == 1 and reverts[0].state == "open"  # opened, never merged
    created = len(world.created())
    assert created >= 2  # the canary replacements that failed and spent the budget

    seen = _passes(run)
    until(lambda: _passes(run) >= seen + PASSES_AFTER_HALT, 60, "more reconcile passes")
    assert _plan_status(world) == "halted"
    canary = status_doc(world.status, "status/canary.yaml")
    assert canary["fleetRevision"] == broken
    stalled = next(c for c in canary["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Halted")
    assert "maxFailedNodes" in stalled["message"]
    ready = next(c for c in canary["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Halted")  # 0 of 2 on os-2
    board = _dashboard(run)
    assert board["status"] == "halted" and board["revision"]["text"].startswith(broken[:12])
    halt = board["halt"]
    assert isinstance(halt, dict) and "maxFailedNodes" in str(halt["reason"])
    code, ready = run.get("/readyz")
    assert "act: Stalled: rollout halted: 2 nodes failed in wave canary" in ready, (code, ready)
    assert len(world.created()) == created  # nothing new started after the halt
    assert github.pulls() == reverts  # and the bot opened nothing more

    # On the status branch, no commit shows a plan in progress once the rollout halted, nor
    # next to an act phase that says it halted.
    history = _history(world, broken)
    statuses = [plan for plan, _ in history]
    assert "halted" in statuses
    assert "in-progress" not in statuses[statuses.index("halted") :]
    for plan, act in history:
        assert plan == "halted" or "rollout halted" not in act.get("message", ""), history
