"""End-to-end rollouts on the simulator, checked from its audit log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from gitops import drift
from gitops.fleet.wellknown import PHASE_ANNOTATION
from gitops.kube.capi import machines as machine_resource
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.plan import Plan
from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.invariants import check, load_events

# Slow by nature: every test carries a whole rollout out on the simulator.
pytestmark = pytest.mark.slow


def _first(events: list[dict], event: str, cluster: str) -> float:
    return min(e["time"] for e in events if e.get("event") == event and e["cluster"] == cluster)


def _last(events: list[dict], event: str, cluster: str) -> float:
    return max(e["time"] for e in events if e.get("event") == event and e["cluster"] == cluster)


def test_image_bump_rolls_through_three_waves_in_order(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="previous")
    plan = r.run()
    assert plan.status == "converged", plan.reason
    assert check(r.audit, r.snap, r.fleet) == []
    events = load_events(r.audit)
    created = {
        c: [e for e in events if e.get("event") == "machine-created" and e["cluster"] == c]
        for c in ("canary", "staging", "prod-a", "prod-b")
    }
    assert {c: len(v) for c, v in created.items()} == {
        "canary": 2,
        "staging": 3,
        "prod-a": 6,
        "prod-b": 6,
    }
    # canary converged (its last old node gone) before staging started, staging before prod,
    # and prod clusters one at a time (maxClustersInParallel 1)
    assert _last(events, "node-removed", "canary") < _first(events, "machine-created", "staging")
    assert _last(events, "node-removed", "staging") < _first(events, "machine-created", "prod-a")
    assert _last(events, "node-removed", "prod-a") < _first(events, "machine-created", "prod-b")
    # Every replacement carries its last phase, ready, recorded on the Machine itself.
    machines = r.management.custom.list_cluster_custom_object(*machine_resource(r.management))[
        "items"
    ]
    phases = {
        m["metadata"]["name"]: (m["metadata"].get("annotations") or {}).get(PHASE_ANNOTATION)
        for m in machines
    }
    assert len(phases) == 17 and set(phases.values()) == {"ready"}, phases


def test_drift_is_remediated_by_replacement(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="declared", drift="kernel:2,label:1")
    before = _drifted(r)
    assert before, "the simulator injected no drift"
    plan = r.run()
    assert plan.status == "converged", plan.reason
    assert check(r.audit, r.snap, r.fleet) == []
    assert _drifted(r) == set()
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len(created) == len(before)  # exactly the drifted nodes were replaced, no other
    removed = {
        (e["cluster"], e["node"]) for e in load_events(r.audit) if e.get("event") == "node-removed"
    }
    assert removed == before


def _drifted(r: Rollout) -> set[tuple[str, str]]:
    observer = Observer(connect(r.sim.kubeconfig_path))
    observer.track((c.name, c.namespace) for c in r.fleet.clusters)
    observer.wait_synced(10)
    findings = drift.find(r.fleet, observer.inventory())
    observer.stop()
    return {(f.cluster, f.node) for f in findings if f.kind in ("ImageMismatch", "ConfigMismatch")}


def test_drain_blocked_by_a_pdb_completes_once_the_workload_moves(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    plan = r.run()
    assert plan.status == "converged"
    events = load_events(r.audit)
    evictions = [e for e in events if e["kind"] == "request" and e["subresource"] == "eviction"]
    refused = [e for e in evictions if e["code"] == 429]
    assert refused, "no eviction was ever refused by a PodDisruptionBudget"
    later = [
        e
        for e in evictions
        if e["code"] == 201 and e["name"] == refused[0]["name"] and e["time"] > refused[0]["time"]
    ]
    rescheduled = [
        e for e in events if e.get("event") == "pod-rescheduled" and e["time"] < later[0]["time"]
    ]
    assert later and rescheduled
    assert check(r.audit, r.snap, r.fleet) == []


def test_a_refused_eviction_is_tried_again_as_soon_as_its_budget_allows(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    executor, observer = r.executor()
    # A backoff far longer than the whole rollout: only the budget's own status moving (the
    # evicted pod running again elsewhere) can bring a refused drain back in time.
    executor.scheduler.retry_interval = 3600.0
    result: list[Plan] = []
    thread = threading.Thread(target=lambda: result.append(executor.run(poll=0.05)), daemon=True)
    thread.start()
    thread.join(90)
    executor.stopping.set()
    thread.join(10)
    observer.stop()
    events = load_events(r.audit)
    refused = [
        e
        for e in events
        if e["kind"] == "request" and e["subresource"] == "eviction" and e["code"] == 429
    ]
    assert refused, "no eviction was ever refused by a PodDisruptionBudget"
    assert result and result[0].status == "converged", result and result[0].reason
    assert check(r.audit, r.snap, r.fleet) == []


def test_boot_failures_exhaust_the_budget_and_halt(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="previous", world={"boot_failure_rate": 1.0}, max_failed=1)
    plan = r.run()
    assert plan.status == "halted"
    assert "maxFailedNodes 1" in plan.reason
    state = json.loads(
        r.management.core.read_namespaced_config_map("gitops-rollout-state", "gitops-system").data[
            "state.json"
        ]
    )
    assert state["halted"] is True and "maxFailedNodes" in state["haltReason"]
    events = load_events(r.audit)
    assert not [
        e for e in events if e.get("event") == "machine-created" and e["cluster"] != "canary"
    ]
    halted_at = state["haltedAt"]
    assert not [e for e in events if e.get("event") == "machine-created" and e["time"] > halted_at]
    assert check(r.audit, r.snap, r.fleet) == []


def test_a_paused_cluster_is_left_untouched(rollout: Callable[..., Rollout]) -> None:
    r = rollout(initial="previous", paused=("prod-b",))
    plan = r.run()
    # Paused in git is what the engineers asked for: the rest of the fleet converges around it.
    assert plan.status == "converged", plan.reason
    statuses = {c.name: c.status for w in plan.waves for c in w.clusters}
    assert statuses["prod-b"] == "paused" and statuses["prod-a"] == "converged"
    events = load_events(r.audit)
    assert not [
        e
        for e in events
        if e["cluster"] == "prod-b"
        and e["kind"] == "change"
        and e["event"] in ("machine-created", "node-cordoned", "machine-deleted")
    ]
    assert not [
        e
        for e in events
        if e["kind"] == "request"
        and e["cluster"] == "prod-b"
        and e["verb"] in ("patch", "create", "delete", "update")
    ]


def test_an_unreachable_cluster_keeps_the_rollout_open_until_it_is_observed(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    doc = r.fleet.cluster("prod-b")
    assert doc is not None
    secret = r.management.core.read_namespaced_secret("prod-b-kubeconfig", doc.namespace)
    r.management.core.delete_namespaced_secret("prod-b-kubeconfig", doc.namespace)
    executor, observer = r.executor()
    observer.reconnect_interval = 0.1
    plans: list[Plan] = []
    blind = threading.Event()

    def seen(plan: Plan) -> None:
        plans.append(plan)
        if next(plan.actions(), None) is None and plan.unknown_clusters() == ("prod-b",):
            blind.set()  # everything it can see is done; prod-b it cannot see at all

    result: list[Plan] = []
    thread = threading.Thread(
        target=lambda: result.append(executor.run(poll=0.05, on_plan=seen)), daemon=True
    )
    thread.start()
    try:
        assert blind.wait(90), plans[-1].waves if plans else "no plan"
        # Nothing left to do among the clusters it sees is not convergence: prod-b's nodes
        # still run the old image, and the rollout says why it waits. Counted in passes, not
        # seconds: three more passes (a busy machine makes them later, never fewer), each
        # still in progress, and the run has not returned.
        seen = len(plans)
        deadline = time.monotonic() + 60
        while len(plans) < seen + 3 and thread.is_alive():
            assert time.monotonic() < deadline, "the executor made no more passes"
            time.sleep(0.02)
        assert thread.is_alive() and not result, result and result[0].status
        assert [p.status for p in plans[seen - 1 :]] == ["in-progress"] * len(plans[seen - 1 :])
        assert plans[-1].status == "in-progress"
        assert plans[-1].waves[-1].reason == "prod-b is unreachable"
        secret.metadata.resource_version = None
        r.management.core.create_namespaced_secret(doc.namespace, secret)
        thread.join(90)
    finally:
        executor.stopping.set()
        thread.join(10)
        observer.stop()
    assert result and result[0].status == "converged", result and result[0].reason
    assert check(r.audit, r.snap, r.fleet) == []
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len([e for e in created if e["cluster"] == "prod-b"]) == 6
