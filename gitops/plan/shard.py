"""What one replica of a sharded controller knows of the clusters other replicas own.

Part of the pure core (gitops.plan). With ``gitops run --sharding`` every replica observes
only the workload clusters it owns (``gitops.kube.shards``), yet wave gates, the failure
budget, ``maxClustersInParallel`` and the drift limit are fleet-wide. So each owner publishes,
per cluster and fleet revision, a ``ClusterSummary`` (what the wave rules read of an observed
cluster: whether it has work, work in flight, when its newest replacement became Ready, its
node and drifted-node counts) in the cluster's durable record, and every replica plans the
clusters it does not own from those summaries. ``Shard`` carries them into ``plan.make``,
with the coordinator's admissions: which clusters may start new work
(``maxClustersInParallel`` decided once, by the coordinator, so that two replicas never both
take the last free slot).

The durable record splits the same way: each owner keeps its clusters' progress, failures
and halts in a ``ClusterRecord`` per cluster (written fenced, ``gitops.kube.fence``), the
coordinator keeps the fleet's (waves, the halt, the admissions) in the ``RolloutState`` of
old; ``compose`` reads them back as the one ``RolloutState`` the planner knows, summing the
failures of a wave over its clusters, whoever owns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitops.plan.state import ClusterProgress, PoolProgress, RolloutState


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSummary:
    """An observed cluster as its owner saw it when it last planned."""

    cluster: str
    revision: str  # the fleet revision it was planned at; others ignore any other revision
    owner: str = ""
    has_work: bool = False
    in_flight: bool = False
    newest_ready: float = 0.0  # newest Ready time of a node the controller created in it
    nodes: int = 0
    drifted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "revision": self.revision,
            "owner": self.owner,
            "hasWork": self.has_work,
            "inFlight": self.in_flight,
            "newestReady": self.newest_ready,
            "nodes": self.nodes,
            "drifted": self.drifted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterSummary:
        """Read what ``to_dict`` wrote; ValueError when it is not that."""
        try:
            return cls(
                cluster=str(data["cluster"]),
                revision=str(data["revision"]),
                owner=str(data.get("owner", "")),
                has_work=bool(data.get("hasWork", False)),
                in_flight=bool(data.get("inFlight", False)),
                newest_ready=float(data.get("newestReady") or 0.0),
                nodes=int(data.get("nodes") or 0),
                drifted=int(data.get("drifted") or 0),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"cluster summary is malformed: {err!r}") from err


@dataclass(frozen=True, slots=True)
class Shard:
    """A sharded replica's view beyond its own clusters, for one ``plan.make`` call.

    ``remote``: summaries of the clusters this replica does not observe. ``admitted``: the
    clusters the coordinator let start new work (None on the coordinator itself, which
    decides). ``held``: what the coordinator admitted before; such a cluster keeps its slot
    while it has work, even while its summary lags behind what its owner already started.
    """

    remote: Mapping[str, ClusterSummary] = field(default_factory=dict)
    admitted: frozenset[str] | None = None
    held: frozenset[str] = frozenset()

    def summary(self, cluster: str, revision: str) -> ClusterSummary | None:
        """The remote summary of ``cluster`` at ``revision`` (None: none, or an older one)."""
        found = self.remote.get(cluster)
        return found if found is not None and found.revision == revision else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRecord:
    """One cluster's share of the durable record, kept by the replica that owns it."""

    cluster: str
    revision: str
    progress: ClusterProgress
    pools: tuple[PoolProgress, ...] = ()
    halt: str = ""  # a step of this cluster said the rollout must halt
    summary: ClusterSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        state = RolloutState(revision=self.revision, clusters=(self.progress,), pools=self.pools)
        data = state.to_dict()
        return {
            "cluster": self.cluster,
            "revision": self.revision,
            "progress": data["clusters"][0],
            "pools": data["pools"],
            "halt": self.halt,
            "summary": self.summary.to_dict() if self.summary is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterRecord:
        """Read what ``to_dict`` wrote; ValueError when it is not that."""
        try:
            state = RolloutState.from_dict(
                {
                    "schemaVersion": "gitops.rollout-state/v1",
                    "revision": data["revision"],
                    "clusters": [data["progress"]],
                    "pools": data.get("pools") or [],
                }
            )
            summary = data.get("summary")
            return cls(
                cluster=str(data["cluster"]),
                revision=state.revision,
                progress=state.clusters[0],
                pools=state.pools,
                halt=str(data.get("halt") or ""),
                summary=ClusterSummary.from_dict(summary) if summary else None,
            )
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise ValueError(f"cluster record is malformed: {err!r}") from err


def compose(
    fleet_state: RolloutState,
    records: Iterable[ClusterRecord],
    revision: str,
    wave_of: Mapping[str, str],
) -> RolloutState:
    """The one ``RolloutState`` the planner reads, from the coordinator's record and every
    cluster's; records of another fleet revision than ``revision`` count for nothing.

    A wave's failures are the sum of its clusters' (whoever owns them); a halt any owner
    recorded halts the rollout, as the coordinator's own does.
    """
    current = sorted((r for r in records if r.revision == revision), key=lambda r: r.cluster)
    base = fleet_state if fleet_state.revision == revision else RolloutState(revision=revision)
    failures: dict[str, int] = {}
    for record in current:
        wave = wave_of.get(record.cluster)
        if wave is not None:
            failures[wave] = failures.get(wave, 0) + record.progress.failures
    waves = tuple(
        replace(base.wave(name), failures=failures.get(name, 0))
        for name in sorted({*(w.wave for w in base.waves), *failures})
    )
    state = replace(
        base,
        waves=waves,
        clusters=tuple(r.progress for r in current),
        pools=tuple(p for r in current for p in r.pools),
    )
    halted = next((r for r in current if r.halt), None)
    if halted is not None and not state.halted:
        state = replace(state, halted=True, halt_reason=f"{halted.halt} (cluster {halted.cluster})")
    return state


def split(
    state: RolloutState,
    clusters: Iterable[str],
    summaries: Mapping[str, ClusterSummary],
    halts: Mapping[str, str],
) -> dict[str, ClusterRecord]:
    """Each of ``clusters``' share of ``state``, for its owner to write."""
    return {
        name: ClusterRecord(
            cluster=name,
            revision=state.revision,
            progress=state.cluster(name),
            pools=tuple(p for p in state.pools if p.cluster == name),
            halt=halts.get(name, ""),
            summary=summaries.get(name),
        )
        for name in sorted(clusters)
    }
