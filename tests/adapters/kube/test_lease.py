"""Leader election over a real Lease on the simulator, in virtual time (no waiting)."""

from __future__ import annotations

from pathlib import Path

from gitops.kube.client import Kube, connect
from gitops.kube.lease import LeaderElector


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _pair(kube: Kube, clock: Clock, events: list[str]) -> tuple[LeaderElector, LeaderElector]:
    def elector(name: str) -> LeaderElector:
        return LeaderElector(
            kube,
            "kube-system",
            "gitops-controller",
            name,
            lease_duration=15,
            clock=clock,
            on_started=lambda: events.append(f"{name} leads"),
            on_stopped=lambda: events.append(f"{name} stops"),
        )

    return elector("a"), elector("b")


def test_only_one_candidate_leads_and_renews(kube: Kube) -> None:
    clock, events = Clock(), []
    a, b = _pair(kube, clock, events)
    assert a.tick() and not b.tick()
    for _ in range(5):
        clock.now += 5
        assert a.tick() and not b.tick()
    assert events == ["a leads"]
    lease = kube.coordination.read_namespaced_lease("gitops-controller", "kube-system")
    assert lease.spec.holder_identity == "a" and lease.spec.lease_transitions == 0


def test_a_dead_leader_is_replaced_after_the_lease_duration(kube: Kube) -> None:
    clock, events = Clock(), []
    a, b = _pair(kube, clock, events)
    assert a.tick()
    clock.now += 14  # a stops renewing (killed); the lease is still valid
    assert not b.tick()
    clock.now += 2  # 16 s since the last renewal: expired
    assert b.tick()
    assert not a.tick()  # a comes back and finds b holding the lease
    assert events == ["a leads", "b leads", "a stops"]
    lease = kube.coordination.read_namespaced_lease("gitops-controller", "kube-system")
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1


def test_release_hands_over_at_once(kube: Kube) -> None:
    clock, events = Clock(), []
    a, b = _pair(kube, clock, events)
    assert a.tick()
    a.release()
    assert b.tick()  # no need to wait for the lease to expire
    assert events == ["a leads", "a stops", "b leads"]


def test_a_stale_write_loses_the_race(kube: Kube) -> None:
    clock, _ = Clock(), []
    a, b = _pair(kube, clock, [])
    assert a.tick()
    stale = a._read()
    clock.now += 20
    assert b.tick()  # b took the expired lease
    assert not a._write(stale, clock.now, 1, clock.now)  # 409: a's view was stale
    assert (
        kube.coordination.read_namespaced_lease(
            "gitops-controller", "kube-system"
        ).spec.holder_identity
        == "b"
    )


def test_a_leader_that_cannot_renew_steps_down_when_its_lease_runs_out(
    kube: Kube, tmp_path: Path
) -> None:
    clock, events = Clock(), []
    a, _ = _pair(kube, clock, events)
    assert a.tick()
    a.kube = connect(str(_dead_kubeconfig(tmp_path)))
    clock.now += 5
    assert a.tick()  # renewal failed, but its lease is still valid
    clock.now += 11
    assert not a.tick()
    assert events == ["a leads", "a stops"]


def _dead_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "dead"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: dead, user: {token: x}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: dead}}]\n"
    )
    return path
