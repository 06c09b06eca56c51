"""The controller's report phase drives the bot: a loop in a thread, the simulator, a fake forge.

The world of the controller stories (a small three-wave fleet on ``os-1``, served from a bare
repository over ``file://``, its nodes in the simulator) plus a fake GitHub; the bot sweeps
pull requests at every pass. A forge outage is counted as ``gitops_errors_total{kind="forge"}``
and never stops the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.bot.service import Bot
from gitops.controller.loop import Controller
from gitops.forge import Limiters, connect
from gitops.gitrepo.branches import Branches
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.kube.client import connect as kube_connect
from gitops.sim.forges import FakeGitHub
from tests.adapters.bot.conftest import SLUG, TOKEN
from tests.adapters.controller.conftest import World, until, world  # noqa: F401  (the fixture)
from tests.adapters.rollout.conftest import POLICY_SCALE
from tests.conftest import git


@pytest.fixture
def loop_with_bot(world: World, tmp_path: Path) -> Iterator[tuple[Controller, FakeGitHub]]:  # noqa: F811
    server = FakeGitHub((SLUG,), token=TOKEN)
    server.start()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    forge = connect(
        "github", server.url, str(token), SLUG, limiters=Limiters(), min_write_interval=0.0
    )
    remote = Remote(world.url, branch="main")
    bot = Bot(forge, Branches(tmp_path / "bot", remote), sweep_interval=0.0)
    controller = Controller(
        Mirror(tmp_path / "mirror", remote),
        kube_connect(world.sim.kubeconfig_path),
        bot=bot,
        time_scale=POLICY_SCALE,
    )
    thread = threading.Thread(target=lambda: controller.run(interval=0.2), daemon=True)
    thread.start()
    try:
        yield controller, server
    finally:
        controller.stop()
        thread.join(10)
        forge.close()
        server.stop()


def test_the_report_phase_publishes_deploy_statuses_and_pr_plans(
    world: World,  # noqa: F811
    loop_with_bot: tuple[Controller, FakeGitHub],
) -> None:
    controller, server = loop_with_bot
    main = git(world.bare, "rev-parse", "main")
    git(world.work, "checkout", "-q", "-b", "docs")
    (world.work / "README.md").write_text("notes\n")
    git(world.work, "add", "-A")
    git(world.work, "commit", "-qm", "docs")
    git(world.work, "push", "-q", "origin", "docs")
    head = git(world.work, "rev-parse", "HEAD")
    server.set_branch("docs", head)
    number = server.open_pull("docs").number

    def deployed() -> bool:
        latest = {s.context: s.state for s in server.statuses(main)}
        return latest == {
            f"gitops/deploy/{c}": "success" for c in ("canary", "staging", "prod-a", "prod-b")
        }

    until(deployed, 60, "deploy statuses success on the revision in force")
    until(lambda: server.comments(number), 60, "the plan comment on the pull request")
    assert {s.context for s in server.statuses(head)} == {
        f"gitops/plan/{c}" for c in ("canary", "staging", "prod-a", "prod-b")
    }

    def forge_errors() -> float:
        value = controller.metrics.registry.get_sample_value(
            "gitops_errors_total", {"kind": "forge"}
        )
        return value or 0.0

    before = controller.state.reconciles
    server.fail_next(503, {"message": "down"}, times=10_000)
    until(lambda: forge_errors() >= 1, 60, "a forge error counted")
    until(lambda: controller.state.reconciles >= before + 3, 60, "the loop going on")
