"""Small typed references the Kubernetes adapters hand the executor instead of raw objects.

Adapter layer (``gitops.kube``), beside ``translate`` which makes the observed-state types of
``gitops.inventory``. These name one object the executor is about to act on: a Machine it
created, a pod it evicts, the ConfigMap holding its durable record. Frozen values; nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class MachineRef:
    """A Cluster API Machine in the management cluster."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod bound to a node, with what a drain needs to know of it."""

    namespace: str
    name: str
    grace_period: int | None = None  # spec.terminationGracePeriodSeconds
    deleting: bool = False  # a deletionTimestamp is set: its grace period is being honoured
    evictable: bool = True  # not a DaemonSet or mirror pod, not finished

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Refused:
    """An eviction a PodDisruptionBudget refused (429): ``budget`` is "namespace/name", or
    "a PodDisruptionBudget in <namespace>" when the answer did not name it."""

    budget: str


@dataclass(frozen=True, slots=True)
class ConfigMap:
    """A ConfigMap's data and the resourceVersion it was read at."""

    namespace: str
    name: str
    resource_version: str
    data: Mapping[str, str]
