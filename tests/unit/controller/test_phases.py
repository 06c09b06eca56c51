"""Typed phase outcomes: errors map to kinds, the soonest requeue wins, problems are named."""

from __future__ import annotations

import pytest

from gitops.controller.phases import PhaseOutcome, from_error, problems, soonest
from gitops.errors import GitopsError, Stalled, Transient, Waiting


@pytest.mark.parametrize(
    ("error", "kind", "requeue"),
    [
        (Stalled("revision abc is invalid"), "stalled", None),
        (Waiting("node n-1 is booting", after=7.5), "waiting", 7.5),
        (Transient("connection refused"), "transient", 2.0),
        (GitopsError("an adapter that did not say"), "transient", 2.0),
    ],
    ids=["stalled", "waiting", "transient", "untyped"],
)
def test_an_error_becomes_an_outcome_of_its_kind(
    error: GitopsError, kind: str, requeue: float | None
) -> None:
    outcome = from_error("fetch", error, 0.25, backoff=2.0)
    assert (outcome.name, outcome.kind, outcome.message) == ("fetch", kind, str(error))
    assert (outcome.duration, outcome.requeue) == (0.25, requeue)


def test_the_soonest_requeue_wins_and_none_means_the_interval() -> None:
    outcomes = [
        PhaseOutcome("fetch", "ok"),
        PhaseOutcome("plan", "waiting", "soak", requeue=3.0),
        PhaseOutcome("report", "ok", "due", requeue=0.5),
    ]
    assert soonest(outcomes) == 0.5
    assert soonest([PhaseOutcome("fetch", "ok")]) is None


def test_problems_name_transient_and_stalled_phases_only() -> None:
    outcomes = [
        PhaseOutcome("fetch", "transient", "cannot reach the remote"),
        PhaseOutcome("load", "stalled", "revision abc is invalid: fleet.yaml:3:1: bad"),
        PhaseOutcome("plan", "waiting", "rollout in progress"),
        PhaseOutcome("act", "ok", "carrying the plan out"),
    ]
    assert problems(outcomes) == [
        "fetch: Transient: cannot reach the remote",
        "load: Stalled: revision abc is invalid: fleet.yaml:3:1: bad",
    ]


def test_outcomes_are_the_same_when_kind_and_message_are_whatever_the_timings() -> None:
    one = PhaseOutcome("observe", "ok", "4 clusters, 17 nodes", duration=0.1, requeue=1.0)
    assert one.same(PhaseOutcome("observe", "ok", "4 clusters, 17 nodes", duration=0.3))
    assert not one.same(PhaseOutcome("observe", "ok", "4 clusters, 18 nodes"))
    assert not one.same(None)
    assert one.as_status() == {
        "phase": "observe",
        "result": "Ok",
        "message": "4 clusters, 17 nodes",
    }
