"""The controller's drain waits for evicted pods to be gone before it deletes their Machine.

On the simulator, an evicted pod stays Terminating for its grace period (the seeded pods' 30 s
here, scaled) until its kubelet removes it. Read from the audit log, from outside the
controller: no Machine is deleted while a pod evicted from its node is still Terminating.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.invariants import check, load_events

# Slow by nature: the test carries a whole rollout out on the simulator.
pytestmark = pytest.mark.slow


def test_no_machine_is_deleted_while_a_pod_of_its_node_is_terminating(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(world={"pod_grace_seconds": 30})  # 0.6 s of Terminating at the sim's scale
    plan = r.run()
    assert plan.converged, plan
    assert check(r.audit, r.snap, r.fleet) == []

    lines = load_events(r.audit)
    evicted: dict[tuple[str, str], tuple[str, float]] = {}  # (namespace, pod) -> (node, when)
    gone: dict[tuple[str, str], float] = {}
    for line in lines:
        if line["kind"] == "change" and line["event"] == "pod-evicted":
            evicted[(line["namespace"], line["name"])] = (line["node"], line["time"])
        elif line["kind"] == "change" and line["event"] == "pod-terminated":
            gone[(line["namespace"], line["name"])] = line["time"]
    deletes = [
        (line["name"], line["time"])
        for line in lines
        if line["kind"] == "request"
        and line["verb"] == "delete"
        and line["resource"] == "machines"
        and line["code"] == 200
    ]
    assert deletes
    waited = 0
    for machine, when in deletes:  # a Machine's node carries its name
        on_node = [(pod, at) for pod, (node, at) in evicted.items() if node == machine]
        for pod, at in on_node:
            if at < when:
                assert gone.get(pod, float("inf")) < when, (
                    f"{machine} deleted while {pod} terminated"
                )
        waited += bool(on_node)
    assert waited  # some of those nodes did hold pods that had to go first
