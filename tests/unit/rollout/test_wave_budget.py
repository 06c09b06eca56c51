"""A wave's failure budget describes itself and says when it is exceeded (the words the ``act``
phase quotes when a rollout halts; the stories in ``tests/stories/controller/test_act_outcome.py``
see them on a live fleet)."""

from __future__ import annotations

from gitops.rollout.result import WaveBudget


def test_a_wave_budget_says_whether_it_is_exceeded() -> None:
    assert WaveBudget("canary", 1, 1).describe() == (
        "1 nodes failed in wave canary, within maxFailedNodes 1"
    )
    assert not WaveBudget("canary", 1, 1).exceeded
    assert WaveBudget("canary", 2, 1).exceeded
    assert WaveBudget("canary", 2, 1).describe() == (
        "2 nodes failed in wave canary, more than maxFailedNodes 1"
    )
