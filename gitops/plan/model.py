"""What a plan is made of: actions in batches, per pool, per cluster, per wave.

Part of the pure core (the values ``plan.make`` returns and the renderers and the executor
read). Frozen dataclasses and tuples only; nothing here does I/O, reads a clock or decides
anything: the decisions live in ``gitops.plan.make`` and the modules it calls.

Every action says what to do, to what, why (``reason``, and ``finding``: the fingerprint of the
finding it remedies) and under which budget (``budget``). ``ready`` is True when the executor may
carry it out now; actions with ``ready=False`` are shown so a reviewer sees the whole rollout,
but they will be re-planned (level-triggered) before they are done. The kinds, and what the
executor does with each (DESIGN section 5):

``ScaleUp``            create a Machine for the pool in ``zone`` from ``image`` (no node replaced)
``CreateReplacement``  create a Machine in ``zone`` from ``image`` annotated
                       ``fleet.gitops.io/replaces: <replaces>``; idempotent on that annotation
``RetireNode``         cordon, drain and delete ``node`` and its ``machine``: make-before-break
                       (its ``replacement`` is Ready), or break-before-make when ``replacement``
                       is "" (maxSurge is 0), or the continuation of a retirement under way
``ScaleDown``          the same as RetireNode, for capacity: the pool has more than ``replicas``
``AbandonMachine``     a replacement or scale-up that failed (marked ``fleet.gitops.io/failed``
                       or not Ready within nodeStartupTimeout): mark it failed if not yet, count
                       it against the wave's maxFailedNodes once, delete it
``Uncordon``           a node the controller cordoned for a replacement that no longer exists
``RollMachineDeployment``  MachineDeployment mode: clone the deployment's infrastructure template
                       as ``template`` (the image's source at ``imageField``), point the
                       deployment at it with the pool's replicas and rolling update, unpaused;
                       for a topology pool, write the Cluster's topology worker entry instead.
                       Cluster API replaces the machines; idempotent on the template name
``PauseMachineDeployment``  a halt: ``spec.paused`` on the rolling deployment (topology pools:
                       the Cluster's topology worker entry's paused annotation)
``Wait``               nothing to do until ``until`` (seconds since the epoch) or until the
                       thing named in ``on`` changes; never ``ready``
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

from gitops.drift import Finding
from gitops.plan.shard import ClusterSummary

PLANNER_VERSION = "1"
SCHEMA_VERSION = "gitops.plan/v1"

ActionKind = Literal[
    "ScaleUp",
    "CreateReplacement",
    "RetireNode",
    "ScaleDown",
    "AbandonMachine",
    "Uncordon",
    "RollMachineDeployment",
    "PauseMachineDeployment",
    "Wait",
]
ACTION_KINDS: tuple[ActionKind, ...] = (
    "AbandonMachine",
    "RetireNode",
    "Uncordon",
    "ScaleDown",
    "ScaleUp",
    "CreateReplacement",
    "PauseMachineDeployment",
    "RollMachineDeployment",
    "Wait",
)
WaitOn = Literal[
    "node-ready",
    "soak",
    "availability",
    "surge",
    "deletion",
    "human",
    "window",
    "freeze",
    "rate",
    "gpu-driver-upgrade",
    "rollout",
]
PlanStatus = Literal["converged", "in-progress", "halted", "refused"]
WaveStatus = Literal["complete", "soaking", "active", "blocked", "pending", "stopped"]
ClusterStatus = Literal[
    "converged", "soaking", "active", "queued", "pending", "paused", "unknown", "stopped"
]
PoolStatus = Literal["converged", "active", "waiting", "pending", "paused", "stopped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """What every step of a plan carries."""

    kind: ClassVar[ActionKind]
    cluster: str
    pool: str
    reason: str
    budget: str = ""
    finding: str = ""
    ready: bool = False

    @property
    def subject(self) -> str:
        """The node or machine the action is about ("" for a scale-up)."""
        return ""

    @property
    def key(self) -> str:
        """A stable identity: the same step in two successive plans has the same key."""
        return f"{self.kind}/{self.cluster}/{self.pool}/{self.subject}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleUp(Action):
    kind: ClassVar[ActionKind] = "ScaleUp"
    zone: str
    image: str

    @property
    def subject(self) -> str:
        return self.zone


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateReplacement(Action):
    kind: ClassVar[ActionKind] = "CreateReplacement"
    zone: str
    image: str
    replaces: str
    replaces_machine: str = ""

    @property
    def subject(self) -> str:
        return self.replaces


@dataclass(frozen=True, slots=True, kw_only=True)
class RetireNode(Action):
    kind: ClassVar[ActionKind] = "RetireNode"
    node: str
    machine: str = ""
    replacement: str = ""  # the Ready replacement machine; "" before it exists or for maxSurge 0

    @property
    def subject(self) -> str:
        return self.node


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleDown(Action):
    kind: ClassVar[ActionKind] = "ScaleDown"
    node: str  # "" when the machine never got a node
    machine: str = ""

    @property
    def subject(self) -> str:
        return self.node or self.machine


@dataclass(frozen=True, slots=True, kw_only=True)
class AbandonMachine(Action):
    kind: ClassVar[ActionKind] = "AbandonMachine"
    machine: str
    node: str = ""
    replaces: str = ""
    counted: bool = False  # already marked failed: the failure was counted when it was marked

    @property
    def subject(self) -> str:
        return self.machine


@dataclass(frozen=True, slots=True, kw_only=True)
class Uncordon(Action):
    kind: ClassVar[ActionKind] = "Uncordon"
    node: str

    @property
    def subject(self) -> str:
        return self.node


@dataclass(frozen=True, slots=True, kw_only=True)
class RollMachineDeployment(Action):
    kind: ClassVar[ActionKind] = "RollMachineDeployment"
    deployment: str  # the MachineDeployment (for a topology pool: the topology worker)
    topology: bool = False  # a ClusterClass-managed worker of Cluster.spec.topology
    template: str  # the infrastructure template it is pointed at ("" for a topology pool)
    image: str
    replicas: int
    max_surge: str
    max_unavailable: str
    min_ready_seconds: int = 0  # the pool's soak, as Cluster API's minReadySeconds
    rollback: bool = False  # pointing back at the template it used before

    @property
    def subject(self) -> str:
        return self.deployment


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseMachineDeployment(Action):
    kind: ClassVar[ActionKind] = "PauseMachineDeployment"
    deployment: str
    topology: bool = False

    @property
    def subject(self) -> str:
        return self.deployment


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Action):
    kind: ClassVar[ActionKind] = "Wait"
    on: WaitOn
    until: float | None = None  # None: until the awaited thing changes
    what: str = ""  # the node, machine or pool awaited

    @property
    def subject(self) -> str:
        return f"{self.on}:{self.what}"


AnyAction = (
    ScaleUp
    | CreateReplacement
    | RetireNode
    | ScaleDown
    | AbandonMachine
    | Uncordon
    | RollMachineDeployment
    | PauseMachineDeployment
    | Wait
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Steps of one pool done together; the first batch may hold work already in flight."""

    index: int  # 1-based within the pool
    actions: tuple[AnyAction, ...]
    projected: bool = False  # a later batch: shown for review, re-planned before it runs
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolPlan:
    name: str
    image: str
    replicas: int
    max_surge: int
    max_unavailable: int
    machines: int  # Machine objects (and machineless nodes) observed now
    available: int  # Ready, schedulable, not deleting
    outdated: int  # nodes to replace because git moved
    drifted: int  # nodes with image or configuration drift (replaced or only reported)
    status: PoolStatus
    reason: str = ""
    batches: tuple[Batch, ...] = ()
    fingerprints: int = 0  # distinct node fingerprints (gitops.facts); the aim is 1
    odd_nodes: tuple[str, ...] = ()  # nodes outside the commonest fingerprint

    @property
    def on_target(self) -> int:
        """Nodes that run the declared image with the pool's configuration, up to ``replicas``."""
        return max(0, min(self.replicas, self.machines) - self.outdated - self.drifted)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterPlan:
    name: str
    status: ClusterStatus
    reason: str = ""
    soak_until: float | None = None
    pools: tuple[PoolPlan, ...] = ()
    # Time (windows, freezes): why new work of this cluster cannot start now ("" when it can,
    # or when nothing waits on time) and when it can start next (None: not within the horizon).
    window: str = ""
    next_start: float | None = None
    # Sharded (``plan.shard``): the replica that observes this cluster and planned it from
    # its summary; "" when this plan observed it.
    owner: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WavePlan:
    index: int  # 1-based
    name: str
    status: WaveStatus
    reason: str = ""
    soak_until: float | None = None
    max_clusters_in_parallel: int | None = None
    clusters: tuple[ClusterPlan, ...] = ()
    # Sharded replicas only (``plan.shard``): what this replica observed of each cluster it
    # owns in the wave, for the others to plan it from; never rendered.
    summaries: tuple[ClusterSummary, ...] = ()

    @property
    def next_start(self) -> float | None:
        """When new work of this wave can start next, if time holds it back (None otherwise)."""
        times = [c.next_start for c in self.clusters if c.window and c.next_start is not None]
        return min(times) if times else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The whole ordered plan: fleet wave → cluster → pool → batch → action."""

    id: str
    planner_version: str
    fleet: str
    fleet_revision: str
    inventory_digest: str
    now: float
    status: PlanStatus
    reason: str
    drifted_nodes: int
    observed_nodes: int
    max_drifted_fraction: float
    override_drift_limit: bool
    waves: tuple[WavePlan, ...]
    findings: tuple[Finding, ...]
    # An emergency override of windows in force ("" when none): what it lifts, until when, why.
    override: str = ""

    @property
    def summaries(self) -> tuple[ClusterSummary, ...]:
        """What a sharded replica publishes of the clusters it observed (``plan.shard``)."""
        return tuple(s for wave in self.waves for s in wave.summaries)

    @property
    def drifted_fraction(self) -> float:
        return self.drifted_nodes / self.observed_nodes if self.observed_nodes else 0.0

    def actions(self) -> Iterator[AnyAction]:
        """Every action and wait, in plan order."""
        for wave in self.waves:
            for cluster in wave.clusters:
                for pool in cluster.pools:
                    for batch in pool.batches:
                        yield from batch.actions

    @property
    def converged(self) -> bool:
        """Nothing to do, nothing to wait for, and every cluster observed.

        A cluster that could not be observed has no actions (nothing is planned blind), but
        that is not convergence: its nodes may well be outdated.
        """
        return (
            next(self.actions(), None) is None
            and not self.unknown_clusters()
            and not any(
                c.owner and c.status not in ("converged", "soaking")
                for wave in self.waves
                for c in wave.clusters
            )
        )

    def unknown_clusters(self) -> tuple[str, ...]:
        return tuple(c.name for wave in self.waves for c in wave.clusters if c.status == "unknown")
