"""A sharded executor whose cluster's fence moved writes nothing there (issue 17).

The executor plans and acts as one replica of ``gitops run --sharding`` over the simulator,
with the real per-cluster fences (``gitops.kube.fence``). Another replica then takes the
canary's fence (bumping its epoch); every step of the canary is refused before it sends
anything, and so is the canary's record, while the clusters this replica still holds carry on.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops.kube.fence import ClusterFence
from gitops.kube.observe import Observer
from gitops.rollout.executor import Executor
from gitops.rollout.sharded import ShardedStore
from tests.adapters.rollout.conftest import POLICY_SCALE, Rollout

NAMESPACE = "default"


def sharded(r: Rollout, fence: ClusterFence) -> tuple[Executor, Observer, ShardedStore]:
    owned = frozenset(c.name for c in r.fleet.clusters)
    for name in sorted(owned):
        fence.take(name)
    store = ShardedStore(
        r.management,
        NAMESPACE,
        identity="me",
        fence=fence,
        owned=lambda: owned,
        coordinator=lambda: True,
        time_scale=POLICY_SCALE,
    )
    assert store.cache.wait_synced(20)
    executor, observer = r.executor(store=store, fence=fence.check)
    return executor, observer, store


def test_steps_of_a_cluster_whose_fence_moved_are_refused_before_any_write(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout()
    fence = ClusterFence(r.management, NAMESPACE, "me")
    executor, observer, store = sharded(r, fence)
    ClusterFence(r.management, NAMESPACE, "other").take("canary")  # a new owner took it
    try:
        result = executor.reconcile()
        executor.close()
        planned = [a for a in result.plan.actions() if a.ready and a.cluster == "canary"]
        assert planned, "the canary had nothing to do: the test proves nothing"
        # a step that ends while the first pass still gathers is reported by that pass
        finished = [*result.outcomes, *executor.reconcile().outcomes]
    finally:
        observer.stop()
        store.stop()
    refused = [s for s in finished if s.cluster == "canary"]
    assert refused and all(s.outcome.failure is not None for s in refused)
    assert all("canary" in s.outcome.failure.message for s in refused if s.outcome.failure)
    canary_writes = [
        line
        for line in r.audit.read_text().splitlines()
        if '"kind":"request"' in line.replace(" ", "")
        and '"namespace":"canary"' in line.replace(" ", "")
        and any(f'"verb":"{v}"' in line.replace(" ", "") for v in ("create", "patch", "delete"))
    ]
    assert canary_writes == []
    assert store.fenced >= 1  # and its record was not written either
