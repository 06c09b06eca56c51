"""Wave progress bookkeeping: ``gitops.plan.state.record_progress`` stamps what a plan shows.

The executor calls it at the end of every pass; a wave or cluster is stamped started,
converged and soaked once each, as the plan's statuses first say so, and only after it was
seen starting.
"""

from __future__ import annotations

import pytest

from gitops.plan import ClusterPlan, Plan, RolloutState, WavePlan
from gitops.plan.model import ClusterStatus, WaveStatus
from gitops.plan.state import record_progress


def plan(wave: WaveStatus, cluster: ClusterStatus) -> Plan:
    return Plan(
        id="p",
        planner_version="1",
        fleet="f",
        fleet_revision="rev",
        inventory_digest="d",
        now=0.0,
        status="in-progress",
        reason="",
        drifted_nodes=0,
        observed_nodes=1,
        max_drifted_fraction=0.3,
        override_drift_limit=False,
        waves=(
            WavePlan(
                index=1,
                name="canary",
                status=wave,
                clusters=(ClusterPlan(name="c1", status=cluster),),
            ),
        ),
        findings=(),
    )


@pytest.mark.parametrize(
    ("statuses", "milestones", "wave", "cluster"),
    [
        ([("active", "active")], ["started"], (10, None, None), (10, None, None)),
        (
            [("active", "active"), ("soaking", "soaking")],
            ["started", "converged"],
            (10, 20, None),
            (10, 20, None),
        ),
        (
            [("active", "active"), ("complete", "converged")],
            ["started", "converged", "soaked"],
            (10, 20, 20),
            (10, 20, 20),
        ),
        # Never seen starting (on target when the record began): nothing to stamp.
        ([("complete", "converged")], [], (None, None, None), (None, None, None)),
        ([("pending", "pending")], [], (None, None, None), (None, None, None)),
    ],
)
def test_progress_is_stamped_once_as_the_plan_first_shows_it(
    statuses: list[tuple[WaveStatus, ClusterStatus]],
    milestones: list[str],
    wave: tuple[float | None, ...],
    cluster: tuple[float | None, ...],
) -> None:
    state, said = RolloutState(revision="rev"), []
    for now, (wave_status, cluster_status) in zip((10.0, 20.0), statuses, strict=False):
        state, reached = record_progress(state, plan(wave_status, cluster_status), now)
        said += [what for name, what in reached if name == "canary"]
        again, repeated = record_progress(state, plan(wave_status, cluster_status), now + 5)
        assert (again, repeated) == (state, ())  # stamped once
    assert said == milestones
    w, c = state.wave("canary"), state.cluster("c1")
    assert (w.started_at, w.converged_at, w.soaked_at) == wave
    assert (c.started_at, c.converged_at, c.soaked_at) == cluster
