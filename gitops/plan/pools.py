"""One pool as observed: its members sorted into the groups its batches are built from.

Part of the pure core (gitops.plan), between ``waves`` (which asks for the analysis of every
pool of an observed cluster) and ``poolplan`` (which lays out the pool's batches from it).
``analyse`` reads the members, their findings and ``now`` (for ``nodeStartupTimeout`` only);
it decides nothing about budgets and makes no action. The retire order (DESIGN section 4) is
written here, once: ``retire_key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitops import drift
from gitops.drift import Finding
from gitops.facts import Facts, cluster_facts
from gitops.fleet import ClusterDocument, NodePool
from gitops.fleet.wellknown import IMAGE_ANNOTATION
from gitops.inventory import ClusterInventory, MachineDeployment, Member
from gitops.plan.context import Context

# Phases of a machine the controller created before its node was first seen Ready: the
# nodeStartupTimeout applies only then (a node that was Ready and fell over is not a boot
# failure, and not ours to delete).
STARTUP_PHASES = frozenset({"", "planned", "provisioning"})

# What ``PoolWork.why`` gives for a member that is not due: (fingerprint, short reason).
NO_REASON = ("", "")


def retire_key(member: Member, drifted: bool) -> tuple[int, float, str]:
    """Where ``member`` stands in the retire order: earlier keys go first."""
    # Drifted and unhealthy first (DESIGN section 4), and within them the unhealthy ones (not
    # available: NotReady, or cordoned by someone else): they serve nothing, so retiring them
    # costs no availability and frees their slot soonest.
    rank = 0 if not member.available else 1 if drifted else 2
    return (rank, member.created, member.name)


@dataclass(slots=True)
class PoolWork:
    """What one pool's members say, sorted into the groups the batches are built from."""

    cluster: str
    pool: NodePool
    members: tuple[Member, ...]
    facts: Mapping[str, Facts]  # every node's of the cluster (``facts.cluster_facts``)
    abandon: list[Member] = field(default_factory=list)
    deleting: list[Member] = field(default_factory=list)
    leaving: list[Member] = field(default_factory=list)
    pairs: list[tuple[Member, Member]] = field(default_factory=list)
    uncordon: list[Member] = field(default_factory=list)
    quarantined: list[Member] = field(default_factory=list)
    provisioning: list[Member] = field(default_factory=list)
    targets: list[Member] = field(default_factory=list)
    # due node: (fingerprint, short reason); read as why.get(name, NO_REASON) in hot paths
    why: dict[str, tuple[str, str]] = field(default_factory=dict)
    drifted: set[str] = field(default_factory=set)  # node names
    outdated: int = 0
    slots: int = 0
    newest_ready: float = 0.0  # newest Ready time of a node the controller created
    # How long each replacement of this rollout took from its Machine's creation to its node
    # Ready: what a batch's length is estimated from once there are enough (plan.timing).
    boots: list[float] = field(default_factory=list)
    # Whether the clock took part: a machine the controller created is still starting, so
    # whether it has outlived nodeStartupTimeout depends on ``now``. Only work that did not
    # consult the clock may be remembered between plans (``analysed``).
    clock_bound: bool = False
    # MachineDeployment mode: the pool's deployment as observed (None: not observed, or a
    # standalone pool), and whether Cluster API is still rolling it.
    deployment: MachineDeployment | None = None
    rolling: bool = False

    @property
    def in_flight(self) -> bool:
        return bool(
            self.rolling
            or self.abandon
            or self.deleting
            or self.leaving
            or self.pairs
            or self.uncordon
            or self.quarantined
            or self.provisioning
        )

    @property
    def has_work(self) -> bool:
        return self.in_flight or bool(self.targets) or self.slots != self.pool.replicas

    def key(self, member: Member) -> tuple[int, float, str]:
        return retire_key(member, member.name in self.drifted)


def analysed(
    ctx: Context, doc: ClusterDocument, pool: NodePool, seen: ClusterInventory
) -> PoolWork:
    """``analyse``, remembered on ``seen`` unless the clock took part.

    The executor plans again on every change anywhere in the fleet, while most clusters have
    not changed since the last plan: the adapter hands over the same inventory object for them,
    and what was derived from it before still holds. The same inputs give the same result, so
    the plan is byte for byte what a fresh computation gives.
    """
    return seen.derived(
        f"analyse/{pool.name}",
        (ctx.fleet, doc, pool),
        lambda: analyse(ctx, doc, pool, seen),
        keep=lambda work: not work.clock_bound,
    )


def analyse(ctx: Context, doc: ClusterDocument, pool: NodePool, seen: ClusterInventory) -> PoolWork:
    """Sort the pool's members: abandoned, paired with a replacement, leaving, due, ..."""
    work = PoolWork(
        cluster=doc.name,
        pool=pool,
        members=seen.members(pool.name),
        facts=cluster_facts(seen, ctx.fact_keys),
    )
    ref = pool.machine_deployment
    if ref is not None:
        work.deployment = (
            seen.deployment(ref.name) if ref.name else seen.topology_deployment(ref.topology or "")
        )
        work.rolling = work.deployment is not None and not work.deployment.rolled
    abandoned = _abandoned(work, ctx.now - pool.update.node_startup_timeout)
    paired, replacing = _paired(work, abandoned)
    _sort(ctx, work, abandoned, paired, replacing)
    work.leaving.sort(key=work.key)
    work.targets.sort(key=work.key)
    return work


