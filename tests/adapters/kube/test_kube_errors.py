"""API failures become the project's typed errors (``gitops.kube.errors``), over real HTTP.

Adapter tier: each case makes a request the simulator really refuses (a missing object, a stale
resourceVersion, an invalid Machine, an eviction a PodDisruptionBudget forbids, an injected
throttle or server error, a bad selector, a dead port) and checks the class, its place in the
Stalled/Transient tree, the HTTP code and that the server's own message reached the caller.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from gitops.errors import Stalled, Transient
from gitops.kube import actions
from gitops.kube import errors as kube_errors
from gitops.kube.client import Kube, connect, connect_workload
from gitops.kube.errors import (
    BadRequest,
    Conflict,
    Invalid,
    KubeError,
    NotFound,
    TooManyRequests,
    Unavailable,
    call,
)
from gitops.sim import Simulator, kubeconfig_text
from gitops.sim.api.audit import read
from gitops.sim.api.resources import PDBS, PODS

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"
CANARY = "canary-eu-1"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The example fleet, served; tests here change only objects of their own."""
    tmp = tmp_path_factory.mktemp("errors")
    with Simulator(EXAMPLE, time_scale=0.01, kubeconfig_out=tmp / "kubeconfig") as running:
        yield running


@pytest.fixture
def management(sim: Simulator) -> Iterator[Kube]:
    kube = connect(sim.kubeconfig_path)
    yield kube
    kube.close()


@pytest.fixture
def canary(management: Kube) -> Iterator[Kube]:
    kube = connect_workload(management, CANARY, CANARY)
    yield kube
    kube.close()


def assert_typed(error: KubeError, cls: type[KubeError], code: int, family: type) -> None:
    """The class, the family (Stalled or Transient), the code, and the library cause kept."""
    assert type(error) is cls
    assert isinstance(error, family)
    assert error.code == code
    assert error.__cause__ is not None  # raised "from" the library error


def test_404_is_not_found_with_the_servers_message(canary: Kube) -> None:
    with pytest.raises(NotFound) as caught:
        call("reading Node ghost", canary.core.read_node, "ghost")
    assert_typed(caught.value, NotFound, 404, Stalled)
    assert isinstance(caught.value.__cause__, ApiException)
    assert caught.value.reason == "NotFound"
    assert str(caught.value) == 'reading Node ghost: 404 NotFound: nodes "ghost" not found'
    assert caught.value.details["name"] == "ghost"


def test_409_is_conflict_for_a_stale_version_and_for_an_existing_name(management: Kube) -> None:
    actions.create_namespace(management, "errors-409")  # AlreadyExists is tolerated here...
    actions.create_namespace(management, "errors-409")  # ...as the docstring promises
    version = actions.write_config_map(management, "errors-409", "record", {"a": "1"}, None)
    newer = actions.write_config_map(management, "errors-409", "record", {"a": "2"}, version)
    assert newer != version
    with pytest.raises(Conflict) as stale:
        actions.write_config_map(management, "errors-409", "record", {"a": "3"}, version)
    assert_typed(stale.value, Conflict, 409, Transient)
    assert stale.value.reason == "Conflict"
    assert "errors-409/record" in str(stale.value)
    with pytest.raises(Conflict) as exists:
        actions.write_config_map(management, "errors-409", "record", {"a": "4"}, None)
    assert exists.value.reason == "AlreadyExists"


def test_422_is_invalid_with_the_causes(management: Kube) -> None:
    machine: dict[str, Any] = {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {"name": "broken", "namespace": CANARY},
        "spec": {"clusterName": 42, "bootstrap": {}},  # no infrastructureRef, bad type
    }
    with pytest.raises(Invalid) as caught:
        call(
            "creating Machine broken",
            management.custom.create_namespaced_custom_object,
            "cluster.x-k8s.io",
            "v1beta1",  # the version the body is written in
            CANARY,
            "machines",
            machine,
        )
    assert_typed(caught.value, Invalid, 422, Stalled)
    assert caught.value.reason == "Invalid"
    fields = {cause["field"] for cause in caught.value.details["causes"]}
    assert "spec.clusterName" in fields


def test_429_from_a_disruption_budget_names_the_budget(sim: Simulator, canary: Kube) -> None:
    def allow_nothing(budget: dict[str, Any]) -> dict[str, Any]:
        budget["spec"]["maxUnavailable"] = 0
        return budget

    sim.store.mutate(CANARY, PDBS, "shop", "checkout", allow_nothing)
    pods, _ = sim.store.list(CANARY, PODS, "shop", label_selector="app=checkout")
    victim = next(p for p in pods if p["status"].get("phase") == "Running")
    with pytest.raises(TooManyRequests) as caught:
        actions.evict(canary, "shop", victim["metadata"]["name"])
    assert_typed(caught.value, TooManyRequests, 429, Transient)
    assert "checkout" in str(caught.value)
    assert caught.value.retry_after > 0


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("faults", "request_kind", "cls", "code", "family"),
    [
        ("error.create=1,codes=429,retry-after=7", "create", TooManyRequests, 429, Transient),
        ("error.list=1,codes=500", "list", Unavailable, 500, Transient),
        ("", "bad-selector", BadRequest, 400, Stalled),
    ],
    ids=["throttled-429", "server-error-500", "bad-request-400"],
)
def test_injected_and_malformed_requests(
    tmp_path: Path,
    faults: str,
    request_kind: str,
    cls: type[KubeError],
    code: int,
    family: type,
) -> None:
    audit = tmp_path / "audit.jsonl"
    with Simulator(
        clusters=("c1",),
        faults=faults,
        seed=1,
        audit_log=audit,
        kubeconfig_out=tmp_path / "kubeconfig",
    ) as sim:
        kube = connect(sim.kubeconfig_path)
        try:
            with pytest.raises(cls) as caught:
                if request_kind == "create":
                    call(
                        "creating Namespace n",
                        kube.core.create_namespace,
                        {"metadata": {"name": "n"}},
                    )
                elif request_kind == "list":
                    call("listing Nodes", kube.core.list_node)
                else:
                    call("listing Pods", kube.core.list_pod_for_all_namespaces, field_selector="x=")
        finally:
            kube.close()
    assert_typed(caught.value, cls, code, family)
    if cls is TooManyRequests:
        assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]
        creates = [line for line in read(audit) if line.get("verb") == "create"]
        assert len(creates) == 1 and creates[0]["fault"] == "error"


def test_no_answer_at_all_is_unavailable(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig_text(f"http://127.0.0.1:{dead_port()}"))
    kube = connect(str(config))
    try:
        with pytest.raises(Unavailable) as caught:
            call("listing Nodes of nowhere", kube.core.list_node, _request_timeout=(2, 2))
    finally:
        kube.close()
    assert_typed(caught.value, Unavailable, 0, Transient)
    assert str(caught.value).startswith("listing Nodes of nowhere: ")


def test_a_read_is_retried_through_passing_failures_and_a_wrong_request_is_not() -> None:
    answers: list[Exception | str] = [ApiException(status=500), ApiException(status=503), "ok"]

    def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert kube_errors.read("reading it", flaky) == "ok"
    assert answers == []

    calls = []

    def wrong() -> str:
        calls.append(1)
        raise ApiException(status=400)

    with pytest.raises(BadRequest):
        kube_errors.read("reading it", wrong)
    assert len(calls) == 1
