"""The adoption guard: standalone Machines a Cluster API MachineSet would take over.

Core layer, pure, called by ``gitops.plan.make`` before any wave is planned. A MachineSet adopts
every owner-less Machine of its cluster in its namespace whose labels its selector matches, and
then scales it as its own: a Machine gitops created for a standalone pool would be deleted or
rolled by Cluster API behind gitops' back. So when the labels gitops writes on a standalone
pool's Machines (``standalone_machine_labels``) are matched by the selector of a MachineSet or
MachineDeployment of the same cluster and namespace (a MachineDeployment's selector is what its
MachineSets' start from), the plan is refused, naming the pool, the owner and the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.fleet import Fleet
from gitops.fleet.wellknown import standalone_machine_labels
from gitops.inventory import Inventory, MachineOwner


@dataclass(frozen=True)
class Adoption:
    """A standalone pool whose Machines ``owner`` would adopt, and the labels it matches."""

    cluster: str
    pool: str
    owner: MachineOwner
    labels: tuple[tuple[str, str], ...]

    def message(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.labels)
        owner = self.owner
        return (
            f"pool {self.cluster}/{self.pool} is standalone, and the Machines gitops would "
            f"create for it ({labels}) are matched by the selector {owner.selector()} of "
            f"{owner.kind} {owner.namespace}/{owner.name}, which would adopt them and scale them "
            f"as its own (roll the pool through it instead, with machineDeployment: {{name: "
            f"<its MachineDeployment>}} on the pool, or change that selector so it no longer "
            "matches the pool's Machines)"
        )


def adoptions(fleet: Fleet, inventory: Inventory) -> list[Adoption]:
    """Every (standalone pool, owner) pair where the owner's selector takes the pool's Machines."""
    found: list[Adoption] = []
    if not inventory.owners:
        return found
    for cluster in sorted(fleet.clusters, key=lambda c: c.name):
        owners = [
            o
            for o in inventory.owners
            if o.namespace == cluster.namespace and o.cluster == cluster.name
        ]
        for pool in sorted(cluster.spec.node_pools, key=lambda p: p.name):
            if pool.machine_deployment is not None or not owners:
                continue
            labels = standalone_machine_labels(cluster.name, pool.name)
            found += [
                Adoption(cluster.name, pool.name, owner, tuple(sorted(labels.items())))
                for owner in owners
                if owner.selects(labels)
            ]
    return found


def refusal(fleet: Fleet, inventory: Inventory) -> str:
    """Why the plan must not act ("" when no standalone pool would be adopted)."""
    found = adoptions(fleet, inventory)
    if not found:
        return ""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"refusing to act: {found[0].message()}{more}"
