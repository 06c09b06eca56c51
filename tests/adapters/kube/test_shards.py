"""Sharding among replicas on the simulator, with injected clocks: placement, hand-offs, fencing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gitops.kube.client import Kube
from gitops.kube.errors import Conflict, call
from gitops.kube.fence import ClusterFence, Fenced
from gitops.kube.shards import ShardManager
from gitops.placement import place

NS = "kube-system"
WEIGHTS = {f"edge-{i}": 10 + i for i in range(8)}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fleet:
    """Replicas sharing one wall clock (advanced by the test) with a monotonic clock each."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.wall = Clock()
        self.mono: dict[str, Clock] = {}
        self.replicas: dict[str, ShardManager] = {}

    def add(self, name: str, **kwargs: int) -> ShardManager:
        self.mono[name] = Clock(100.0)
        fence = ClusterFence(self.kube, NS, name)
        mgr = ShardManager(
            self.kube, NS, name, fence=fence, clock=self.wall, monotonic=self.mono[name], **kwargs
        )
        self.replicas[name] = mgr
        return mgr

    def advance(self, seconds: float, *, skip: str = "") -> None:
        self.wall.now += seconds
        for name, mono in self.mono.items():
            if name != skip:
                mono.now += seconds

    def settle(self) -> None:
        """Wait until every replica's watch has seen every Lease write (no clock involved)."""
        listed = self.kube.coordination.list_namespaced_lease(
            NS, label_selector="app.kubernetes.io/managed-by=gitops"
        )
        want = {(lease.metadata.name, lease.metadata.resource_version) for lease in listed.items}
        for mgr in self.replicas.values():
            if not mgr.cache.synced:
                continue  # not ticked yet: its watch starts, with a LIST, at its first tick
            deadline = time.monotonic() + 30
            gen = mgr.cache.generation
            while {
                (o["metadata"]["name"], o["metadata"]["resourceVersion"])
                for o in mgr.cache.objects()
            } != want:
                assert time.monotonic() < deadline, "watch did not catch up"
                gen = mgr.cache.wait_changed(gen, 1.0)

    def round(
        self, safe: bool = True, *, skip: str = "", weights: dict[str, int] = WEIGHTS
    ) -> None:
        for name, mgr in self.replicas.items():
            if name != skip:
                mgr.tick(weights, lambda _c: safe)
                self.settle()

    def owners(self) -> dict[str, str]:
        return {c: name for name, mgr in self.replicas.items() for c in mgr.owned()}

    def close(self) -> None:
        for mgr in self.replicas.values():
            mgr.cache.stop()


@pytest.fixture
def fleet(kube: Kube) -> Iterator[Fleet]:
    f = Fleet(kube)
    yield f
    f.close()


def test_three_replicas_place_and_claim_every_cluster_exactly_once(fleet: Fleet) -> None:
    for name in ("a", "b", "c"):
        fleet.add(name)
    for _ in range(4):  # the first to tick claims all, then hands over two per tick
        fleet.round()
    owned = [c for mgr in fleet.replicas.values() for c in mgr.owned()]
    assert sorted(owned) == sorted(WEIGHTS)
    assert fleet.owners() == place(WEIGHTS, ["a", "b", "c"])
    a = fleet.replicas["a"]
    assert a.unowned(WEIGHTS) == []
    assert a.owner("edge-0") == fleet.owners()["edge-0"]
    lease = fleet.kube.coordination.read_namespaced_lease("gitops-owner-edge-0", NS)
    assert lease.metadata.labels["gitops.io/lease"] == "owner"


