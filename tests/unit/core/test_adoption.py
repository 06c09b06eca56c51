"""The adoption guard: no standalone Machine gitops creates may be one a MachineSet adopts.

Pure: ``gitops.plan.make`` with inventories that carry MachineSets and MachineDeployments
(``Inventory.owners``). A selector of the same cluster and namespace that matches the labels
gitops writes on a standalone pool's Machines refuses the plan, not overridably, naming the
pool, the owner, its selector and the labels; pools rolled through a MachineDeployment, other
clusters and selectors that do not match are left alone.
"""

from __future__ import annotations

from gitops.fleet.wellknown import CLUSTER_NAME_LABEL, POOL_LABEL, standalone_machine_labels
from gitops.inventory import Inventory, MachineOwner, Requirement
from gitops.plan import make, next_actions
from gitops.plan.adoption import adoptions
from gitops.plan.state import RolloutState
from tests.unit.core import factories as f
from tests.unit.core.factories import T0


def _owner(
    name: str = "legacy",
    *,
    kind: str = "MachineSet",
    cluster: str = "prod",
    namespace: str = "prod",
    labels: dict[str, str] | None = None,
    expressions: tuple[Requirement, ...] = (),
) -> MachineOwner:
    return MachineOwner(
        kind=kind,
        namespace=namespace,
        name=name,
        cluster=cluster,
        match_labels=labels if labels is not None else {CLUSTER_NAME_LABEL: "prod"},
        match_expressions=expressions,
    )


def test_a_matching_machineset_refuses_the_plan_naming_pool_owner_and_labels() -> None:
    fleet = f.fleet([f.cluster("prod", pools=[f.pool("workers"), f.pool("gpu")])])
    inv = f.declared(fleet, image="img-1")
    acting = make(fleet, inv, RolloutState(), T0)
    assert acting.status == "in-progress" and next_actions(acting)

    owner = _owner(labels={CLUSTER_NAME_LABEL: "prod", POOL_LABEL: "gpu"})
    refused = make(fleet, Inventory(inv.clusters, owners=(owner,)), RolloutState(), T0)
    assert refused.status == "refused"
    reason = refused.reason
    assert reason.startswith("refusing to act: pool prod/gpu is standalone")
    assert "MachineSet prod/legacy" in reason
    assert f"{CLUSTER_NAME_LABEL}=prod,{POOL_LABEL}=gpu" in reason  # the colliding labels
    assert "machineDeployment: {name:" in reason and "change that selector" in reason
    assert next_actions(refused) == ()
    # Not overridable like the drift limit: acting would hand the Machines over.
    forced = make(
        fleet,
        Inventory(inv.clusters, owners=(owner,)),
        RolloutState(),
        T0,
        override_drift_limit=True,
    )
    assert forced.status == "refused"


def test_a_selector_of_the_cluster_alone_takes_every_standalone_pool() -> None:
    fleet = f.fleet([f.cluster("prod", pools=[f.pool("workers"), f.pool("gpu")])])
    inv = Inventory(f.declared(fleet).clusters, owners=(_owner(kind="MachineDeployment"),))
    found = adoptions(fleet, inv)
    assert [(a.pool, a.owner.kind) for a in found] == [
        ("gpu", "MachineDeployment"),
        ("workers", "MachineDeployment"),
    ]
    assert make(fleet, inv, RolloutState(), T0).reason.endswith("(and 1 more)")


def test_match_expressions_are_honoured() -> None:
    fleet = f.fleet([f.cluster("prod", pools=[f.pool("workers"), f.pool("gpu")])])
    clusters = f.declared(fleet).clusters
    takes_gpu = _owner(labels={}, expressions=(Requirement(POOL_LABEL, "In", ("gpu", "big")),))
    found = adoptions(fleet, Inventory(clusters, owners=(takes_gpu,)))
    assert [a.pool for a in found] == ["gpu"]
    assert f"{POOL_LABEL} in (gpu,big)" in found[0].message()
    not_gpu = _owner(
        labels={CLUSTER_NAME_LABEL: "prod"},
        expressions=(Requirement(POOL_LABEL, "NotIn", ("gpu",)),),
    )
    assert [a.pool for a in adoptions(fleet, Inventory(clusters, owners=(not_gpu,)))] == ["workers"]


def test_owners_that_cannot_adopt_are_left_alone() -> None:
    fleet = f.fleet([f.cluster("prod", pools=[f.pool("workers")])])
    clusters = f.declared(fleet).clusters
    harmless = (
        _owner("other-cluster", cluster="staging", labels={}),  # upstream lists by cluster name
        _owner("other-namespace", namespace="elsewhere"),
        # What Cluster API puts in a deployment's selector: gitops' Machines never carry it.
        _owner(
            "md",
            kind="MachineDeployment",
            labels={CLUSTER_NAME_LABEL: "prod", "cluster.x-k8s.io/deployment-name": "md"},
        ),
        _owner("other-pool", labels={POOL_LABEL: "gpu"}),
    )
    inv = Inventory(clusters, owners=harmless)
    assert adoptions(fleet, inv) == []
    assert make(fleet, inv, RolloutState(), T0).status == "converged"


def test_pools_rolled_through_a_machinedeployment_are_not_standalone() -> None:
    md_pool = {**f.pool("workers"), "machineDeployment": {"name": "workers"}}
    fleet = f.fleet([f.cluster("prod", pools=[md_pool])])
    inv = Inventory(f.declared(fleet).clusters, owners=(_owner(),))
    assert adoptions(fleet, inv) == []


def test_the_labels_checked_are_the_labels_the_provider_writes() -> None:
    assert standalone_machine_labels("prod", "gpu") == {
        CLUSTER_NAME_LABEL: "prod",
        POOL_LABEL: "gpu",
    }


def test_an_inventory_without_owners_digests_as_before() -> None:
    fleet = f.fleet([f.cluster("prod")])
    inv = f.declared(fleet)
    assert Inventory(inv.clusters).digest() == inv.digest()
    assert Inventory(inv.clusters, owners=(_owner(),)).digest() != inv.digest()
