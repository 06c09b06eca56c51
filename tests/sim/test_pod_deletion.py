"""Deleting a pod over HTTP: graceful deletion decided as the pod registry's strategy does.

API machinery only (``api_sim``, no world): nothing plays a kubelet here, so a pod deleted
gracefully stays Terminating, as it would on a real cluster whose node is gone quiet.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.sim.conftest import pod


def names(core: k8s.CoreV1Api) -> list[str]:
    return [p.metadata.name for p in core.list_namespaced_pod("default").items]


def test_a_bound_pod_is_deleted_gracefully_with_the_default_grace_period(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_pod("default", pod("web", "n1"))
    core.delete_namespaced_pod("web", "default")
    going = core.read_namespaced_pod("web", "default")
    assert going.metadata.deletion_timestamp is not None
    # terminationGracePeriodSeconds' default
    assert going.metadata.deletion_grace_period_seconds == 30


@pytest.mark.parametrize(
    ("spec", "status", "requested", "expected"),
    [
        ({"terminationGracePeriodSeconds": 7}, {"phase": "Running"}, None, 7),
        ({"terminationGracePeriodSeconds": 7}, {"phase": "Running"}, 3, 3),
        ({}, {"phase": "Running"}, -5, 1),
    ],
)
def test_the_grace_period_comes_from_the_delete_options_else_the_pod(
    c1: k8s.ApiClient,
    spec: dict[str, int],
    status: dict[str, str],
    requested: int | None,
    expected: int,
) -> None:
    core = k8s.CoreV1Api(c1)
    body = pod("web", "n1")
    body["spec"].update(spec)
    core.create_namespaced_pod("default", body)
    core.delete_namespaced_pod("web", "default", grace_period_seconds=requested)
    assert (
        core.read_namespaced_pod("web", "default").metadata.deletion_grace_period_seconds
        == expected
    )


@pytest.mark.parametrize(
    ("node", "phase", "requested"),
    [("", "Pending", None), ("n1", "Succeeded", None), ("n1", "Failed", 30), ("n1", "Running", 0)],
)
def test_unbound_finished_or_forced_pods_go_at_once(
    api_sim: object, c1: k8s.ApiClient, node: str, phase: str, requested: int | None
) -> None:
    core = k8s.CoreV1Api(c1)
    body = pod("web", node)
    core.create_namespaced_pod("default", body)
    if phase != "Pending":
        core.patch_namespaced_pod_status("web", "default", {"status": {"phase": phase}})
    core.delete_namespaced_pod("web", "default", grace_period_seconds=requested)
    assert names(core) == []


def test_a_terminating_pod_is_removed_by_a_delete_with_grace_zero(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_pod("default", pod("web", "n1"))
    core.delete_namespaced_pod("web", "default")
    assert names(core) == ["web"]
    core.delete_namespaced_pod("web", "default", grace_period_seconds=0)  # kubectl --force
    assert names(core) == []
