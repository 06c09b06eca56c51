"""Inventories and plans that the bot's stories and the dashboard's link tests both build.

A hand-patched canary (drift the bot reports as a pull request) and a canary with a failed
replacement (a failure-budget halt the bot answers with a revert pull request).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from gitops.fleet import Fleet
from gitops.inventory import ClusterInventory, Inventory
from gitops.plan import Plan, RolloutState, make
from tests.unit.core.factories import T0, declared, machine

CLUSTER = "canary-eu-1"
BRANCH = "gitops/drift/canary-eu-1"


def patched(fleet: Fleet, nodes: Collection[int], kernel: str = "6.6.99") -> Inventory:
    """The canary's system nodes ``nodes`` run a hand-patched kernel."""
    return declared(
        fleet,
        hook=lambda c, p, i, n: (
            replace(n, kernel_version=kernel) if (c, p) == (CLUSTER, "system") and i in nodes else n
        ),
    )


def planned(fleet: Fleet, inventory: Inventory) -> Plan:
    """The plan at ``T0`` for ``inventory``, with nothing rolled out yet."""
    return make(fleet, inventory, RolloutState(revision=fleet.revision), T0)


def with_failed_machine(inventory: Inventory) -> Inventory:
    """The canary has a replacement that never became Ready (marked failed)."""
    seen = inventory.cluster("canary-eu-1")
    assert seen is not None
    dead = machine(
        "canary-eu-1-system-new-1",
        "system",
        failed="node not Ready within nodeStartupTimeout 10m",
        replaces="canary-eu-1-system-000",
        namespace="canary-eu-1",
    )
    rebuilt = ClusterInventory.build(seen.name, seen.nodes, (*seen.machines, dead), seen.pdbs)
    return Inventory(tuple(rebuilt if c.name == seen.name else c for c in inventory.clusters))
