"""MachineDeployment mode in the pure core, and the writes its provider builds.

A pool naming a MachineDeployment is planned as one roll of the deployment (never a Machine of
gitops' own), then a wait for Cluster API's rollout rule; a rollback points back at the
template used before; a halt pauses a deployment still rolling; a Machine of the new template
not Ready within nodeStartupTimeout is abandoned and counted. The merge patches the provider
sends, applied to deployments and Clusters as the API server holds them, are valid against
the upstream CRDs of the version they are written in (read in place from ../shared/crds).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitops.fleet.wellknown import (
    IMAGE_ANNOTATION,
    POOL_LABEL,
    PREVIOUS_IMAGE_ANNOTATION,
    PREVIOUS_TEMPLATE_ANNOTATION,
)
from gitops.inventory import ClusterInventory, Inventory, Machine, MachineDeployment
from gitops.kube import translate
from gitops.plan import (
    AbandonMachine,
    CreateReplacement,
    PauseMachineDeployment,
    RollMachineDeployment,
    RolloutState,
    Wait,
    jsonout,
    make,
    text,
)
from gitops.plan.mdplan import DEFAULT_IMAGE_FIELD, template_name
from gitops.providers.machinedeployments import deployment_patch, topology_patch
from tests.sim.crds import assert_valid_crd
from tests.unit.core import factories as f

Obj = dict[str, Any]


def md_fleet(**pool: Any):  # type: ignore[no-untyped-def]
    spec = f.pool(replicas=3, surge=1, unavailable=0, **pool)
    spec["machineDeployment"] = {"name": "workers"}
    return f.fleet([f.cluster("prod", pools=[spec])])


def observed(fleet, image: str, md: MachineDeployment, **kw: Any) -> Inventory:  # type: ignore[no-untyped-def]
    inv = f.declared(fleet, image=image, **kw)
    (seen,) = inv.clusters
    return Inventory(
        (ClusterInventory.build("prod", seen.nodes, seen.machines, deployments=(md,)),)
    )


def deployment(**kw: Any) -> MachineDeployment:
    base: dict[str, Any] = {
        "name": "workers",
        "namespace": "prod",
        "template": "workers-tmpl",
        "replicas": 3,
        "max_surge": "1",
        "max_unavailable": "0",
        "generation": 1,
        "observed_generation": 1,
        "status_replicas": 3,
        "up_to_date": 3,
        "available": 3,
    }
    base.update(kw)
    return MachineDeployment(**base)


def test_an_outdated_pool_is_one_roll_of_its_deployment_never_a_machine() -> None:
    fleet = md_fleet()
    plan = make(fleet, observed(fleet, "img-1", deployment()), RolloutState(), f.T0)
    steps = list(plan.actions())
    assert [type(a) for a in steps] == [RollMachineDeployment]
    (roll,) = steps
    assert isinstance(roll, RollMachineDeployment) and roll.ready
    source = fleet.images["img-2"].source
    assert roll.template == template_name("workers-tmpl", DEFAULT_IMAGE_FIELD, source)
    assert (roll.replicas, roll.max_surge, roll.max_unavailable) == (3, "1", "0")
    rendered = text.render(plan)
    assert f"roll MachineDeployment workers to template {roll.template}" in rendered
    assert "maxSurge 1, maxUnavailable 0" in rendered
    assert '"kind": "RollMachineDeployment"' in jsonout.render(plan)
    assert not any(isinstance(a, CreateReplacement) for a in steps)


def test_the_pool_soak_is_the_deployments_min_ready_seconds() -> None:
    """Cluster API counts a new machine only after minReadySeconds: the pool's soak, per batch."""
    fleet = md_fleet(soak="5m")
    plan = make(fleet, observed(fleet, "img-1", deployment()), RolloutState(), f.T0)
    (roll,) = list(plan.actions())
    assert isinstance(roll, RollMachineDeployment) and roll.min_ready_seconds == 300
    assert "minReadySeconds 300 (soak)" in text.render(plan)
    # A soak alone does not roll a deployment again: the next roll carries it.
    rolled = deployment(annotations={IMAGE_ANNOTATION: "img-2"})
    assert not list(make(fleet, observed(fleet, "img-2", rolled), RolloutState(), f.T0).actions())


def test_a_rolling_deployment_is_waited_for_by_the_v1beta2_rule() -> None:
    fleet = md_fleet()
    rolling = deployment(
        template="workers-new",
        annotations={IMAGE_ANNOTATION: "img-2"},
        generation=2,
        observed_generation=2,
        status_replicas=4,
        up_to_date=1,
        available=3,
    )
    assert not rolling.rolled
    plan = make(fleet, observed(fleet, "img-1", rolling), RolloutState(), f.T0)
    steps = list(plan.actions())
    assert steps and all(isinstance(a, Wait) for a in steps)
    assert [a.on for a in steps if isinstance(a, Wait)] == ["rollout"]
    assert plan.status == "in-progress"
    stale = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, generation=3, observed_generation=2)
    assert not stale.rolled  # counters of an older spec say nothing of this one
    assert deployment(annotations={IMAGE_ANNOTATION: "img-2"}).rolled


