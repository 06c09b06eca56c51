"""The pods/eviction subresource: PodDisruptionBudgets honoured as the API server does.

In-process through ``Store.post_subresource`` on virtual time, and over HTTP with the official
``kubernetes`` client against a running simulator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import PDBS, PODS
from tests.sim.helpers import CLUSTER, crowded_checkout, evict, make_world

Obj = dict[str, Any]


def test_an_eviction_the_budget_cannot_afford_is_429_naming_the_pdb_until_the_pod_is_back() -> None:
    _, store, clock, audit = make_world()
    _, (first, second) = crowded_checkout(store)
    assert evict(store, first)["status"] == "Success"
    # deleted gracefully: Terminating until its kubelet stops it
    assert store.get(CLUSTER, PODS, "shop", first)["metadata"]["deletionTimestamp"]
    # the eviction counted at once: a client reading the PDB sees no disruption left
    assert store.get(CLUSTER, PDBS, "shop", "checkout")["status"]["disruptionsAllowed"] == 0

    with pytest.raises(ApiError) as refused:
        evict(store, second)
    err = refused.value
    assert (err.code, err.reason) == (429, "TooManyRequests")
    assert err.message == "Cannot evict pod as it would violate the pod's disruption budget."
    body = err.status_body()
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget checkout needs 5 healthy pods and has 5 currently",
        }
    ]
    store.get(CLUSTER, PODS, "shop", second)  # still there

    clock.advance(2.9)
    with pytest.raises(ApiError):
        evict(store, second)
    clock.advance(0.1)  # the replacement of the first pod runs elsewhere: the budget has room
    assert evict(store, second)["status"] == "Success"
    evicted = audit.events("pod-evicted")
    assert [(e["name"], e["pdb"]) for e in evicted] == [(first, "checkout"), (second, "checkout")]


def test_pods_no_budget_covers_are_simply_deleted_and_daemonset_pods_come_back() -> None:
    _, store, clock, _ = make_world()
    agent = store.list(CLUSTER, PODS, "kube-system")[0][0]
    node = agent["spec"]["nodeName"]
    assert evict(store, agent["metadata"]["name"], "kube-system")["status"] == "Success"
    clock.advance(0)
    (going,) = store.list(CLUSTER, PODS, "kube-system", field_selector=f"spec.nodeName={node}")[0]
    assert going["metadata"]["deletionGracePeriodSeconds"] == 30  # the DaemonSet's pods' own
    clock.advance(30)
    assert store.list(CLUSTER, PODS, "kube-system", field_selector=f"spec.nodeName={node}")[0] == []
    clock.advance(3)  # the DaemonSet puts its pod back on the node
    (back,) = store.list(CLUSTER, PODS, "kube-system", field_selector=f"spec.nodeName={node}")[0]
    assert back["metadata"]["name"] != agent["metadata"]["name"]


def test_pending_pods_are_evicted_without_consulting_the_budget() -> None:
    _, store, clock, _ = make_world()
    _, (first, second) = crowded_checkout(store)
    evict(store, first)
    clock.advance(0)
    (pending,) = [
        p
        for p in store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0]
        if p["status"]["phase"] == "Pending"
    ]
    assert evict(store, pending["metadata"]["name"])["status"] == "Success"
    with pytest.raises(ApiError):
        evict(store, second)


def test_two_budgets_over_one_pod_is_an_internal_error_as_upstream() -> None:
    _, store, _, _ = make_world()
    store.create(
        CLUSTER,
        PDBS,
        {
            "metadata": {"name": "extra", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "maxUnavailable": 3},
        },
    )
    name = store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0][0]["metadata"][
        "name"
    ]
    with pytest.raises(ApiError) as err:
        evict(store, name)
    assert err.value.code == 500
    assert "more than one PodDisruptionBudget" in err.value.message


def test_bad_eviction_requests() -> None:
    _, store, _, _ = make_world()
    name = store.list(CLUSTER, PODS, "shop")[0][0]["metadata"]["name"]
    with pytest.raises(ApiError) as err:
        store.post_subresource(
            CLUSTER, PODS, "shop", name, "eviction", {"metadata": {"name": "other"}}
        )
    assert err.value.code == 400
    with pytest.raises(ApiError) as err:
        evict(store, "no-such-pod")
    assert err.value.code == 404


# -- over HTTP, with the official client ----------------------------------------------------


def test_eviction_over_http_blocked_by_a_pdb_then_allowed(tmp_path: Path) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from gitops.sim import Simulator

    client, config = kubernetes.client, kubernetes.config
    with Simulator(
        Path(__file__).resolve().parents[2] / "fleet-repo-example",
        kubeconfig_out=tmp_path / "kubeconfig",
        audit_log=tmp_path / "audit.jsonl",
        time_scale=0.05,  # reschedule in 0.15 s
    ) as sim:
        api = client.CoreV1Api(config.new_client_from_config(sim.workload_kubeconfig(CLUSTER)))
        _, (first, second) = crowded_checkout(sim.store)

        def eviction(name: str) -> Any:
            return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="shop"))

        api.create_namespaced_pod_eviction(first, "shop", eviction(first))
        with pytest.raises(client.ApiException) as refused:
            api.create_namespaced_pod_eviction(second, "shop", eviction(second))
        assert refused.value.status == 429
        assert "disruption budget checkout" in refused.value.body
        deadline = time.monotonic() + 10
        while True:
            try:
                api.create_namespaced_pod_eviction(second, "shop", eviction(second))
                break
            except client.ApiException as err:
                assert err.status == 429
                assert time.monotonic() < deadline, "the budget never recovered"
                time.sleep(0.05)
        policy = client.PolicyV1Api(api.api_client)
        status = policy.read_namespaced_pod_disruption_budget("checkout", "shop").status
        assert status.expected_pods == 6
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert sum('"event":"pod-evicted"' in line for line in lines) == 2


def test_an_eviction_reads_the_namespace_without_copying_it_and_leaves_it_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The eviction runs under the world lock: it must read the namespace's pods, budgets and
    # scales as stored (read-only), not deep-copy them all to read a few fields.
    from gitops.sim.api import store as store_module

    _, store, _, _ = make_world()
    _, (first, _) = crowded_checkout(store)
    pods = store.list(CLUSTER, PODS, "shop")[0]
    assert len(pods) > 2
    others = {p["metadata"]["name"]: p for p in pods if p["metadata"]["name"] != first}
    copied: list[str] = []
    real_copy = store_module.copy_obj

    def counting_copy(value: Any) -> Any:
        if isinstance(value, dict) and "containers" in (value.get("spec") or {}):
            copied.append(value["metadata"]["name"])
        return real_copy(value)

    monkeypatch.setattr(store_module, "copy_obj", counting_copy)
    assert evict(store, first)["status"] == "Success"
    assert not set(copied) & set(others)  # no other pod of the namespace was copied
    monkeypatch.undo()
    # and nothing the eviction read changed: the other pods are as they were
    assert {
        p["metadata"]["name"]: p
        for p in store.list(CLUSTER, PODS, "shop")[0]
        if p["metadata"]["name"] != first
    } == others
