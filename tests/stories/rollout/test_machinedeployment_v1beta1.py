"""MachineDeployment mode against an old management cluster that serves only v1beta1.

One cluster with a pool rolled through its MachineDeployment and a pool that is a ClusterClass
topology worker, on a simulator serving ``cluster.x-k8s.io`` in v1beta1 only (as Cluster API
before v1.11). The executor discovers the version, reads the deployments' v1beta1 status
(``updatedReplicas``) and writes v1beta1 field names (``spec.strategy``); the rollout converges
with the budgets held, as the audit log's checker sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.fleet.wellknown import IMAGE_ANNOTATION, POOL_LABEL
from gitops.plan.mdplan import DEFAULT_IMAGE_FIELD, template_name
from tests.adapters.rollout.fleets import ClusterSpec, PoolSpec, Sims, write_fleet
from tests.adapters.rollout.invariants import check, load_events

pytestmark = pytest.mark.slow  # a whole rollout, end to end
GROUP = "cluster.x-k8s.io"


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Sims]:
    started = Sims(tmp_path)
    yield started
    started.stop()


def test_a_v1beta1_only_management_cluster_is_rolled_in_v1beta1(sims: Sims, tmp_path: Path) -> None:
    pools = (
        PoolSpec("workers", 2, surge=1, md=True, soak="0s"),
        PoolSpec("batch", 2, surge=1, topology="md-0", soak="0s"),
    )
    root = write_fleet(tmp_path / "fleet", (ClusterSpec("one", "first", pools),))
    r = sims.start(root, capi_version="v1beta1")
    plan = r.run(timeout=60)
    assert plan.status == "converged", plan.reason
    assert check(r.audit, r.snap, r.fleet) == []
    source = r.fleet.images["os-2"].source
    custom = r.management.custom
    md = custom.get_namespaced_custom_object(
        GROUP, "v1beta1", "one", "machinedeployments", "workers"
    )
    want = template_name("workers", DEFAULT_IMAGE_FIELD, source)
    assert md["spec"]["template"]["spec"]["infrastructureRef"]["name"] == want
    assert md["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert md["status"]["updatedReplicas"] == md["spec"]["replicas"] == 2
    cluster = custom.get_namespaced_custom_object(GROUP, "v1beta1", "one", "clusters", "one")
    (worker,) = cluster["spec"]["topology"]["workers"]["machineDeployments"]
    assert worker["variables"]["overrides"] == [{"name": "image", "value": source}]
    assert worker["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    # Cluster API made every new Machine (two per pool), none of them gitops'.
    created = [e for e in load_events(r.audit) if e.get("event") == "machine-created"]
    assert len(created) == 4
    machines = custom.list_namespaced_custom_object(GROUP, "v1beta1", "one", "machines")["items"]
    assert machines
    assert all(
        [o["kind"] for o in m["metadata"].get("ownerReferences") or []] == ["MachineSet"]
        for m in machines
    )
    # The topology worker's Machines say which image they are from (the worker's label, which
    # the topology controller copies down), so their failures would count against the budget.
    batch = [m for m in machines if m["metadata"]["labels"].get(POOL_LABEL) == "batch"]
    assert len(batch) == 2
    assert {m["metadata"]["labels"].get(IMAGE_ANNOTATION) for m in batch} == {"os-2"}
