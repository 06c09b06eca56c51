"""Injected faults: the spec, seeded decisions, and what clients see over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from gitops.sim import Simulator
from gitops.sim.api.audit import read as read_audit
from gitops.sim.api.faults import FaultSpecError, Injector, parse
from tests.sim.conftest import api_client, node
from tests.sim.helpers import raw


def test_spec_parses_every_item() -> None:
    f = parse(
        "error=0.1,error.patch=0.5,codes=500|429,retry-after=3,latency=10ms-50ms,latency.list=2s,watch-drop=30s"
    )
    assert f.error == 0.1 and f.error_by_verb == {"patch": 0.5}
    assert f.codes == (500, 429) and f.retry_after == 3
    assert f.latency == (0.01, 0.05) and f.latency_by_verb == {"list": (2.0, 2.0)}
    assert f.watch_drop == 30.0
    assert not parse("").active


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("error=2", "not a probability"),
        ("error.fetch=0.1", "unknown verb 'fetch'"),
        ("codes=418", "only 409, 429, 500 and 503"),
        ("latency=fast", "bad duration"),
        ("latency=50ms-10ms", "upper bound"),
        ("boom=1", "unknown fault 'boom'"),
        ("error", "expected key=value"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(FaultSpecError, match=says):
        parse(spec)


def test_decisions_are_reproducible_from_the_seed() -> None:
    def codes(seed: int) -> list[int | None]:
        inj = Injector("error=0.5", seed=seed)
        return [
            (d.error.code if d.error else None) for d in (inj.decide("patch") for _ in range(40))
        ]

    assert codes(3) == codes(3)
    assert codes(3) != codes(4)
    assert {c for c in codes(3) if c} == {500, 429, 409}


def test_conflicts_are_only_injected_on_writes() -> None:
    inj = Injector("error=1,codes=409", seed=0)
    assert {inj.decide("get").error.code for _ in range(20)} == {500}  # type: ignore[union-attr]
    assert {inj.decide("update").error.code for _ in range(20)} == {409}  # type: ignore[union-attr]


def test_injected_429_carries_retry_after_and_discovery_is_spared(tmp_path: Path) -> None:
    with Simulator(
        faults="error.list=1,codes=429,retry-after=3",
        audit_log=tmp_path / "a.jsonl",
        kubeconfig_out=tmp_path / "kc",
    ) as sim:
        code, headers, body = raw(sim, "/api/v1/nodes")
        assert (code, body["reason"], headers["Retry-After"]) == (429, "TooManyRequests", "3")
        assert body["details"]["retryAfterSeconds"] == 3
        assert raw(sim, "/api/v1")[0] == 200
        assert raw(sim, "/api/v1/namespaces/default")[0] == 200  # get is not faulted here
    faulted = [a for a in read_audit(tmp_path / "a.jsonl") if a.get("fault") == "error"]
    assert [(a["verb"], a["code"]) for a in faulted] == [("list", 429)]


def test_the_official_client_sees_injected_errors(tmp_path: Path) -> None:
    # urllib3 itself retries a 429 that carries Retry-After (3 times), as against a real
    # server; with retry-after=0 those retries are immediate and the error still surfaces.
    with Simulator(
        faults="error.list=1,codes=429,retry-after=0", kubeconfig_out=tmp_path / "kc"
    ) as sim:
        core = k8s.CoreV1Api(api_client(sim.kubeconfig_path))
        with pytest.raises(ApiException) as info:
            core.list_node()
        assert info.value.status == 429
        assert core.read_namespace("default").metadata.name == "default"


def test_same_seed_same_failures_over_http(tmp_path: Path) -> None:
    def run(seed: int) -> list[int]:
        with Simulator(
            faults="error=0.5,codes=500", seed=seed, kubeconfig_out=tmp_path / f"kc{seed}"
        ) as sim:
            return [raw(sim, "/api/v1/nodes")[0] for _ in range(20)]

    first = run(1)
    assert set(first) == {200, 500}
    assert first == run(1)


def test_latency_is_added_and_scaled(tmp_path: Path) -> None:
    with Simulator(
        faults="latency.list=2s",
        time_scale=0.05,
        audit_log=tmp_path / "a.jsonl",
        kubeconfig_out=tmp_path / "kc",
    ) as sim:
        # The delay drawn is exact (2 s x 0.05) and only lists get one; over HTTP a list takes
        # at least that long (a floor: a slower machine only adds), and the audit log says
        # which requests were delayed, rather than a wall-clock ceiling that a busy machine
        # would break.
        assert sim.injector.decide("list").delay == pytest.approx(0.1)
        assert sim.injector.decide("get").delay == 0.0
        start = time.monotonic()
        raw(sim, "/api/v1/nodes")
        listed = time.monotonic() - start
        raw(sim, "/api/v1/namespaces/default")
    assert listed >= 0.1
    requests = [
        a
        for a in read_audit(tmp_path / "a.jsonl")
        if a.get("kind") == "request" and a["resource"] in ("nodes", "namespaces")
    ]
    faults = {(a["verb"], a["resource"]): a["fault"] for a in requests}
    assert faults == {("list", "nodes"): "latency", ("get", "namespaces"): ""}


def test_watch_drop_cuts_streams(tmp_path: Path) -> None:
    with Simulator(
        faults="watch-drop=400ms",
        clusters=("c1",),
        audit_log=tmp_path / "a.jsonl",
        kubeconfig_out=tmp_path / "kc",
    ) as sim:
        core = k8s.CoreV1Api(api_client(sim.kubeconfig_path))
        core.create_node(node("n1"))
        seen = []
        # The connection is cut, as by a network failure: an error, where the end of the
        # watch's own 30 s would end the stream cleanly (and the audit log names the drop).
        with pytest.raises(Exception) as info:
            for ev in k8s_watch.Watch().stream(core.list_node, timeout_seconds=30):
                seen.append(ev["type"])
        assert seen == ["ADDED"]
        assert not isinstance(info.value, ApiException)
    watches = [a for a in read_audit(tmp_path / "a.jsonl") if a.get("verb") == "watch"]
    assert [(w["code"], w["fault"]) for w in watches] == [(200, "watch-drop")]