def test_a_rolled_deployment_with_nodes_left_behind_says_so() -> None:
    fleet = md_fleet()
    rolled = deployment(template="workers-new", annotations={IMAGE_ANNOTATION: "img-2"})
    plan = make(fleet, observed(fleet, "img-1", rolled), RolloutState(), f.T0)
    (wait,) = list(plan.actions())
    assert isinstance(wait, Wait) and wait.on == "rollout"
    assert "3 nodes still run another image" in wait.reason


def test_rolling_back_points_at_the_template_used_before() -> None:
    fleet = md_fleet(image="img-1")
    rolled = deployment(
        template="workers-tmpl-0123456789",
        annotations={
            IMAGE_ANNOTATION: "img-2",
            PREVIOUS_IMAGE_ANNOTATION: "img-1",
            PREVIOUS_TEMPLATE_ANNOTATION: "workers-tmpl",
        },
    )
    plan = make(fleet, observed(fleet, "img-2", rolled), RolloutState(), f.T0)
    (roll,) = list(plan.actions())
    assert isinstance(roll, RollMachineDeployment)
    assert (roll.template, roll.rollback) == ("workers-tmpl", True)
    assert "roll MachineDeployment workers back to template workers-tmpl" in text.render(plan)


def test_a_halt_pauses_a_deployment_still_rolling_and_starts_nothing() -> None:
    fleet = md_fleet()
    rolling = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, up_to_date=1)
    state = RolloutState().halt("2 nodes failed", f.T0)
    plan = make(fleet, observed(fleet, "img-1", rolling), state, f.T0)
    assert plan.status == "halted"
    ready = [a for a in plan.actions() if a.ready]
    assert [type(a) for a in ready] == [PauseMachineDeployment]
    paused = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, up_to_date=1, paused=True)
    again = make(fleet, observed(fleet, "img-1", paused), state, f.T0)
    assert not [a for a in again.actions() if a.ready]


def test_a_cluster_paused_in_git_pauses_its_rolling_deployment() -> None:
    spec = f.pool(replicas=3)
    spec["machineDeployment"] = {"name": "workers"}
    fleet = f.fleet([f.cluster("prod", pools=[spec], paused=True)])
    rolling = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, up_to_date=1)
    plan = make(fleet, observed(fleet, "img-1", rolling), RolloutState(), f.T0)
    ready = [a for a in plan.actions() if a.ready]
    assert [type(a) for a in ready] == [PauseMachineDeployment]
    # Unpaused in git, the roll goes on: the deployment is unpaused by the same patch.
    fleet = md_fleet()
    paused = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, up_to_date=1, paused=True)
    plan = make(fleet, observed(fleet, "img-1", paused), RolloutState(), f.T0)
    (roll,) = [a for a in plan.actions() if a.ready]
    assert isinstance(roll, RollMachineDeployment) and "paused" in roll.reason


def test_a_new_template_machine_not_ready_in_time_is_abandoned_and_counted() -> None:
    fleet = md_fleet()
    rolling = deployment(annotations={IMAGE_ANNOTATION: "img-2"}, up_to_date=1, available=3)
    inv = f.declared(fleet, image="img-1")
    (seen,) = inv.clusters
    late = f.machine("m-new", "workers", image="img-2", created=f.T0 - 601)
    young = f.machine("m-young", "workers", image="img-2", created=f.T0 - 10)
    cluster = ClusterInventory.build(
        "prod", seen.nodes, (*seen.machines, late, young), deployments=(rolling,)
    )
    plan = make(fleet, Inventory((cluster,)), RolloutState(), f.T0)
    abandoned = [a for a in plan.actions() if isinstance(a, AbandonMachine)]
    assert [a.machine for a in abandoned] == ["m-new"]
    assert abandoned[0].ready and "maxFailedNodes" in abandoned[0].budget
    waits = [a for a in plan.actions() if isinstance(a, Wait) and a.on == "node-ready"]
    assert [a.what for a in waits] == ["m-young"] and waits[0].until == f.T0 - 10 + 600


