"""The store's API semantics, without HTTP: versions, conflicts, status, finalizers, watch, GC."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import DEPLOYMENTS, MACHINES, NAMESPACES, NODES, PODS, REPLICASETS
from gitops.sim.api.store import Event, Store
from tests.sim.conftest import machine, node, pod


@pytest.fixture
def store() -> Store:
    s = Store(seed=1)
    s.add_cluster("c1")
    for cluster in ("", "c1"):
        s.create(cluster, NAMESPACES, {"metadata": {"name": "default"}})
    return s


def err(fn: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)
    return info.value


def test_create_fills_metadata_and_bumps_the_global_resource_version(store: Store) -> None:
    before = store.resource_version
    created = store.create("c1", PODS, pod("p1", "n1"))
    meta = created["metadata"]
    assert (created["apiVersion"], created["kind"]) == ("v1", "Pod")
    assert meta["namespace"] == "default"
    assert meta["resourceVersion"] == str(before + 1) == str(store.resource_version)
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    other = store.create("", MACHINES, machine("m1"))  # another cluster shares the counter
    assert other["metadata"]["resourceVersion"] == str(before + 2)


def test_uids_and_generated_names_are_reproducible_from_the_seed() -> None:
    def run() -> list[str]:
        s = Store(seed=7)
        s.create("", NAMESPACES, {"metadata": {"name": "default"}})
        made = [s.create("", PODS, {"metadata": {"generateName": "web-"}}) for _ in range(3)]
        return [o["metadata"]["uid"] + o["metadata"]["name"] for o in made]

    first = run()
    assert first == run()
    assert all(n.split("web-")[1] for n in first)


def test_create_errors_match_the_real_server(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    e = err(store.create, "c1", NODES, node("n1"))
    assert (e.code, e.reason, e.message) == (409, "AlreadyExists", 'nodes "n1" already exists')
    e = err(store.create, "c1", PODS, pod("p1", namespace="nowhere"))
    assert (e.code, e.reason, e.message) == (404, "NotFound", 'namespaces "nowhere" not found')
    e = err(store.create, "c1", NODES, node("Bad_Name"))
    assert (e.code, e.reason) == (422, "Invalid")
    assert e.status_body()["details"]["causes"][0]["field"] == "metadata.name"
    e = err(store.get, "c1", NODES, None, "ghost")
    assert e.status_body() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'nodes "ghost" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "ghost", "group": "", "kind": "nodes"},
    }


def test_stale_resource_version_is_a_conflict(store: Store) -> None:
    first = store.create("c1", NODES, node("n1"))
    first["metadata"]["labels"] = {"a": "1"}
    updated = store.update("c1", NODES, first)
    first["metadata"]["labels"] = {"a": "2"}
    e = err(store.update, "c1", NODES, first)  # still carries the first resourceVersion
    assert (e.code, e.reason) == (409, "Conflict")
    assert "the object has been modified" in e.message
    assert store.get("c1", NODES, None, "n1")["metadata"]["labels"] == {"a": "1"}
    updated["metadata"]["labels"] = {"a": "3"}
    assert store.update("c1", NODES, updated)["metadata"]["labels"] == {"a": "3"}


def test_status_subresource_splits_spec_and_status_writes(store: Store) -> None:
    n = store.create("c1", NODES, node("n1"))
    n["spec"]["unschedulable"] = True
    n["status"]["conditions"][0]["status"] = "False"
    after = store.update("c1", NODES, n)
    assert after["spec"]["unschedulable"] is True
    assert after["status"]["conditions"][0]["status"] == "True"  # ignored on the main resource
    after["spec"]["unschedulable"] = False
    after["status"]["conditions"][0]["status"] = "False"
    status = store.update("c1", NODES, after, subresource="status")
    assert status["status"]["conditions"][0]["status"] == "False"
    assert status["spec"]["unschedulable"] is True  # ignored on the status subresource


def test_generation_counts_spec_changes_only(store: Store) -> None:
    m = store.create("", MACHINES, machine("m1"))
    m["metadata"]["labels"] = {"x": "y"}
    m = store.update("", MACHINES, m)
    assert m["metadata"]["generation"] == 1
    m["spec"]["version"] = "v1.32.0"
    assert store.update("", MACHINES, m)["metadata"]["generation"] == 2


def test_a_write_that_changes_nothing_keeps_the_version_and_emits_nothing(store: Store) -> None:
    events: list[Event] = []
    n = store.create("c1", NODES, node("n1"))
    store.subscribe(events.append)
    again = store.update("c1", NODES, n)
    assert again["metadata"]["resourceVersion"] == n["metadata"]["resourceVersion"]
    assert store.mutate("c1", NODES, None, "n1", lambda o: o) == again
    assert events == []


def test_mutate_with_a_stale_resource_version_in_the_result_conflicts(store: Store) -> None:
    store.create("c1", NODES, node("n1"))

    def stale(o: dict[str, Any]) -> dict[str, Any]:
        o["metadata"]["resourceVersion"] = "1"
        return o

    assert err(store.mutate, "c1", NODES, None, "n1", stale).code == 409


def test_finalizers_hold_deletion_until_removed(store: Store) -> None:
    m = machine("m1")
    m["metadata"]["finalizers"] = ["machine.cluster.x-k8s.io"]
    store.create("", MACHINES, m)
    pending = store.delete("", MACHINES, "default", "m1")
    assert pending["metadata"]["deletionTimestamp"]
    assert store.get("", MACHINES, "default", "m1")["metadata"]["deletionTimestamp"]
    assert pending["metadata"]["generation"] == 2
    again = store.delete("", MACHINES, "default", "m1")  # a second delete changes nothing
    assert again["metadata"]["resourceVersion"] == pending["metadata"]["resourceVersion"]

    def add(o: dict[str, Any]) -> dict[str, Any]:
        o["metadata"]["finalizers"].append("other")
        return o

    e = err(store.mutate, "", MACHINES, "default", "m1", add)
    assert (e.code, e.reason) == (422, "Invalid")
    events: list[Event] = []
    store.subscribe(events.append)

    def clear(o: dict[str, Any]) -> dict[str, Any]:
        o["metadata"]["finalizers"] = []
        return o

    store.mutate("", MACHINES, "default", "m1", clear)
    assert err(store.get, "", MACHINES, "default", "m1").code == 404
    assert [e.type for e in events] == ["DELETED"]


def test_delete_without_finalizers_removes_at_once(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    last = store.delete("c1", NODES, None, "n1")
    assert last["metadata"]["resourceVersion"] == str(store.resource_version)
    assert err(store.delete, "c1", NODES, None, "n1").code == 404


def test_delete_preconditions(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    e = err(store.delete, "c1", NODES, None, "n1", preconditions={"uid": "other"})
    assert e.code == 409 and "Precondition failed" in e.message


def test_garbage_collector_deletes_dependents_or_orphans_them(store: Store) -> None:
    dep = store.create("c1", DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {"replicas": 1}})

    def owned(kind: str, owner: dict[str, Any], name: str) -> dict[str, Any]:
        ref = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        return {"metadata": {"name": name, "ownerReferences": [ref]}, "spec": {}}

    rs = store.create("c1", REPLICASETS, owned("ReplicaSet", dep, "web-1"))
    store.create("c1", PODS, owned("Pod", rs, "web-1-a"))
    store.delete("c1", DEPLOYMENTS, "default", "web")
    assert store.list("c1", REPLICASETS)[0] == []
    assert store.list("c1", PODS)[0] == []

    rs = store.create("c1", REPLICASETS, {"metadata": {"name": "solo"}, "spec": {}})
    store.create("c1", PODS, owned("Pod", rs, "kept"))
    store.delete("c1", REPLICASETS, "default", "solo", propagation="Orphan")
    kept = store.get("c1", PODS, "default", "kept")
    assert "ownerReferences" not in kept["metadata"]


def test_namespace_deletion_removes_its_contents(store: Store) -> None:
    store.create("c1", NAMESPACES, {"metadata": {"name": "team"}})
    store.create("c1", PODS, pod("p1", namespace="team"))
    m = pod("held", namespace="team")
    m["metadata"]["finalizers"] = ["example.com/hold"]
    store.create("c1", PODS, m)
    ns = store.delete("c1", NAMESPACES, None, "team")
    assert ns["status"]["phase"] == "Terminating"
    assert err(store.get, "c1", PODS, "team", "p1").code == 404
    assert err(store.create, "c1", PODS, pod("late", namespace="team")).code == 403
    store.mutate(
        "c1", PODS, "team", "held", lambda o: {**o, "metadata": {**o["metadata"], "finalizers": []}}
    )
    assert err(store.get, "c1", NAMESPACES, None, "team").code == 404


def test_list_filters_and_sorts(store: Store) -> None:
    store.create("c1", NAMESPACES, {"metadata": {"name": "a"}})
    store.create("c1", PODS, pod("z", "n1", namespace="default", app="web"))
    store.create("c1", PODS, pod("y", "n2", namespace="a", app="web"))
    store.create("c1", PODS, pod("x", "n1", namespace="a", app="db"))
    items, rv = store.list("c1", PODS)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("a", "x"),
        ("a", "y"),
        ("default", "z"),
    ]
    assert rv == store.resource_version
    names = [i["metadata"]["name"] for i in store.list("c1", PODS, "a")[0]]
    assert names == ["x", "y"]
    web = store.list("c1", PODS, label_selector="app=web", field_selector="spec.nodeName=n1")[0]
    assert [i["metadata"]["name"] for i in web] == ["z"]


SENTINEL = "zz-sentinel"


def _replayed(
    store: Store, cluster: str, rv: int, labels: dict[str, str] | None = None, **kwargs: Any
) -> list[tuple[str, str]]:
    """(type, name) of what a watch from ``rv`` replays, read up to a sentinel node made last.

    Reading up to a known last event, not until a short timeout, leaves no deadline to race:
    a watch whose first look at its history comes after its timeout (a busy machine) sends
    nothing. The generous timeout only ends a watch that never sends the sentinel.
    """
    store.create(cluster, NODES, node(SENTINEL, labels=labels))
    seen = []
    for ev in store.watch(cluster, NODES, resource_version=str(rv), timeout=10, **kwargs):
        if ev.object["metadata"]["name"] == SENTINEL:
            return seen
        seen.append((ev.type, ev.object["metadata"]["name"]))
    raise AssertionError(f"the watch ended before the sentinel; it sent {seen}")


def test_watch_replays_then_follows(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    stop = threading.Event()
    seen: list[tuple[str, str]] = []
    got = threading.Event()

    def follow() -> None:
        for ev in store.watch("c1", NODES, stop=stop, timeout=5):
            seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 3:
                got.set()
                return

    t = threading.Thread(target=follow)
    t.start()
    store.create("c1", NODES, node("n2"))
    store.delete("c1", NODES, None, "n1")
    assert got.wait(5)
    stop.set()
    t.join(5)
    assert seen == [("ADDED", "n1"), ("ADDED", "n2"), ("DELETED", "n1")]


def test_watch_resumes_after_a_resource_version(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    _, rv = store.list("c1", NODES)
    store.create("c1", NODES, node("n2"))
    store.create("c1", PODS, pod("p"))  # another resource: not in this watch
    store.mutate("c1", NODES, None, "n1", lambda o: {**o, "spec": {"unschedulable": True}})
    assert _replayed(store, "c1", rv) == [("ADDED", "n2"), ("MODIFIED", "n1")]
    first = next(store.watch("c1", NODES, resource_version=str(rv), timeout=10))
    assert first.resource_version > rv


def test_watch_too_far_back_is_410_expired() -> None:
    s = Store(history=2)
    s.create("", NODES, node("first"))
    rv = s.resource_version
    for i in range(6):
        s.create("", NODES, node(f"n{i}"))
    e = err(next, s.watch("", NODES, resource_version=str(rv), timeout=0.05))
    assert (e.code, e.reason) == (410, "Expired")
    assert e.message.startswith(f"too old resource version: {rv} (")
    recent = s.resource_version - 1  # still kept; n5 is the last change, so the first event
    replayed = next(s.watch("", NODES, resource_version=recent, timeout=10))
    assert replayed.object["metadata"]["name"] == "n5"


def test_selector_watch_sees_objects_move_in_and_out(store: Store) -> None:
    store.create("c1", NODES, node("n1"))
    rv = store.resource_version

    def label(value: str | None) -> Any:
        def fn(o: dict[str, Any]) -> dict[str, Any]:
            o["metadata"]["labels"] = {} if value is None else {"pool": value}
            return o

        return fn

    store.mutate("c1", NODES, None, "n1", label("gpu"))
    store.mutate("c1", NODES, None, "n1", label("cpu"))
    replayed = _replayed(store, "c1", rv, labels={"pool": "gpu"}, label_selector="pool=gpu")
    assert [kind for kind, _ in replayed] == ["ADDED", "DELETED"]


def test_watch_bookmarks_when_quiet(store: Store) -> None:
    # The first three events of a quiet watch, however long the machine takes to produce them
    # (a short timeout could end the watch before its first bookmark on a busy machine).
    watch = store.watch("c1", NODES, resource_version="1", timeout=30, bookmark_interval=0.05)
    events = [next(watch) for _ in range(3)]
    watch.close()
    assert all(e.type == "BOOKMARK" for e in events)
    assert events[-1].object["metadata"]["resourceVersion"] == str(store.resource_version)


def test_subscribers_see_every_change_in_order_even_when_they_write(store: Store) -> None:
    seen: list[tuple[str, str, int]] = []

    def on_event(ev: Event) -> None:
        seen.append((ev.type, ev.object["metadata"]["name"], ev.resource_version))
        if ev.type == "ADDED" and ev.object["metadata"]["name"] == "n1":
            store.create("c1", NODES, node("n1-echo"))  # a write from inside a subscriber

    store.subscribe(on_event)
    store.subscribe(
        lambda ev: seen.append(("second", ev.object["metadata"]["name"], ev.resource_version))
    )
    store.create("c1", NODES, node("n1"))
    assert [(t, n) for t, n, _ in seen] == [
        ("ADDED", "n1"),
        ("second", "n1"),
        ("ADDED", "n1-echo"),
        ("second", "n1-echo"),
    ]
    assert [rv for t, _, rv in seen if t != "second"] == sorted(
        rv for t, _, rv in seen if t != "second"
    )


def test_validators_reject_with_422(store: Store) -> None:
    def no_gpu(cluster: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        if "gpu" in (new["metadata"].get("labels") or {}):
            raise ApiError.invalid(
                NODES,
                new["metadata"]["name"],
                [("metadata.labels", "FieldValueForbidden", "Forbidden: no gpu")],
            )

    store.add_validator(NODES, no_gpu)
    assert err(store.create, "c1", NODES, node("n1", labels={"gpu": "1"})).code == 422
    store.create("c1", NODES, node("n1"))
    e = err(
        store.mutate,
        "c1",
        NODES,
        None,
        "n1",
        lambda o: {**o, "metadata": {**o["metadata"], "labels": {"gpu": "1"}}},
    )
    assert e.code == 422


def test_eviction_without_a_handler_deletes_the_pod_and_with_one_asks_it(store: Store) -> None:
    store.create("c1", PODS, pod("p1"))
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p1"}}
    result = store.post_subresource("c1", PODS, "default", "p1", "eviction", body)
    assert result["status"] == "Success"
    assert err(store.get, "c1", PODS, "default", "p1").code == 404
    calls: list[tuple[str, str, str]] = []

    def refuse(
        cluster: str, namespace: str, name: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        calls.append((cluster, namespace, name))
        raise ApiError(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )

    store.add_subresource_handler(PODS, "eviction", refuse)
    store.create("c1", PODS, pod("p2"))
    assert err(store.post_subresource, "c1", PODS, "default", "p2", "eviction", body).code == 429
    assert calls == [("c1", "default", "p2")]
    assert store.get("c1", PODS, "default", "p2")


def test_unknown_cluster_is_not_found(store: Store) -> None:
    assert err(store.list, "nowhere", NODES).code == 404