def test_a_stopped_replica_loses_its_clusters_and_is_fenced_when_it_wakes(fleet: Fleet) -> None:
    a, b = fleet.add("a"), fleet.add("b")
    fleet.round()
    fleet.round()
    mine = sorted(a.owned())
    assert mine
    # a is SIGSTOPped: it does not tick and its monotonic clock stands still
    fleet.advance(16, skip="a")
    fleet.round(skip="a")
    fleet.round(skip="a")
    assert sorted(b.owned()) == sorted(WEIGHTS)
    # a wakes: its monotonic clock jumps by the pause; it has stopped acting before it ticks
    fleet.mono["a"].now += 16
    assert a.owned() == frozenset()
    with pytest.raises(Fenced):
        a.check(mine[0])
    with pytest.raises(Fenced, match="owner is b"):
        a.fence.check(mine[0])
    with pytest.raises(Fenced):
        a.fence.write(mine[0], "progress.json", "{}")
    assert a.fencing_refusals >= 3


def test_a_replica_stops_acting_before_its_lease_can_expire(fleet: Fleet) -> None:
    a = fleet.add("a")
    fleet.round()
    assert a.owned()
    fleet.mono["a"].now += 15 - a.margin  # renewals failing; others would wait the full 15 s
    assert a.owned() == frozenset()
    with pytest.raises(Fenced, match="acting False"):
        a.check("edge-0")


def test_graceful_release_hands_over_at_once(fleet: Fleet) -> None:
    a, b = fleet.add("a"), fleet.add("b")
    fleet.round()
    fleet.round()
    assert a.owned()
    a.release_all()
    fleet.settle()
    assert a.owned() == frozenset()
    fleet.round(skip="a")  # no waiting for a's Lease to expire
    assert sorted(b.owned()) == sorted(WEIGHTS)
    names = [
        lease.metadata.name for lease in fleet.kube.coordination.list_namespaced_lease(NS).items
    ]
    assert "gitops-member-b" in names and "gitops-member-a" not in names


def test_hand_offs_wait_for_safe_and_are_bounded_per_tick(fleet: Fleet) -> None:
    a = fleet.add("a", max_handoffs=2)
    fleet.round()
    assert sorted(a.owned()) == sorted(WEIGHTS)
    fleet.add("b", max_handoffs=2)
    fleet.round(safe=False)
    fleet.round(safe=False)
    assert sorted(a.owned()) == sorted(WEIGHTS)  # nothing moves while a step is in flight
    due = [c for c, m in place(WEIGHTS, ["a", "b"]).items() if m == "b"]
    assert len(due) > 2
    a.tick(WEIGHTS, lambda _c: True)
    fleet.settle()
    assert len(WEIGHTS) - len(a.owned()) == 2  # at most max_handoffs per tick
    for _ in range(len(due)):
        fleet.round()
    assert fleet.owners() == place(WEIGHTS, ["a", "b"])


def test_adding_a_member_moves_only_what_placement_says(fleet: Fleet) -> None:
    for name in ("a", "b"):
        fleet.add(name, max_handoffs=100)
    fleet.round()
    fleet.round()
    before = fleet.owners()
    fleet.add("c", max_handoffs=100)
    for _ in range(3):
        fleet.round()
    after = fleet.owners()
    expected = place(WEIGHTS, ["a", "b", "c"])
    assert after == expected
    assert {c for c in WEIGHTS if before[c] != after[c]} == {
        c for c in WEIGHTS if expected[c] != before[c]
    }


def test_a_cluster_dropped_from_the_fleet_is_released(fleet: Fleet) -> None:
    a = fleet.add("a")
    fleet.round()
    fewer = {c: w for c, w in WEIGHTS.items() if c != "edge-0"}
    fleet.round(weights=fewer)
    assert "edge-0" not in a.owned()


def test_the_simulator_refuses_a_stale_lease_update(fleet: Fleet) -> None:
    a = fleet.add("a")
    fleet.round()
    stale = fleet.kube.custom.get_namespaced_custom_object(
        "coordination.k8s.io", "v1", NS, "leases", "gitops-member-a"
    )
    fleet.advance(1)
    fleet.round()
    with pytest.raises(Conflict):
        call(
            "x",
            fleet.kube.custom.replace_namespaced_custom_object,
            "coordination.k8s.io",
            "v1",
            NS,
            "leases",
            "gitops-member-a",
            stale,
        )
    assert a.cache.lists == 1  # every later read came from the watch