def _abandoned(work: PoolWork, deadline: float) -> set[Member]:
    """Machines the controller created that failed, or did not boot before ``deadline``."""
    abandoned: set[Member] = set()
    for m in work.members:
        if m.deleting or m.machine is None:
            continue
        starting = _ours(work, m) and not m.ready and not m.leaving and m.phase in STARTUP_PHASES
        work.clock_bound = work.clock_bound or (starting and not m.failed)
        if m.failed or (starting and m.machine.created <= deadline):
            work.abandon.append(m)
            abandoned.add(m)
    return abandoned


def _paired(work: PoolWork, abandoned: set[Member]) -> tuple[set[Member], set[Member]]:
    """Pair each old node with its live replacement; returns (old nodes, replacements)."""
    live: dict[str, Member] = {}
    for m in sorted(
        (m for m in work.members if m.replaces and not m.failed and not m.deleting),
        key=lambda m: (m.created, m.name),
    ):
        if m not in abandoned:
            live[m.replaces] = m
    paired: set[Member] = set()
    replacing: set[Member] = set()
    if live:
        nodes = {m.name: m for m in work.members if m.node is not None}
        for target_name in sorted(live):
            target = nodes.get(target_name)
            replacement = live[target_name]
            if target is None or target is replacement or target.deleting:
                continue  # the old node is gone: the replacement is an ordinary member now
            work.pairs.append((target, replacement))
            paired.add(target)
            replacing.add(replacement)
        work.pairs.sort(key=lambda pair: work.key(pair[0]))
    return paired, replacing


def _sort(
    ctx: Context,
    work: PoolWork,
    abandoned: set[Member],
    paired: set[Member],
    replacing: set[Member],
) -> None:
    """Put every other member in its group and count the pool's slots."""
    cluster, by_node = work.cluster, ctx.by_node
    slots = 0
    for m in work.members:
        node = m.node
        if node is not None:
            found = by_node.get((cluster, m.name))
            if found is not None:
                _note(ctx, work, m, found)
        if m.deleting:
            work.deleting.append(m)
            continue
        if m in abandoned:
            continue
        if m.ready and _ours(work, m):
            assert node is not None
            work.newest_ready = max(work.newest_ready, node.ready_since)
            if m.replaces and m.machine is not None and node.ready_since > m.machine.created > 0:
                work.boots.append(node.ready_since - m.machine.created)
        if m in paired:
            continue  # its replacement fills its slot
        if m.leaving:
            work.leaving.append(m)
            continue
        slots += 1
        if m.quarantined:
            work.quarantined.append(m)
            continue
        if m in replacing:
            continue
        if node is not None and node.unschedulable and node.cordoned_by:
            work.uncordon.append(m)
        if _ours(work, m) and not m.ready and m.phase in STARTUP_PHASES:
            work.provisioning.append(m)
        if node is not None and m.name in work.why:
            work.targets.append(m)
    work.slots = slots


def _ours(work: PoolWork, m: Member) -> bool:
    """Whether the controller made ``m``: created it (standalone), or, in MachineDeployment
    mode, a MachineSet made it from the template gitops pointed the deployment at (its
    ``fleet.gitops.io/image`` annotation comes from that template)."""
    if m.by_controller:
        return True
    machine = m.machine
    # A topology worker's Machines carry the image as a label (the topology controller copies
    # the worker's metadata labels, not annotations, down to them).
    image = (machine.image or machine.labels.get(IMAGE_ANNOTATION, "")) if machine else ""
    return work.deployment is not None and bool(image) and image == work.pool.image


def _note(ctx: Context, work: PoolWork, member: Member, found: Finding | list[Finding]) -> None:
    """Record what the node's findings mean for the plan: drifted, outdated, due."""
    due: Finding | None = None
    for finding in (found,) if isinstance(found, Finding) else found:
        if finding.kind in drift.NODE_DRIFT_KINDS:
            work.drifted.add(member.name)
            # A MachineDeployment's machines are Cluster API's to replace: drift in such a
            # pool is reported, not remedied one node at a time.
            if (
                ctx.replace_drift
                and work.pool.machine_deployment is None
                and (due is None or due.kind == "Outdated")
            ):
                due = finding
        elif finding.kind == "Outdated":
            work.outdated += 1
            if due is None:
                due = finding
    if due is None:
        return
    if due.kind == "Outdated":
        why = f"Outdated ({due.observed} → {due.expected})"
    else:
        why = f"{due.kind} ({due.fact}: {due.observed})"
    work.why[member.name] = (due.fingerprint, why)
