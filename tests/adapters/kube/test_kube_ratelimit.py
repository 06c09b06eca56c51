"""The client-side rate limit and 429 ``Retry-After`` handling, over HTTP against the simulator.

Adapter tier: real requests of the official client reach the simulator (its audit log counts
them); the token bucket's clock and sleep, and the read retries' sleep, are recorders that
advance a fake clock, so the waits are counted rather than slept.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.kube.client import Kube, connect, connect_workload
from gitops.kube.errors import TooManyRequests, read, read_json
from gitops.kube.ratelimit import RateLimit
from gitops.sim import Simulator, kubeconfig_text
from gitops.sim.api.audit import read as read_audit
from gitops.sim.api.resources import NAMESPACES, SECRETS
from tests.conftest import FakeTime


def _node_lists(audit: Path, cluster: str = "") -> int:
    return sum(
        1
        for line in read_audit(audit)
        if line.get("verb") == "list"
        and line.get("resource") == "nodes"
        and line.get("cluster") == cluster
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Simulator]:
    """A management cluster and workload cluster c1, whose kubeconfig Secret is in ns c1."""
    with Simulator(
        clusters=("c1",), audit_log=tmp_path / "audit.jsonl", kubeconfig_out=tmp_path / "kc"
    ) as sim:
        sim.store.create("", NAMESPACES, {"metadata": {"name": "c1"}})
        config = kubeconfig_text(f"{sim.url}/clusters/c1").encode()
        sim.store.create(
            "",
            SECRETS,
            {
                "metadata": {"name": "c1-kubeconfig", "namespace": "c1"},
                "data": {"value": base64.b64encode(config).decode()},
            },
        )
        yield sim


def _list_nodes(served: Simulator, times: int, rate: RateLimit | None = None) -> Kube:
    """List the management cluster's Nodes ``times`` through a client limited by ``rate``;
    the (closed) client."""
    kube = connect(served.kubeconfig_path, rate=rate)
    try:
        for _ in range(times):
            read_json("listing Nodes", kube.core.list_node)
    finally:
        kube.close()
    return kube


def test_requests_beyond_the_burst_wait_for_the_bucket(served: Simulator, tmp_path: Path) -> None:
    t = FakeTime()
    _list_nodes(served, 7, RateLimit(2.0, 3, clock=t.clock, sleep=t.sleep))
    assert _node_lists(tmp_path / "audit.jsonl") == 7  # every one was really sent
    assert t.slept == pytest.approx([0.5, 0.5, 0.5, 0.5])  # the burst of 3, then 1/qps each


def test_without_a_limit_nothing_waits(served: Simulator) -> None:
    assert _list_nodes(served, 1).bucket is None
    t = FakeTime()
    kube = _list_nodes(served, 3, RateLimit(0.0, 1, clock=t.clock, sleep=t.sleep))
    assert kube.bucket is None and t.slept == []


def test_a_watch_takes_one_token_when_it_opens(served: Simulator) -> None:
    t = FakeTime()  # frozen: no token comes back meanwhile
    kube = connect(served.kubeconfig_path, rate=RateLimit(1.0, 10, clock=t.clock, sleep=t.sleep))
    try:
        assert kube.bucket is not None
        stream = kube.core.list_node(watch=True, _preload_content=False, timeout_seconds=30)
        assert stream.status == 200
        stream.release_conn()
        assert kube.bucket.tokens == pytest.approx(9.0)
    finally:
        kube.close()


def test_each_workload_cluster_has_a_bucket_of_its_own(served: Simulator, tmp_path: Path) -> None:
    t = FakeTime()
    waits: list[tuple[str, float]] = []
    rate = RateLimit(
        1.0, 2, on_wait=lambda c, s: waits.append((c, s)), clock=t.clock, sleep=t.sleep
    )
    management = connect(served.kubeconfig_path, rate=rate)
    workload: Kube | None = None
    try:
        workload = connect_workload(management, "c1", "c1")  # reads the Secret: one token
        assert workload.bucket is not None and workload.bucket is not management.bucket
        read_json("listing Nodes of c1", workload.core.list_node)
        read_json("listing Nodes of c1", workload.core.list_node)
        assert waits == []  # c1's own burst of 2, whatever the management cluster spent
        read_json("listing Nodes of c1", workload.core.list_node)
    finally:
        if workload is not None:
            workload.close()
        management.close()
    assert waits == [("c1", pytest.approx(1.0))]
    assert _node_lists(tmp_path / "audit.jsonl", "c1") == 3


def test_a_read_answered_429_waits_the_retry_after_before_asking_again(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    slept: list[float] = []
    with Simulator(
        clusters=("c1",),
        faults="error.list=1,codes=429,retry-after=2",
        audit_log=audit,
        kubeconfig_out=tmp_path / "kc",
    ) as sim:
        kube = connect(sim.kubeconfig_path)
        try:
            with pytest.raises(TooManyRequests) as caught:
                read("listing Nodes", kube.core.list_node, sleep=slept.append)
        finally:
            kube.close()
    assert caught.value.retry_after == 2.0
    assert len(slept) == 3  # between the four attempts
    assert min(slept) >= 2.0
    # Each attempt is one request: none was retried below us, unseen and unlimited.
    assert _node_lists(audit) == 4
