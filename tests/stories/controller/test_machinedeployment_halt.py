"""A broken image in a MachineDeployment pool halts the fleet and opens the revert pull request.

The controller stories' world with every pool a MachineDeployment, a fake GitHub and ``gitops
run`` as a real process. A revision moves the canary to an image whose nodes never boot: the
simulated Cluster API makes the new template's Machines, gitops abandons each that is not
Ready within nodeStartupTimeout and counts it, ``maxFailedNodes: 1`` is spent, the rollout
halts, the canary's deployment is paused (Cluster API's own pause) and the bot opens the revert
pull request. No later wave is touched and nothing is created once the deployment is paused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.sim.api.resources import RESOURCES
from gitops.sim.forges import FakeGitHub
from tests.adapters.bot.conftest import SLUG, TOKEN
from tests.adapters.controller.conftest import (
    Launch,
    World,
    build_world,
    commit,
    in_force,
    set_image,
    until,
)
from tests.conftest import git

pytestmark = pytest.mark.slow

DEPLOYMENTS = RESOURCES["machinedeployments.cluster.x-k8s.io"]
MACHINES = RESOURCES["machines.cluster.x-k8s.io"]


@pytest.fixture
def world(tmp_path: Path, fleet_remote: Callable[..., tuple[Path, Path]]) -> Iterator[World]:
    """The controller stories' world, its pools rolled through MachineDeployments."""
    made = build_world(tmp_path, fleet_remote, md=True)
    yield made
    made.sim.stop()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub((SLUG,), token=TOKEN)
    server.start()
    yield server
    server.stop()


def _deployment(world: World, cluster: str, name: str) -> dict[str, Any]:
    found = world.sim.store.get("", DEPLOYMENTS, cluster, name)
    assert found is not None
    return found


def test_a_broken_image_in_a_machinedeployment_pool_halts_and_opens_the_revert(
    world: World, gitops_run: Launch, github: FakeGitHub, tmp_path: Path
) -> None:
    token = tmp_path / "forge-token"
    token.write_text(TOKEN)
    forge = ("--forge", "github", "--forge-url", github.url, "--forge-token-file", str(token))
    run = gitops_run("a", *forge, "--repo-slug", SLUG, "--pr-sweep-interval", "1s")
    run.wait_log(in_force(git(world.work, "rev-parse", "HEAD")))
    assert world.created() == []  # the seeded fleet is converged: nothing to do

    world.sim.world.physics.boot_failure_rate = 1.0  # type: ignore[union-attr]
    set_image(world.work, "os-1", "os-2", "canary.yaml")
    commit(world.work, "Roll the canary to os-2")
    reverts = until(
        lambda: [p for p in github.pulls() if p.head_ref.startswith("gitops/revert/")],
        90,
        "the revert pull request",
    )
    assert len(reverts) == 1 and reverts[0].state == "open"
    canary = until(
        lambda: (md := _deployment(world, "canary", "workers"))["spec"].get("paused") and md,
        30,
        "the canary's MachineDeployment to be paused",
    )
    # The canary was rolled by its deployment (to a clone of its template), never by a Machine
    # of gitops' own; its failed Machines were counted (two spend maxFailedNodes 1).
    assert canary["metadata"]["annotations"]["fleet.gitops.io/image"] == "os-2"
    created = world.created()
    assert len(created) >= 2 and {e["cluster"] for e in created} == {"canary"}
    machines, _ = world.sim.store.list("", MACHINES)
    assert machines
    assert all(
        any(o.get("kind") == "MachineSet" for o in m["metadata"].get("ownerReferences") or [])
        for m in machines
    )
    # The halt holds: the paused deployment makes nothing more, and no later wave started.
    for cluster in ("staging", "prod-a", "prod-b"):
        md = _deployment(world, cluster, "workers")
        assert "fleet.gitops.io/image" not in (md["metadata"].get("annotations") or {})
    settled = len(world.created())
    seen = len(run.logs())
    until(lambda: len(run.logs()) >= seen + 5, 60, "more controller log lines")
    assert len(world.created()) == settled
    # No second revert (a drift pull request for the NotReady canary node may come and go).
    assert [p for p in github.pulls() if p.head_ref.startswith("gitops/revert/")] == reverts