def test_a_topology_worker_counts_failures_by_the_image_label_it_gave_its_machines() -> None:
    spec = f.pool(replicas=3)
    spec["machineDeployment"] = {"topology": "md-0"}
    fleet = f.fleet([f.cluster("prod", pools=[spec])])
    managed = deployment(name="prod-md-0-abcde", topology_worker="md-0", up_to_date=1)
    inv = f.declared(fleet, image="img-1")
    (seen,) = inv.clusters
    late = Machine(
        name="m-new",
        namespace="prod",
        labels={POOL_LABEL: "workers", IMAGE_ANNOTATION: "img-2"},
        created=f.T0 - 601,
    )
    cluster = ClusterInventory.build(
        "prod", seen.nodes, (*seen.machines, late), deployments=(managed,)
    )
    plan = make(fleet, Inventory((cluster,)), RolloutState(), f.T0)
    assert [a.machine for a in plan.actions() if isinstance(a, AbandonMachine)] == ["m-new"]
    # The worker is rolling: it is waited for, not written again.
    assert not [a for a in plan.actions() if isinstance(a, RollMachineDeployment)]


# -- the writes, against the upstream CRDs ------------------------------------------------------


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies one."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _stored_deployment(version: str) -> Obj:
    ref: Obj = (
        {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "SimMachineTemplate", "name": "t"}
        if version == "v1beta2"
        else {
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
            "kind": "SimMachineTemplate",
            "name": "t",
        }
    )
    return {
        "apiVersion": f"cluster.x-k8s.io/{version}",
        "kind": "MachineDeployment",
        "metadata": {"name": "workers", "namespace": "prod", "resourceVersion": "7"},
        "spec": {
            "clusterName": "prod",
            "replicas": 3,
            "selector": {"matchLabels": {"pool": "workers"}},
            "template": {
                "metadata": {"labels": {"pool": "workers"}},
                "spec": {
                    "clusterName": "prod",
                    "bootstrap": {"dataSecretName": "boot"},
                    "infrastructureRef": ref,
                },
            },
        },
    }


@pytest.mark.parametrize("version", ["v1beta2", "v1beta1"])
def test_the_roll_patch_gives_a_deployment_valid_in_the_version_written(version: str) -> None:
    md = _stored_deployment(version)
    patch = deployment_patch(
        version,
        md,
        template="t-0123456789",
        image="img-2",
        previous_image="img-1",
        replicas=4,
        max_surge="25%",
        max_unavailable="0",
        min_ready_seconds=300,
    )
    assert patch["metadata"]["resourceVersion"] == "7"  # the precondition against a second swap
    patched = _merge(md, patch)
    assert_valid_crd(patched)
    seen = translate.machine_deployment(patched)
    assert (seen.template, seen.replicas, seen.max_surge, seen.max_unavailable) == (
        "t-0123456789",
        4,
        "25%",
        "0",
    )
    assert seen.annotations[PREVIOUS_TEMPLATE_ANNOTATION] == "t"
    assert seen.image == "img-2" and not seen.paused
    assert seen.min_ready_seconds == 300  # the pool's soak, where this version keeps it
    # Applied again (after a crash, on the deployment as it now is), nothing is swapped twice.
    again = deployment_patch(
        version,
        {**patched, "metadata": {**patched["metadata"], "resourceVersion": "8"}},
        template="t-0123456789",
        image="img-2",
        previous_image="img-1",
        replicas=4,
        max_surge="25%",
        max_unavailable="0",
    )
    assert PREVIOUS_TEMPLATE_ANNOTATION not in again["metadata"]["annotations"]


def test_the_topology_patch_gives_a_valid_cluster_and_is_idempotent() -> None:
    cluster: Obj = {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": {"name": "prod", "namespace": "prod", "resourceVersion": "3"},
        "spec": {
            "topology": {
                "classRef": {"name": "prod-class"},
                "version": "v1.31.4",
                "workers": {
                    "machineDeployments": [
                        {"class": "batch", "name": "md-0", "replicas": 2},
                        {"class": "other", "name": "md-1", "replicas": 1},
                    ]
                },
            }
        },
    }
    patch = topology_patch(
        "v1beta2",
        cluster,
        worker="md-0",
        variable="image",
        image="img-2",
        source="registry/img:v2",
        replicas=3,
        max_surge="1",
        max_unavailable="0",
        min_ready_seconds=600,
    )
    assert patch is not None
    patched = _merge(cluster, patch)
    assert_valid_crd(patched)
    workers = patched["spec"]["topology"]["workers"]["machineDeployments"]
    assert [w["name"] for w in workers] == ["md-0", "md-1"]
    assert workers[0]["variables"]["overrides"] == [{"name": "image", "value": "registry/img:v2"}]
    assert workers[0]["rollout"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    assert workers[0]["metadata"]["labels"] == {IMAGE_ANNOTATION: "img-2"}
    assert workers[0]["minReadySeconds"] == 600
    assert workers[1] == {"class": "other", "name": "md-1", "replicas": 1}
    same = topology_patch(
        "v1beta2",
        patched,
        worker="md-0",
        variable="image",
        image="img-2",
        source="registry/img:v2",
        replicas=3,
        max_surge="1",
        max_unavailable="0",
        min_ready_seconds=600,
    )
    assert same is None
