"""The desired state: the fleet repository's format, its loader and its JSON Schema.

The model layer's entry: ``load(path) -> Fleet`` or ``FleetError`` with every problem found.
"""

from gitops.fleet.loader import load
from gitops.fleet.model import Fleet, WaveMembers
from gitops.fleet.problems import FleetError, Problem
from gitops.fleet.spec import (
    ClusterDocument,
    FleetDocument,
    Image,
    LabelSelector,
    MachineDeploymentRef,
    NodePool,
    Taint,
    UpdatePolicy,
    Wave,
)

__all__ = [
    "ClusterDocument",
    "Fleet",
    "FleetDocument",
    "FleetError",
    "Image",
    "LabelSelector",
    "MachineDeploymentRef",
    "NodePool",
    "Problem",
    "Taint",
    "UpdatePolicy",
    "Wave",
    "WaveMembers",
    "load",
]
