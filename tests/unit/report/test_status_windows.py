"""Status files and metrics carry each cluster's window: open or not, until when, next opening;
and the emergency override while it is in force."""

from __future__ import annotations

from datetime import UTC, datetime

from gitops import plan as planner
from gitops.controller.metrics import Metrics
from gitops.fleet.openings import window_states
from gitops.report.status import cluster_status
from tests.unit.core.factories import cluster, declared, fleet

SATURDAY_NOON = datetime(2026, 12, 5, 11, tzinfo=UTC).timestamp()
WEEKNIGHTS = {
    "name": "weeknights",
    "schedule": "0 22 * * Mon-Fri",
    "duration": "4h",
    "timeZone": "Europe/Berlin",
}


def windowed(**rollout: object) -> object:
    return fleet(
        [cluster("prod-1"), cluster("prod-2")],
        waves=[
            {
                "name": "prod",
                "clusters": {"matchLabels": {"ring": "prod"}},
                "maintenance": {"windows": [WEEKNIGHTS]},
            }
        ],
        rollout=dict(rollout),
    )


def test_status_names_the_next_window_and_the_override() -> None:
    f = windowed(override={"reason": "CVE fix", "until": "2026-12-06T00:00:00Z"})
    inventory = declared(f, image="img-1")
    plan = planner.make(f, inventory, planner.RolloutState(), SATURDAY_NOON)
    rollout = cluster_status(f, inventory, plan, "prod-1")["rollout"]
    assert rollout["window"] == {
        "open": "false",
        "nextOpening": "2026-12-07T21:00+00:00",
        "window": "window weeknights (Europe/Berlin)",
    }
    assert rollout["override"] == ("override lifts windows until 2026-12-06T00:00+00:00: CVE fix")
    monday = datetime(2026, 12, 7, 22, tzinfo=UTC).timestamp()
    later = planner.make(f, inventory, planner.RolloutState(), monday)
    rollout = cluster_status(f, inventory, later, "prod-1")["rollout"]
    assert rollout["window"]["open"] == "true"
    assert rollout["window"]["closes"] == "2026-12-08T01:00+00:00"
    assert "override" not in rollout  # lapsed


def test_window_open_metric_follows_the_clock() -> None:
    f = windowed()
    assert window_states(f, SATURDAY_NOON) == (("wave:prod", "weeknights", False),)
    monday = datetime(2026, 12, 7, 22, tzinfo=UTC).timestamp()
    assert window_states(f, monday) == (("wave:prod", "weeknights", True),)
    metrics = Metrics()
    for scope, name, is_open in window_states(f, monday):
        metrics.window_open.labels(scope, name).set(is_open)
    value = metrics.registry.get_sample_value(
        "gitops_window_open", {"scope": "wave:prod", "name": "weeknights"}
    )
    assert value == 1.0
