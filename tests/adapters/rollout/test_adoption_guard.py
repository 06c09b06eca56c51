"""The adoption guard against the simulator, whose MachineSet controller adopts like upstream's.

A MachineSet in a standalone pool's namespace whose selector matches the labels gitops writes
on that pool's Machines takes any such owner-less Machine and scales it as its own: shown here
by creating one Machine the way the provider does. With that MachineSet observed, the executor
refuses to act (the plan says which pool, which MachineSet and which labels) and creates no
Machine. Both Cluster API versions: the selectors are read whichever one is served.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from gitops.fleet.wellknown import CLUSTER_NAME_LABEL, POOL_LABEL
from gitops.kube import capi
from gitops.providers.clusterapi import ClusterAPIProvider, MachineRequest
from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.invariants import load_events


def _machineset(r: Rollout, version: str) -> dict[str, Any]:
    """A MachineSet (no deployment) selecting canary's pool "workers", sized to its nodes and
    the one Machine the test makes (so the set keeps what it adopts)."""
    cluster = r.fleet.cluster("canary")
    assert cluster is not None
    pool = cluster.pool("workers")
    assert pool is not None and pool.machine_template is not None
    selector = {CLUSTER_NAME_LABEL: "canary", POOL_LABEL: "workers"}
    template = pool.machine_template.infrastructure_ref
    return {
        "apiVersion": f"cluster.x-k8s.io/{version}",
        "kind": "MachineSet",
        "metadata": {"name": "legacy", "namespace": cluster.namespace},
        "spec": {
            "clusterName": "canary",
            "replicas": pool.replicas + 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "clusterName": "canary",
                    "version": cluster.spec.kubernetes_version,
                    "bootstrap": {"dataSecretName": "canary-workers-bootstrap"},
                    "infrastructureRef": capi.write_ref(
                        version, template.api_version, template.kind, template.name, "canary"
                    ),
                },
            },
        },
    }


def _owners(r: Rollout, name: str) -> list[str]:
    machine = r.management.custom.get_namespaced_custom_object(
        *capi.machines(r.management)[:2], "canary", "machines", name
    )
    return [o["kind"] for o in machine["metadata"].get("ownerReferences") or []]


@pytest.mark.parametrize("capi_version", ["v1beta2", "v1beta1"])
def test_a_pool_a_machineset_would_adopt_is_refused_and_nothing_is_created(
    rollout: Callable[..., Rollout], capi_version: str
) -> None:
    r = rollout(initial="previous", capi_version=capi_version)
    # The danger is real: a Machine made as the provider makes it is adopted by the set.
    cluster = r.fleet.cluster("canary")
    assert cluster is not None and cluster.pool("workers") is not None
    made = ClusterAPIProvider(r.management).create_replacement(
        MachineRequest(
            cluster=cluster,
            pool=cluster.pool("workers"),  # type: ignore[arg-type]
            image_name="os-2",
            image=r.fleet.images["os-2"],
            zone="z-a",
            replaces="",
            plan_id="by-hand",
            slot="probe",
        )
    )
    r.management.custom.create_namespaced_custom_object(
        "cluster.x-k8s.io", capi_version, "canary", "machinesets", _machineset(r, capi_version)
    )
    deadline = time.monotonic() + 20
    while "MachineSet" not in _owners(r, made.name):
        assert time.monotonic() < deadline, "the simulator's MachineSet never adopted the Machine"
        time.sleep(0.05)

    # With the set observed, the executor refuses to act and creates nothing.
    created_before = _creates(r)
    plan = r.run(timeout=60)
    assert plan.status == "refused"
    assert plan.reason.startswith("refusing to act: pool canary/workers is standalone")
    assert "MachineSet canary/legacy" in plan.reason
    assert f"{CLUSTER_NAME_LABEL}=canary,{POOL_LABEL}=workers" in plan.reason
    assert _creates(r) == created_before


def _creates(r: Rollout) -> int:
    return sum(
        1
        for e in load_events(r.audit)
        if e["kind"] == "request"
        and e["verb"] == "create"
        and e["resource"] == "machines"
        and e["code"] in (200, 201)
    )
