"""The rollout's durable memory: what the executor records between reconciles.

Part of the pure core: the planner reads a ``RolloutState`` and never writes one. The executor
(``gitops.rollout``) keeps it in the management cluster (serialised with ``to_dict``, e.g. in a
ConfigMap it owns) and replaces it with the ``with_*``/``halt`` helpers, which return copies.
Everything else the planner needs is observed (DESIGN section 2: level-triggered), so this
record is small on purpose:

* per wave: when it started, converged and finished soaking, and how many nodes failed in it
  (``failures`` above the fleet's ``maxFailedNodes`` halts the rollout);
* per cluster: when it converged and finished soaking (limits ``maxClustersInParallel``);
* per pool: when its last batch became Ready (the pool's ``soak`` runs from there);
* whether the rollout is halted, since when, and why. A halt outlives restarts; the executor
  clears it (``resume``) on a new fleet revision or ``gitops apply --resume``;
* the ``--time-scale`` the rollout runs at: its timestamps only make sense with the policy
  durations scaled the same way, so a ``gitops plan`` at another scale can say so.

``record_progress`` moves the record along with a plan: when a wave or cluster started,
converged and soaked, as the plan's statuses first say so. Timestamps are float seconds since
the epoch, ``None`` when unknown. The planner also infers
soak starts from the nodes themselves (the Ready time of nodes the controller created), so a
lost or empty record delays nothing that the fleet itself does not show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops.plan.model import Plan

STATE_SCHEMA_VERSION = "gitops.rollout-state/v1"


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveProgress:
    wave: str
    started_at: float | None = None
    converged_at: float | None = None
    soaked_at: float | None = None
    failures: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterProgress:
    cluster: str
    started_at: float | None = None
    converged_at: float | None = None
    soaked_at: float | None = None
    failures: int = 0  # of the wave's failures, those of this cluster (sharded: summed)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolProgress:
    cluster: str
    pool: str
    last_batch_ready_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutState:
    """What the executor remembers; ``RolloutState()`` is a fresh start."""

    revision: str = ""  # the fleet revision this progress belongs to
    halted: bool = False
    halt_reason: str = ""
    halted_at: float | None = None
    time_scale: float = 1.0  # the factor on every policy duration of the rollout that wrote it
    waves: tuple[WaveProgress, ...] = ()
    clusters: tuple[ClusterProgress, ...] = ()
    pools: tuple[PoolProgress, ...] = ()
    # Sharded (``gitops.plan.shard``): the clusters the coordinator lets start new work.
    admitted: tuple[str, ...] = ()
    _waves: dict[str, WaveProgress] = field(init=False, repr=False, compare=False, hash=False)
    _clusters: dict[str, ClusterProgress] = field(init=False, repr=False, compare=False, hash=False)
    _pools: dict[tuple[str, str], PoolProgress] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        _set(self, "waves", tuple(sorted(self.waves, key=lambda w: w.wave)))
        _set(self, "clusters", tuple(sorted(self.clusters, key=lambda c: c.cluster)))
        _set(self, "pools", tuple(sorted(self.pools, key=lambda p: (p.cluster, p.pool))))
        _set(self, "_waves", {w.wave: w for w in self.waves})
        _set(self, "_clusters", {c.cluster: c for c in self.clusters})
        _set(self, "_pools", {(p.cluster, p.pool): p for p in self.pools})

    def wave(self, name: str) -> WaveProgress:
        return self._waves.get(name) or WaveProgress(wave=name)

    def cluster(self, name: str) -> ClusterProgress:
        return self._clusters.get(name) or ClusterProgress(cluster=name)

    def pool(self, cluster: str, pool: str) -> PoolProgress:
        return self._pools.get((cluster, pool)) or PoolProgress(cluster=cluster, pool=pool)

    def with_wave(self, progress: WaveProgress) -> RolloutState:
        rest = tuple(w for w in self.waves if w.wave != progress.wave)
        return replace(self, waves=(*rest, progress))

    def with_cluster(self, progress: ClusterProgress) -> RolloutState:
        rest = tuple(c for c in self.clusters if c.cluster != progress.cluster)
        return replace(self, clusters=(*rest, progress))

    def with_pool(self, progress: PoolProgress) -> RolloutState:
        key = (progress.cluster, progress.pool)
        rest = tuple(p for p in self.pools if (p.cluster, p.pool) != key)
        return replace(self, pools=(*rest, progress))

    def record_failure(self, wave: str, cluster: str = "") -> RolloutState:
        current = self.wave(wave)
        state = self.with_wave(replace(current, failures=current.failures + 1))
        if cluster:
            progress = state.cluster(cluster)
            state = state.with_cluster(replace(progress, failures=progress.failures + 1))
        return state

    def halt(self, reason: str, now: float) -> RolloutState:
        return replace(self, halted=True, halt_reason=reason, halted_at=now)

    def resume(self) -> RolloutState:
        """Clear the halt and the failure counts (a new revision, or ``--resume``)."""
        return replace(
            self,
            halted=False,
            halt_reason="",
            halted_at=None,
            waves=tuple(replace(w, failures=0) for w in self.waves),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready, versioned form with a stable key order."""
        return {
            "schemaVersion": STATE_SCHEMA_VERSION,
            "revision": self.revision,
            "halted": self.halted,
            "haltReason": self.halt_reason,
            "haltedAt": self.halted_at,
            "timeScale": self.time_scale,
            "waves": [
                {
                    "wave": w.wave,
                    "startedAt": w.started_at,
                    "convergedAt": w.converged_at,
                    "soakedAt": w.soaked_at,
                    "failures": w.failures,
                }
                for w in self.waves
            ],
            "clusters": [
                {
                    "cluster": c.cluster,
                    "startedAt": c.started_at,
                    "convergedAt": c.converged_at,
                    "soakedAt": c.soaked_at,
                    "failures": c.failures,
                }
                for c in self.clusters
            ],
            "pools": [
                {"cluster": p.cluster, "pool": p.pool, "lastBatchReadyAt": p.last_batch_ready_at}
                for p in self.pools
            ],
            "admitted": list(self.admitted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        """Read what ``to_dict`` wrote; ValueError naming the field when it is not that."""
        if data.get("schemaVersion") != STATE_SCHEMA_VERSION:
            raise ValueError(
                f"rollout state has schemaVersion {data.get('schemaVersion')!r}; "
                f"expected {STATE_SCHEMA_VERSION!r}"
            )
        try:
            return cls(
                revision=_str(data, "revision"),
                halted=bool(data.get("halted", False)),
                halt_reason=_str(data, "haltReason"),
                halted_at=_time(data, "haltedAt"),
                time_scale=_time(data, "timeScale") or 1.0,  # absent in older records
                waves=tuple(
                    WaveProgress(
                        wave=_str(w, "wave"),
                        started_at=_time(w, "startedAt"),
                        converged_at=_time(w, "convergedAt"),
                        soaked_at=_time(w, "soakedAt"),
                        failures=int(w.get("failures", 0)),
                    )
                    for w in data.get("waves", ())
                ),
                clusters=tuple(
                    ClusterProgress(
                        cluster=_str(c, "cluster"),
                        started_at=_time(c, "startedAt"),
                        converged_at=_time(c, "convergedAt"),
                        soaked_at=_time(c, "soakedAt"),
                        failures=int(c.get("failures", 0)),
                    )
                    for c in data.get("clusters", ())
                ),
                pools=tuple(
                    PoolProgress(
                        cluster=_str(p, "cluster"),
                        pool=_str(p, "pool"),
                        last_batch_ready_at=_time(p, "lastBatchReadyAt"),
                    )
                    for p in data.get("pools", ())
                ),
                admitted=tuple(str(a) for a in data.get("admitted", ())),
            )
        except (AttributeError, TypeError) as err:
            raise ValueError(f"rollout state is malformed: {err}") from err


def record_progress(
    state: RolloutState, plan: Plan, now: float
) -> tuple[RolloutState, tuple[tuple[str, str], ...]]:
    """``state`` with what ``plan`` shows first stamped at ``now``; and the wave milestones so
    reached, as (wave, "started" | "converged" | "soaked"), for the executor to announce.

    A wave or cluster converges and soaks only after it was seen starting: one already on
    target when the record began never ran a batch of this rollout.
    """
    milestones: list[tuple[str, str]] = []
    for wave in plan.waves:
        progress = state.wave(wave.name)
        if wave.status == "active" and progress.started_at is None:
            progress = replace(progress, started_at=now)
            milestones.append((wave.name, "started"))
        if (
            wave.status in ("soaking", "complete")
            and progress.converged_at is None
            and progress.started_at is not None
        ):
            progress = replace(progress, converged_at=now)
            milestones.append((wave.name, "converged"))
        if (
            wave.status == "complete"
            and progress.soaked_at is None
            and progress.started_at is not None
        ):
            progress = replace(progress, soaked_at=now)
            milestones.append((wave.name, "soaked"))
        if progress != state.wave(wave.name):
            state = state.with_wave(progress)
        for cluster in wave.clusters:
            cp = state.cluster(cluster.name)
            if cluster.status == "active" and cp.started_at is None:
                cp = replace(cp, started_at=now)
            if (
                cluster.status in ("soaking", "converged")
                and cp.started_at is not None
                and cp.converged_at is None
            ):
                cp = replace(cp, converged_at=now)
            if (
                cluster.status == "converged"
                and cp.converged_at is not None
                and cp.soaked_at is None
            ):
                cp = replace(cp, soaked_at=now)
            if cp != state.cluster(cluster.name):
                state = state.with_cluster(cp)
    return state, tuple(milestones)


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"rollout state field {key!r} must be a string, not {value!r}")
    return value


def _time(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"rollout state field {key!r} must be a number or null, not {value!r}")
    return float(value)
