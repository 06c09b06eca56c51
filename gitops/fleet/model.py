"""The loaded fleet: the Fleet document, its Clusters and which wave each cluster rolls in.

Part of the model layer: frozen, pure. ``gitops.fleet.load`` builds it; every other layer reads
it and never changes it (``with_revision`` returns a copy that names the git revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType

from gitops.fleet.spec import (
    ClusterDocument,
    FleetDocument,
    Image,
    MachineDeploymentRef,
    NodePool,
    Wave,
)

# A pool's ``machine_deployment`` (``NodePool.machine_deployment``) is a MachineDeploymentRef.
__all__ = ["Fleet", "MachineDeploymentRef", "NodePool", "WaveMembers"]


@dataclass(frozen=True)
class WaveMembers:
    """A wave and the names of the clusters it selects, sorted."""

    wave: Wave
    clusters: tuple[str, ...]


@dataclass(frozen=True)
class FreezeMark:
    """Where a one-off freeze is declared and when it ends: for ``gitops validate``'s warning
    about freezes that have ended (the loader reads no clock; the command judges)."""

    name: str
    ends_at: float
    path: str
    line: int
    col: int


@dataclass(frozen=True)
class Fleet:
    """Everything a fleet repository declares, validated."""

    document: FleetDocument
    clusters: tuple[ClusterDocument, ...]
    waves: tuple[WaveMembers, ...]
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    revision: str = ""
    freezes: tuple[FreezeMark, ...] = ()

    @property
    def name(self) -> str:
        return self.document.metadata.name

    @property
    def images(self) -> Mapping[str, Image]:
        return self.document.spec.images

    def cluster(self, name: str) -> ClusterDocument | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> Mapping[str, ClusterDocument]:
        # The planner asks for clusters by name once per cluster and pool of the fleet.
        return {c.name: c for c in reversed(self.clusters)}  # the first of a name wins

    def wave_of(self, cluster: str) -> int:
        """Index of the wave that selects ``cluster``; ValueError when none does."""
        for index, members in enumerate(self.waves):
            if cluster in members.clusters:
                return index
        raise ValueError(f"cluster {cluster!r} is in no wave")

    def previous_image(self, image: str) -> str:
        """The image listed before ``image`` in its family (itself when it is the oldest)."""
        family = self.images[image].family
        earlier = None
        for name, candidate in self.images.items():
            if name == image:
                return earlier or image
            if candidate.family == family:
                earlier = name
        raise KeyError(image)

    def pools(self) -> tuple[tuple[ClusterDocument, NodePool], ...]:
        return tuple((c, p) for c in self.clusters for p in c.spec.node_pools)

    def with_revision(self, revision: str) -> Fleet:
        return replace(self, revision=revision)

    def scaled(self, factor: float) -> Fleet:
        """A copy with every policy duration (soaks, timeouts) multiplied by ``factor``.

        For demos and tests (``--time-scale``): the planner and executor then run the same
        logic against a faster clock of events.
        """
        if factor == 1.0:
            return self
        spec = self.document.spec
        waves = tuple(w.model_copy(update={"soak": w.soak * factor}) for w in spec.rollout.waves)
        document = self.document.model_copy(
            update={
                "spec": spec.model_copy(
                    update={
                        "rollout": spec.rollout.model_copy(update={"waves": waves}),
                        "drift": spec.drift.model_copy(
                            update={"fact_grace_period": spec.drift.fact_grace_period * factor}
                        ),
                    }
                )
            }
        )
        clusters = []
        for cluster in self.clusters:
            pools = []
            for pool in cluster.spec.node_pools:
                u = pool.update
                update = u.model_copy(
                    update={
                        "node_startup_timeout": u.node_startup_timeout * factor,
                        "drain_timeout": u.drain_timeout * factor,
                        "soak": u.soak * factor,
                    }
                )
                pools.append(pool.model_copy(update={"update": update}))
            spec_c = cluster.spec.model_copy(update={"node_pools": tuple(pools)})
            clusters.append(cluster.model_copy(update={"spec": spec_c}))
        members = tuple(
            WaveMembers(wave, m.clusters) for wave, m in zip(waves, self.waves, strict=True)
        )
        return replace(self, document=document, clusters=tuple(clusters), waves=members)

    def summary(self) -> str:
        pools = self.pools()
        nodes = sum(p.replicas for _, p in pools)
        waves = ", ".join(f"{w.wave.name} ({len(w.clusters)})" for w in self.waves)
        return (
            f"fleet {self.name}: {len(self.clusters)} clusters, {len(pools)} pools, {nodes} nodes, "
            f"{len(self.images)} images; waves {waves}"
        )
