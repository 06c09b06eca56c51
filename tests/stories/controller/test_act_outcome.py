"""The ``act`` phase reads the executor's typed pass result: a failed boot within the budget is
not Stalled, a halt is.

The controller runs pass by pass in the test's thread (``reconcile_once``), so every pass's
outcome is seen, against the simulator whose replacements fail to boot (``boot_failure_rate``).
The fleet allows one failed node per wave (``maxFailedNodes: 1``) and the commit moves only the
canary to a new image: its first replacement fails at ``nodeStartupTimeout`` and is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gitops.controller.loop import Controller
from gitops.controller.phases import PhaseOutcome
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.kube.client import connect
from tests.adapters.controller.conftest import World, commit, set_image, until
from tests.adapters.rollout.conftest import POLICY_SCALE
from tests.adapters.rollout.invariants import load_events


@pytest.fixture
def controller(world: World) -> Iterator[Controller]:
    remote = Remote(world.url, branch="main")
    made = Controller(
        Mirror(world.root / "cache", remote),
        connect(world.sim.kubeconfig_path),
        time_scale=POLICY_SCALE,
    )
    yield made
    made.stop()


def _boot_failures(world: World) -> int:
    return sum(1 for e in load_events(world.audit) if e.get("event") == "node-boot-failed")


def _acts(controller: Controller, done: str, heal: World | None = None) -> list[PhaseOutcome]:
    """Run passes until the plan's status is ``done``; every pass's ``act`` outcome.

    With ``heal``, boots succeed again once one has failed.
    """
    acts: list[PhaseOutcome] = []

    def one_pass() -> bool:
        outcomes = {o.name: o for o in controller.reconcile_once()}
        acts.append(outcomes["act"])
        if heal is not None and _boot_failures(heal):
            heal.sim.world.physics.boot_failure_rate = 0.0  # type: ignore[union-attr]
        plan = controller.state.plan
        return plan is not None and plan.status == done

    until(one_pass, 90, f"a plan {done}")
    return acts


def _bump_canary(world: World) -> None:
    world.sim.world.physics.boot_failure_rate = 1.0  # type: ignore[union-attr]
    set_image(world.work, "os-1", "os-2", "canary.yaml")
    commit(world.work, "Roll the canary to os-2")


@pytest.mark.slow
def test_a_boot_failure_within_the_budget_never_stalls_the_act_phase(
    world: World, controller: Controller
) -> None:
    _bump_canary(world)
    acts = _acts(controller, "converged", heal=world)
    assert _boot_failures(world) == 1
    assert acts, "no pass ran"
    assert [a for a in acts if a.kind == "stalled"] == []
    assert {a.kind for a in acts} <= {"ok", "waiting", "transient"}
    # After the failure, the act phase names the budget it used, pass after pass.
    named = [
        a for a in acts if "1 nodes failed in wave canary, within maxFailedNodes 1" in a.message
    ]
    assert named and named[-1] is acts[-1] and acts[-1].kind == "ok"


@pytest.mark.slow
def test_boot_failures_past_the_budget_halt_and_stall_the_act_phase(
    world: World, controller: Controller
) -> None:
    _bump_canary(world)
    acts = _acts(controller, "halted")
    assert _boot_failures(world) >= 2
    halt = "rollout halted: 2 nodes failed in wave canary, more than maxFailedNodes 1"
    assert acts[-1] == PhaseOutcome("act", "stalled", halt, acts[-1].duration)
    # The first failure, within the budget, did not stall it: only the halt did.
    stalled = [i for i, a in enumerate(acts) if a.kind == "stalled"]
    assert stalled and all(acts[i].message == halt for i in stalled)
    # Stalled it stays: the next pass still says so.
    (again,) = [o for o in controller.reconcile_once() if o.name == "act"]
    assert (again.kind, again.message) == ("stalled", halt)
