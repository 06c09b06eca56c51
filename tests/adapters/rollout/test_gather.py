"""How long the executor's loop lets changes gather before its next pass.

The executor alone against the simulator (``tests.adapters.rollout.conftest``). While steps
are in flight a pass waits as long as the last pass took (at most ``coalesce_max``), so a burst
of events does not run passes back to back; with nothing in flight it answers at once. The
time the loop spent waiting for the change is not part of "the last pass": counting it made
every wake-up during a rollout wait the whole ``coalesce_max``.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops import plan as planner
from tests.adapters.rollout.conftest import Rollout


def test_changes_gather_only_while_steps_are_in_flight_for_as_long_as_a_pass_took(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    executor, observer = r.executor()
    try:
        assert executor.gather(0.01) == 0.0  # nothing in flight: the next pass at once
        ready = planner.next_actions(executor.preview())
        assert ready
        executor.scheduler.start([ready[0]])  # as _act books a step it hands to a thread
        assert executor.gather(0.01) == 0.01
        assert executor.gather(0.0) == 0.0
        assert executor.gather(30.0) == executor.coalesce_max
    finally:
        observer.stop()
