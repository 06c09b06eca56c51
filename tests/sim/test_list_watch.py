"""List and watch as the apiserver serves them: paged lists from one snapshot, continue tokens
and watches that expire with the history window, bookmarks, and a watch cache that relists.

Over HTTP against ``Simulator(clusters=("c1",))`` (no world). The history window's time
limit is read on the store's clock, which the tests replace with one they move by hand.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from gitops.kube.cache import WatchCache
from gitops.sim import TOKEN, Simulator
from gitops.sim.api.audit import read as read_audit
from gitops.sim.api.handler import INCONSISTENT_CONTINUE
from gitops.sim.api.resources import NODES
from tests.sim.conftest import api_client, node

Obj = dict[str, Any]


class Hands:
    """A clock for the store that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Simulator, Hands]]:
    """A simulator keeping 5 to 10 events per resource, or 60 s of them, on a hand clock."""
    hands = Hands()
    with Simulator(
        clusters=("c1",),
        kubeconfig_out=tmp_path / "kubeconfig",
        audit_log=tmp_path / "audit.jsonl",
        history=5,
        history_seconds=60.0,
    ) as sim:
        sim.store.clock = hands
        yield sim, hands


def get(sim: Simulator, path: str) -> tuple[int, Obj]:
    req = urllib.request.Request(sim.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def watch_lines(sim: Simulator, query: str) -> list[tuple[float, Obj]]:
    """A raw watch of c1's nodes: (seconds since it opened, event) per line, until it ends."""
    req = urllib.request.Request(
        sim.url + "/clusters/c1/api/v1/nodes?watch=true&" + query,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    opened = time.monotonic()
    out = []
    with urllib.request.urlopen(req, timeout=30) as resp:
        for line in resp:
            if line.strip():
                out.append((time.monotonic() - opened, json.loads(line)))
    return out


def watches(sim: Simulator) -> int:
    return sum(1 for a in read_audit(sim.audit_path or "") if a.get("verb") == "watch")


# -- paged lists -------------------------------------------------------------------------------


def test_every_page_of_a_list_comes_from_the_first_pages_snapshot(api_sim: Simulator) -> None:
    store = api_sim.store
    for i in range(6):
        store.create("c1", NODES, node(f"n{i}", labels={"v": "1"}))
    code, first = get(api_sim, "/clusters/c1/api/v1/nodes?limit=2")
    assert code == 200 and [n["metadata"]["name"] for n in first["items"]] == ["n0", "n1"]
    snapshot = first["metadata"]["resourceVersion"]

    # changes after the first page: none of them shows in the later pages
    store.delete("c1", NODES, None, "n3")
    store.create("c1", NODES, node("n2a"))
    store.mutate(
        "c1",
        NODES,
        None,
        "n4",
        lambda o: {**o, "metadata": {**o["metadata"], "labels": {"v": "2"}}},
    )

    items, token = list(first["items"]), first["metadata"]["continue"]
    while token:
        code, page = get(api_sim, f"/clusters/c1/api/v1/nodes?limit=2&continue={token}")
        assert code == 200 and page["metadata"]["resourceVersion"] == snapshot
        items += page["items"]
        token = page["metadata"].get("continue")
    assert [n["metadata"]["name"] for n in items] == [f"n{i}" for i in range(6)]
    assert {n["metadata"]["labels"]["v"] for n in items} == {"1"}


def test_pages_of_a_filtered_list_carry_no_remaining_count(
    c1: k8s.ApiClient, api_sim: Simulator
) -> None:
    for i in range(4):
        api_sim.store.create("c1", NODES, node(f"n{i}", labels={"pool": "a"}))
    page = k8s.CoreV1Api(c1).list_node(limit=2, label_selector="pool=a")
    assert page.metadata._continue and page.metadata.remaining_item_count is None
    page = k8s.CoreV1Api(c1).list_node(limit=2)
    assert page.metadata.remaining_item_count == 2


def test_a_continue_token_older_than_the_window_is_410_with_a_token_for_the_rest(
    small: tuple[Simulator, Hands],
) -> None:
    sim, _ = small
    for i in range(4):
        sim.store.create("c1", NODES, node(f"n{i}"))
    _, first = get(sim, "/clusters/c1/api/v1/nodes?limit=2")
    for i in range(12):  # more changes than the window keeps
        sim.store.mutate(
            "c1",
            NODES,
            None,
            "n3",
            lambda o, i=i: {**o, "metadata": {**o["metadata"], "labels": {"i": str(i)}}},
        )
    sim.store.create("c1", NODES, node("n9"))

    code, status = get(
        sim, f"/clusters/c1/api/v1/nodes?limit=2&continue={first['metadata']['continue']}"
    )
    assert code == 410
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Expired", 410)
    assert status["message"] == INCONSISTENT_CONTINUE
    code, rest = get(sim, f"/clusters/c1/api/v1/nodes?continue={status['metadata']['continue']}")
    assert code == 200  # the rest, as it is now
    assert [n["metadata"]["name"] for n in rest["items"]] == ["n2", "n3", "n9"]
    assert rest["items"][1]["metadata"]["labels"] == {"i": "11"}


def test_continue_tokens_expire_with_the_time_window_too(small: tuple[Simulator, Hands]) -> None:
    sim, hands = small
    for i in range(3):
        sim.store.create("c1", NODES, node(f"n{i}"))
    _, first = get(sim, "/clusters/c1/api/v1/nodes?limit=1")
    token = first["metadata"]["continue"]
    sim.store.create("c1", NODES, node("n3"))  # a change after the snapshot...
    assert get(sim, f"/clusters/c1/api/v1/nodes?limit=1&continue={token}")[0] == 200
    hands.now += 61
    sim.store.create("c1", NODES, node("n4"))  # ...that a minute later is out of the window
    assert get(sim, f"/clusters/c1/api/v1/nodes?limit=1&continue={token}")[0] == 410


def test_a_malformed_continue_token_is_400(api_sim: Simulator) -> None:
    code, status = get(api_sim, "/clusters/c1/api/v1/nodes?continue=bm90LWEtdG9rZW4")
    assert (code, status["reason"]) == (400, "BadRequest")


# -- watches -----------------------------------------------------------------------------------


def test_a_watch_from_before_the_time_window_is_expired(small: tuple[Simulator, Hands]) -> None:
    sim, hands = small
    sim.store.create("c1", NODES, node("n0"))
    _, listed = get(sim, "/clusters/c1/api/v1/nodes")
    rv = listed["metadata"]["resourceVersion"]
    sim.store.create("c1", NODES, node("n1"))
    ((_, event),) = watch_lines(sim, f"resourceVersion={rv}&timeoutSeconds=1")[:1]
    assert event["type"] == "ADDED"  # within the window: resumed

    hands.now += 61
    sim.store.create("c1", NODES, node("n2"))
    events = watch_lines(sim, f"resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for _, e in events] == ["ERROR"]
    assert (events[0][1]["object"]["code"], events[0][1]["object"]["reason"]) == (410, "Expired")


def test_a_watch_gets_a_bookmark_shortly_before_its_timeout(api_sim: Simulator) -> None:
    api_sim.store.create("c1", NODES, node("n0"))
    rv = str(api_sim.store.resource_version)
    events = watch_lines(api_sim, f"resourceVersion={rv}&timeoutSeconds=3&allowWatchBookmarks=true")
    assert [e["type"] for _, e in events] == ["BOOKMARK"]  # no 60 s period reached: only that one
    at, bookmark = events[0]
    assert at < 3.0  # before the end: 2 s before it, as the watch cache does
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(api_sim.store.resource_version)


def test_watch_bookmarks_are_periodic_at_the_scaled_frequency(tmp_path: Path) -> None:
    with Simulator(clusters=("c1",), kubeconfig_out=tmp_path / "kc", time_scale=0.01) as sim:
        events = watch_lines(sim, "resourceVersion=1&timeoutSeconds=3&allowWatchBookmarks=true")
    # every 0.6 s (60 s scaled), until the one 2 s before the end: two at least on any machine
    assert len(events) >= 2 and all(e["type"] == "BOOKMARK" for _, e in events)


def test_without_allow_watch_bookmarks_there_are_none(api_sim: Simulator) -> None:
    assert watch_lines(api_sim, "resourceVersion=1&timeoutSeconds=3") == []


# -- the controller's watch cache --------------------------------------------------------------


def test_the_watch_cache_relists_on_410_and_converges(small: tuple[Simulator, Hands]) -> None:
    sim, _ = small
    store = sim.store
    store.create("c1", NODES, node("n0"))
    api = api_client(sim.workload_kubeconfig("c1"))
    core = k8s.CoreV1Api(api)
    watching = threading.Event()
    release = threading.Event()
    calls = {"watch": 0}

    def list_nodes(**kwargs: Any) -> Any:
        if kwargs.get("watch"):
            calls["watch"] += 1
            if calls["watch"] == 2:  # the cache resumes: hold it until the window moved on
                watching.set()
                release.wait(10)
        return core.list_node(**kwargs)

    cache = WatchCache("nodes of c1", list_nodes).start()
    try:
        assert cache.wait_synced(10)
        deadline = time.monotonic() + 10
        while not watches(sim) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the server has the watch open
        sim._httpd.close_connections()  # type: ignore[union-attr]  # the watch is cut
        assert watching.wait(10)
        for i in range(1, 13):  # more changes than the window keeps, while nobody watches
            store.create("c1", NODES, node(f"n{i}"))
        release.set()
        deadline = time.monotonic() + 10
        while cache.lists < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache.lists == 2  # the resumed watch was 410 Expired: listed again
        want = sorted(n["metadata"]["name"] for n in store.list("c1", NODES)[0])
        store.create("c1", NODES, node("n99"))  # and it follows changes after the relist
        deadline = time.monotonic() + 10
        while cache.get("", "n99") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(o["metadata"]["name"] for o in cache.objects()) == sorted([*want, "n99"])
    finally:
        cache.stop()
        cache.join(5)
        api.close()


def test_the_official_client_sees_410_for_an_expired_watch(small: tuple[Simulator, Hands]) -> None:
    sim, hands = small
    api = api_client(sim.workload_kubeconfig("c1"))
    try:
        core = k8s.CoreV1Api(api)
        rv = core.list_node().metadata.resource_version
        hands.now += 61
        sim.store.create("c1", NODES, node("n1"))
        hands.now += 61
        sim.store.create("c1", NODES, node("n2"))
        with pytest.raises(ApiException) as info:
            for _ in watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=1):
                pass
        assert info.value.status == 410
    finally:
        api.close()


def test_the_watch_cache_lists_in_pages_and_starts_over_when_a_page_expired(
    small: tuple[Simulator, Hands],
) -> None:
    """Pages of ``page_size``; a continue token that expired between two pages (410) makes
    the cache list again from the first page, never keep a mix of two snapshots."""
    sim, _ = small
    store = sim.store
    for i in range(7):
        store.create("c1", NODES, node(f"n{i}"))
    core = k8s.CoreV1Api(api_client(sim.workload_kubeconfig("c1")))
    raced: list[str] = []

    def list_nodes(**kwargs: Any) -> Any:
        if kwargs.get("_continue") and not raced:
            raced.append(kwargs["_continue"])
            for i in range(7, 19):  # more changes than the window keeps, between two pages
                store.create("c1", NODES, node(f"n{i}"))
        return core.list_node(**kwargs)

    cache: WatchCache[Obj] = WatchCache("nodes of c1", list_nodes, page_size=3).start()
    try:
        assert cache.wait_synced(10)
        assert sorted(o["metadata"]["name"] for o in cache.objects()) == sorted(
            f"n{i}" for i in range(19)
        )
        # 1 page, the 410, then 19 nodes in pages of 3: 7 more
        assert cache.lists == 1 + 7
        lists = [
            line
            for line in read_audit(sim.audit_path or "")
            if line["kind"] == "request" and line["verb"] == "list"
        ]
        assert [line["code"] for line in lists] == [200, 410] + [200] * 7
    finally:
        cache.stop()
        cache.join(5)
