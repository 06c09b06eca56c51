"""The controller plans again when a window opens, not before: when all a plan waits for is
time, its requeue is the opening (``plan_requeue``); while anything may move, it stays soon."""

from __future__ import annotations

from datetime import UTC, datetime

from gitops.controller.loop import plan_requeue
from gitops.plan import RolloutState, make, next_wakeup
from gitops.plan.timing import jitter
from tests.unit.core.factories import cluster, declared, fleet

SATURDAY_NOON = datetime(2026, 12, 5, 11, tzinfo=UTC).timestamp()
MONDAY_2200 = datetime(2026, 12, 7, 21, tzinfo=UTC).timestamp()
WEEKNIGHTS = {"name": "weeknights", "schedule": "0 22 * * Mon-Fri", "duration": "4h"}


def windowed() -> object:
    return fleet(
        [cluster("prod-1")],
        waves=[{"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}],
        rollout={"maintenance": {"windows": [{**WEEKNIGHTS, "timeZone": "Europe/Berlin"}]}},
    )


def test_a_plan_held_only_by_a_window_wakes_the_controller_at_the_opening() -> None:
    f = windowed()
    plan = make(f, declared(f, image="img-1"), RolloutState(), SATURDAY_NOON)
    opens = MONDAY_2200 + jitter("prod-1")
    assert next_wakeup(plan) == opens
    assert plan_requeue(plan, SATURDAY_NOON, soon=1.0) == opens - SATURDAY_NOON


def test_a_plan_with_work_that_may_move_stays_soon() -> None:
    f = windowed()
    monday = MONDAY_2200 + 3600
    plan = make(f, declared(f, image="img-1"), RolloutState(), monday)
    assert any(a.ready for a in plan.actions())
    assert plan_requeue(plan, monday, soon=1.0) == 1.0
