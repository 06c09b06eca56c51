"""The planner: ``make(fleet, inventory, state, now) -> Plan``.

Part of the pure core, between ``observe`` and ``act`` in the reconcile cycle. It reads the
desired fleet, the observed inventory, the executor's small durable ``RolloutState`` and the
time it is given, and returns the whole ordered plan: fleet wave → cluster → pool → batch. It
must never do I/O, read a clock, draw a random number or iterate anything unsorted: the same
inputs give the same plan, byte for byte, and the executor (level-triggered) recomputes it on
every reconcile and carries out only the actions marked ``ready``.

How it decides, where DESIGN section 4 and issue 4 leave room (also in gitops/plan/README.md):

* **Stops.** A halted state, a wave whose failures exceed ``maxFailedNodes``, or a drifted share
  of observed nodes above ``maxDriftedFraction`` (unless overridden) stop everything *new*.
  Work already in flight is finished (a Ready replacement's old node is retired, a timed-out
  replacement abandoned): leaving surge machines behind helps nobody. A paused cluster is
  treated the same way, on its own (issue 5: "in-flight node operations finish safely").
* **Waves.** Only the first wave that is not complete (every cluster reachable, nothing to do,
  soaked) gets new work; later waves are shown as pending with their projected batches. A wave
  soaks ``soak`` after the later of its recorded convergence and the newest Ready time of a
  node the controller created in it; a wave that had nothing to do does not soak. An
  unreachable or paused cluster with work keeps its wave incomplete: nothing downstream starts
  while a canary cannot be seen.
* **Clusters.** Within the open wave, clusters with work in flight (or, when
  ``maxClustersInParallel`` is set, still soaking) keep their slot; free slots go to the
  other clusters with work in name order; the rest are queued.
* **Pools** of an active cluster proceed in parallel: their budgets are independent.
* **Counting.** ``machines`` is every Machine object of the pool (deleting and failed ones
  included, until they are gone) plus nodes of the pool without a Machine; ``available`` is
  nodes Ready, schedulable and not deleting. A new machine is created only while
  ``machines < replicas + maxSurge``; a node is cordoned only while ``available - 1 >=
  replicas - maxUnavailable`` (an unavailable node may always be retired: that takes nothing
  away). These are the bounds the crash tests check.
* **Batches.** Make-before-break: a batch creates up to the free surge room of replacements,
  each in the zone of the node it replaces (the least-filled declared zone when that zone is no
  longer declared), and retires each old node once its replacement is Ready. With
  ``maxSurge: 0`` a batch retires first (within the unavailability budget) and then scales
  back up. Retire order: drifted or not Ready first, then oldest, ties by name. New
  replacements wait for the pool's ``soak`` after the newest Ready time of a node the
  controller created in it (or the recorded last batch). Capacity is fixed first: scale up to
  ``replicas`` (least-filled zones) or scale down (retire order, availability permitting).
* **Failures.** A replacement or scale-up the controller created that has no Ready node
  ``nodeStartupTimeout`` after its creation, or that carries ``fleet.gitops.io/failed``, is
  abandoned (the executor counts it against the wave's ``maxFailedNodes`` once). A node whose
  drain timed out into quarantine keeps its slot and a ``Wait`` for a human: the pool does not
  converge while it is there.
* **Uncordon.** A node the controller cordoned, not being retired and with no live
  replacement any more, is uncordoned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from gitops import drift
from gitops.drift import Finding
from gitops.fleet import ClusterDocument, Fleet, NodePool, Wave
from gitops.fleet.quantities import format_duration
from gitops.gcpause import collector_paused
from gitops.inventory import ClusterInventory, Inventory, Member
from gitops.plan.model import (
    PLANNER_VERSION,
    AbandonMachine,
    AnyAction,
    Batch,
    ClusterPlan,
    ClusterStatus,
    CreateReplacement,
    Plan,
    PlanStatus,
    PoolPlan,
    PoolStatus,
    RetireNode,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    WavePlan,
    WaveStatus,
)
from gitops.plan.state import RolloutState

# Phases of a machine the controller created before its node was first seen Ready: the
# nodeStartupTimeout applies only then (a node that was Ready and fell over is not a boot
# failure, and not ours to delete).
STARTUP_PHASES = frozenset({"", "planned", "provisioning"})

Mode = Literal["active", "projected", "inflight"]
_NO_REASON = ("", "")


def plan_id(fleet: Fleet, inventory: Inventory) -> str:
    """Short hex id of (fleet revision, inventory digest, planner version)."""
    text = f"{fleet_identity(fleet)}\n{inventory.digest()}\n{PLANNER_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fleet_identity(fleet: Fleet) -> str:
    """The fleet's git revision; a content hash when it was loaded from a plain directory."""
    if fleet.revision:
        return fleet.revision
    docs = [fleet.document.model_dump(mode="json", by_alias=True)]
    docs += [c.model_dump(mode="json", by_alias=True) for c in fleet.clusters]
    content = json.dumps(docs, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def make(
    fleet: Fleet,
    inventory: Inventory,
    state: RolloutState,
    now: float,
    *,
    override_drift_limit: bool = False,
) -> Plan:
    """The plan for this fleet, as observed, at ``now``; pure and deterministic."""
    with collector_paused():  # time only: see gitops.gcpause
        return _make(fleet, inventory, state, now, override_drift_limit)


def _make(
    fleet: Fleet,
    inventory: Inventory,
    state: RolloutState,
    now: float,
    override_drift_limit: bool,
) -> Plan:
    findings = drift.find(fleet, inventory)
    # A node's findings: the finding itself when it has one (nearly always), else a list. One
    # list per node of the fleet would be 50,000 more objects for the cyclic GC to scan.
    by_node: dict[tuple[str, str], Finding | list[Finding]] = {}
    for finding in findings:
        if finding.node:
            key = (finding.cluster, finding.node)
            earlier = by_node.get(key)
            if earlier is None:
                by_node[key] = finding
            elif isinstance(earlier, list):
                earlier.append(finding)
            else:
                by_node[key] = [earlier, finding]
    drifted = drift.drifted_nodes(findings)
    observed = 0
    for doc in fleet.clusters:
        seen = inventory.cluster(doc.name)
        if seen is not None and seen.reachable:
            observed += len(seen.nodes)
    rollout = fleet.document.spec.rollout
    status: PlanStatus = "in-progress"
    reason = ""
    if state.halted:
        status, reason = "halted", f"rollout halted: {state.halt_reason or 'no reason recorded'}"
    else:
        for members in fleet.waves:
            failures = state.wave(members.wave.name).failures
            if failures > rollout.max_failed_nodes:
                status = "halted"
                reason = (
                    f"rollout halted: {failures} nodes failed in wave {members.wave.name}, more "
                    f"than maxFailedNodes {rollout.max_failed_nodes}"
                )
                break
    if (
        status == "in-progress"
        and observed
        and len(drifted) / observed > (rollout.max_drifted_fraction)
    ):
        share = len(drifted) / observed
        if override_drift_limit:
            reason = (
                f"{len(drifted)} of {observed} nodes ({share:.0%}) have drifted, more than "
                f"maxDriftedFraction {rollout.max_drifted_fraction:g}; acting anyway: overridden"
            )
        else:
            status = "refused"
            reason = (
                f"refusing to act: {len(drifted)} of {observed} nodes ({share:.0%}) have "
                f"drifted, more than maxDriftedFraction {rollout.max_drifted_fraction:g}; so "
                "much drift at once looks like an outage or a mass change, not hand edits. "
                "Find the cause, then override the drift limit to remediate"
            )
    stopped = status in ("halted", "refused")
    planner = _Planner(fleet, state, now, by_node, drifted)
    waves: list[WavePlan] = []
    gate_open = not stopped
    blocker = ""
    for index, members in enumerate(fleet.waves, start=1):
        wave_plan = planner.wave(
            index, members.wave, members.clusters, inventory, gate_open, stopped, blocker
        )
        waves.append(wave_plan)
        if gate_open and wave_plan.status != "complete":
            gate_open = False
            blocker = members.wave.name
    plan = Plan(
        id=plan_id(fleet, inventory),
        planner_version=PLANNER_VERSION,
        fleet=fleet.name,
        fleet_revision=fleet.revision,
        inventory_digest=inventory.digest(),
        now=now,
        status=status,
        reason=reason,
        drifted_nodes=len(drifted),
        observed_nodes=observed,
        max_drifted_fraction=rollout.max_drifted_fraction,
        override_drift_limit=override_drift_limit,
        waves=tuple(waves),
        findings=findings,
    )
    if status == "in-progress" and plan.converged:
        plan = replace(plan, status="converged")
    return plan


def _retire_key(member: Member, drifted: bool) -> tuple[int, float, str]:
    # Drifted and unhealthy first (DESIGN section 4), and within them the unhealthy ones (not
    # available: NotReady, or cordoned by someone else): they serve nothing, so retiring them
    # costs no availability and frees their slot soonest.
    rank = 0 if not member.available else 1 if drifted else 2
    return (rank, member.created, member.name)


@dataclass(slots=True)
class _PoolWork:
    """What one pool's members say, sorted into the groups the batches are built from."""

    cluster: str
    pool: NodePool
    members: tuple[Member, ...]
    abandon: list[Member] = field(default_factory=list)
    deleting: list[Member] = field(default_factory=list)
    leaving: list[Member] = field(default_factory=list)
    pairs: list[tuple[Member, Member]] = field(default_factory=list)
    uncordon: list[Member] = field(default_factory=list)
    quarantined: list[Member] = field(default_factory=list)
    provisioning: list[Member] = field(default_factory=list)
    targets: list[Member] = field(default_factory=list)
    # due node: (fingerprint, short reason); read as why.get(name, _NO_REASON) in hot paths
    why: dict[str, tuple[str, str]] = field(default_factory=dict)
    drifted: set[str] = field(default_factory=set)  # node names
    outdated: int = 0
    slots: int = 0
    newest_ready: float = 0.0  # newest Ready time of a node the controller created
    # Whether the clock took part: a machine the controller created is still starting, so
    # whether it has outlived nodeStartupTimeout depends on ``now``. Only work that did not
    # consult the clock may be remembered between plans (``_Planner._analysed``).
    clock_bound: bool = False

    @property
    def in_flight(self) -> bool:
        return bool(
            self.abandon
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
        return _retire_key(member, member.name in self.drifted)


class _Planner:
    def __init__(
        self,
        fleet: Fleet,
        state: RolloutState,
        now: float,
        by_node: Mapping[tuple[str, str], Finding | list[Finding]],
        drifted: frozenset[tuple[str, str]],
    ) -> None:
        self.fleet = fleet
        self.state = state
        self.now = now
        self.by_node = by_node
        self.drifted = drifted
        self.replace_drift = fleet.document.spec.drift.remediate == "replace"

    # ── waves and clusters ────────────────────────────────────────────────────────────────

    def wave(
        self,
        index: int,
        wave: Wave,
        names: tuple[str, ...],
        inventory: Inventory,
        gate_open: bool,
        stopped: bool,
        blocker: str,
    ) -> WavePlan:
        now = self.now
        limit = wave.max_clusters_in_parallel
        works: dict[str, list[_PoolWork]] = {}
        unknown: dict[str, str] = {}
        docs: dict[str, ClusterDocument] = {}
        seen_of: dict[str, ClusterInventory] = {}
        for name in sorted(names):
            doc = self.fleet.cluster(name)
            assert doc is not None  # the loader puts every wave member in fleet.clusters
            docs[name] = doc
            seen = inventory.cluster(name)
            if seen is None or not seen.reachable:
                unknown[name] = "not observed" if seen is None else (seen.error or "unreachable")
                continue
            seen_of[name] = seen
            works[name] = [self._analysed(doc, pool, seen) for pool in doc.spec.node_pools]

        has_work = {n: any(w.has_work for w in ws) for n, ws in works.items()}
        in_flight = {n: any(w.in_flight for w in ws) for n, ws in works.items()}
        soak_until: dict[str, float | None] = {}
        for name, ws in works.items():
            start = max(
                [self.state.cluster(name).converged_at or 0.0] + [w.newest_ready for w in ws]
            )
            soak_until[name] = start + wave.soak if wave.soak and start > 0 else None

        def soaking(name: str) -> bool:
            until = soak_until.get(name)
            return not has_work[name] and until is not None and until > now

        active: set[str] = set()
        queued_reason = ""
        if gate_open:
            busy = [n for n in sorted(works) if in_flight[n] or (limit is not None and soaking(n))]
            candidates = [
                n
                for n in sorted(works)
                if has_work[n] and n not in busy and not docs[n].spec.paused
            ]
            free = len(candidates) if limit is None else max(0, limit - len(busy))
            active = {n for n in busy if has_work[n] and not docs[n].spec.paused}
            active.update(candidates[:free])
            if limit is not None:
                queued_reason = f"maxClustersInParallel {limit}: waiting for a free slot" + (
                    f" (busy: {', '.join(busy)})" if busy else ""
                )

        clusters: list[ClusterPlan] = []
        for name in sorted(names):
            doc = docs[name]
            if name in unknown:
                clusters.append(
                    ClusterPlan(
                        name=name,
                        status="unknown",
                        reason=f"could not be observed: {unknown[name]}; nothing is planned here",
                    )
                )
                continue
            mode: Mode
            cstatus: ClusterStatus
            creason = ""
            if stopped:
                mode, cstatus, creason = "inflight", "stopped", "the rollout is stopped"
            elif doc.spec.paused:
                mode, cstatus = "inflight", "paused"
                creason = "paused in git (spec.paused): nothing new starts here"
            elif not gate_open:
                mode, cstatus = "projected", "pending"
                creason = f"waits for wave {blocker} to converge and soak"
            elif name in active:
                mode, cstatus = "active", "active"
            elif has_work[name]:
                mode, cstatus, creason = "projected", "queued", queued_reason
            else:
                mode = "projected"
                cstatus = "soaking" if soaking(name) else "converged"
            pools = tuple(self._pooled(w, mode, cstatus, seen_of[name]) for w in works[name])
            if cstatus == "soaking":
                creason = f"converged; soaking {format_duration(wave.soak)}"
            clusters.append(
                ClusterPlan(
                    name=name,
                    status=cstatus,
                    reason=creason,
                    soak_until=soak_until[name] if cstatus == "soaking" else None,
                    pools=pools,
                )
            )

        wstatus: WaveStatus
        wreason = ""
        wave_soak: float | None = None
        if stopped:
            wstatus, wreason = "stopped", "the rollout is stopped"
        elif not gate_open:
            wstatus, wreason = "pending", f"waits for wave {blocker} to converge and soak"
        elif not unknown and not any(has_work.values()):
            start = max(
                [self.state.wave(wave.name).converged_at or 0.0]
                + [w.newest_ready for ws in works.values() for w in ws]
            )
            if wave.soak and start > 0 and start + wave.soak > now:
                wstatus = "soaking"
                wave_soak = start + wave.soak
                wreason = f"converged; soaking {format_duration(wave.soak)} before the next wave"
            else:
                wstatus = "complete"
        elif active:
            wstatus = "active"
        else:
            wstatus = "blocked"
            why = [f"{n} is unreachable" for n in sorted(unknown)]
            why += [f"{n} is paused" for n in sorted(works) if has_work[n] and docs[n].spec.paused]
            wreason = "; ".join(why) or "waiting for work in flight"
        return WavePlan(
            index=index,
            name=wave.name,
            status=wstatus,
            reason=wreason,
            soak_until=wave_soak,
            max_clusters_in_parallel=limit,
            clusters=tuple(clusters),
        )

    # ── one pool: what its members say ──────────────────────────────────────────────────────

    def _analysed(self, doc: ClusterDocument, pool: NodePool, seen: ClusterInventory) -> _PoolWork:
        """``_analyse``, remembered on ``seen`` unless the clock took part.

        The executor plans again on every change anywhere in the fleet, while most clusters
        have not changed since the last plan: the adapter hands over the same inventory object
        for them, and what was derived from it before still holds. The same inputs give the
        same result, so the plan is byte for byte what a fresh computation gives.
        """
        return seen.derived(
            f"analyse/{pool.name}",
            (self.fleet, doc, pool),
            lambda: self._analyse(doc, pool, seen),
            keep=lambda work: not work.clock_bound,
        )

    def _pooled(
        self, work: _PoolWork, mode: Mode, cluster_status: ClusterStatus, seen: ClusterInventory
    ) -> PoolPlan:
        """``_pool``, remembered on ``seen`` for the modes that never read the clock or the
        record (everything but ``active``), for as long as ``work`` is the remembered one."""
        if mode == "active" or work.clock_bound:
            return self._pool(work, mode, cluster_status)
        return seen.derived(
            f"pool/{work.pool.name}/{mode}/{cluster_status}",
            (self.fleet, work),
            lambda: self._pool(work, mode, cluster_status),
        )

    def _analyse(self, doc: ClusterDocument, pool: NodePool, seen: ClusterInventory) -> _PoolWork:
        cluster = doc.name
        members = seen.members(pool.name)
        work = _PoolWork(cluster=cluster, pool=pool, members=members)
        deadline = self.now - pool.update.node_startup_timeout  # created before: too late
        by_node = self.by_node
        abandoned: set[Member] = set()
        for m in members:
            if m.deleting or m.machine is None:
                continue
            starting = (
                m.by_controller and not m.ready and not m.leaving and m.phase in STARTUP_PHASES
            )
            work.clock_bound = work.clock_bound or (starting and not m.failed)
            if m.failed or (starting and m.machine.created <= deadline):
                work.abandon.append(m)
                abandoned.add(m)
        live: dict[str, Member] = {}
        for m in sorted(
            (m for m in members if m.replaces and not m.failed and not m.deleting),
            key=lambda m: (m.created, m.name),
        ):
            if m not in abandoned:
                live[m.replaces] = m
        paired: set[Member] = set()
        replacing: set[Member] = set()
        if live:
            nodes = {m.name: m for m in members if m.node is not None}
            for target_name in sorted(live):
                target = nodes.get(target_name)
                replacement = live[target_name]
                if target is None or target is replacement or target.deleting:
                    continue  # the old node is gone: the replacement is an ordinary member now
                work.pairs.append((target, replacement))
                paired.add(target)
                replacing.add(replacement)
            work.pairs.sort(key=lambda pair: work.key(pair[0]))
        slots = 0
        for m in members:
            node = m.node
            if node is not None:
                found = by_node.get((cluster, m.name))
                if found is not None:
                    self._note(work, m, found)
            if m.deleting:
                work.deleting.append(m)
                continue
            if m in abandoned:
                continue
            if m.ready and m.by_controller:
                assert node is not None
                work.newest_ready = max(work.newest_ready, node.ready_since)
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
            if m.by_controller and not m.ready and m.phase in STARTUP_PHASES:
                work.provisioning.append(m)
            if node is not None and m.name in work.why:
                work.targets.append(m)
        work.slots = slots
        work.leaving.sort(key=work.key)
        work.targets.sort(key=work.key)
        return work

    def _note(self, work: _PoolWork, member: Member, found: Finding | list[Finding]) -> None:
        """Record what the node's findings mean for the plan: drifted, outdated, due."""
        due: Finding | None = None
        for finding in (found,) if isinstance(found, Finding) else found:
            if finding.kind in drift.NODE_DRIFT_KINDS:
                work.drifted.add(member.name)
                if self.replace_drift and (due is None or due.kind == "Outdated"):
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

    # ── one pool: its batches ───────────────────────────────────────────────────────────────

    def _pool(self, work: _PoolWork, mode: Mode, cluster_status: ClusterStatus) -> PoolPlan:
        pool = work.pool
        b = _Budget(
            replicas=pool.replicas,
            surge=pool.surge,
            unavailable=pool.unavailable,
            machines=len(work.members),
            available=sum(1 for m in work.members if m.available),
        )
        observed_machines, observed_available = b.machines, b.available
        first: list[AnyAction] = []
        later: list[AnyAction] = []
        self._in_flight(work, b, first, later)

        # Members gone once batch 1 is done, and who is available then (for the projection).
        removed: set[Member] = set(work.abandon)
        removed.update(m for m in work.deleting)
        removed.update(m for m in work.leaving)
        removed.update(t for t, _ in work.pairs if not t.quarantined)
        recovering: set[Member] = {r for _, r in work.pairs}
        recovering.update(m for m in work.provisioning)
        recovering.update(m for m in work.uncordon if m.ready)
        deficit = pool.replicas - work.slots
        remaining = list(work.targets)
        added = 0
        if mode == "active":
            candidates = [
                m
                for m in work.members
                if m not in removed and not m.quarantined and m not in recovering
            ]
            deficit, added = self._scale_now(work, b, deficit, first, candidates, removed)
            remaining = [t for t in remaining if t not in removed]
            remaining, created = self._replace_now(work, b, remaining, first, later, removed)
            added += created

        batches: list[Batch] = []
        if first or later:
            batches.append(Batch(index=1, actions=tuple(first + later)))
        reason = ""
        if mode != "inflight":
            kept = [m for m in work.members if m not in removed]
            avail = {m: m.available or m in recovering for m in kept}
            v = _Budget(
                replicas=b.replicas,
                surge=b.surge,
                unavailable=b.unavailable,
                machines=len(kept) + added,
                available=sum(avail.values()) + added,
            )
            reason = self._project(work, v, deficit, remaining, kept, avail, batches)
        elif work.targets or deficit:
            pending = []
            if work.targets:
                pending.append(f"{len(work.targets)} to replace")
            if deficit > 0:
                pending.append(f"{deficit} to add")
            if deficit < 0:
                pending.append(f"{-deficit} to remove")
            reason = "not started: " + ", ".join(pending)

        status: PoolStatus
        if not batches:
            if reason and cluster_status in ("paused", "stopped"):
                status = "paused" if cluster_status == "paused" else "stopped"
            else:
                status = "converged"
        elif any(a.ready for a in batches[0].actions):
            status = "active"
        elif batches[0].projected:
            status = "pending"
        else:
            status = "waiting"
        return PoolPlan(
            name=pool.name,
            image=pool.image,
            replicas=pool.replicas,
            max_surge=pool.surge,
            max_unavailable=pool.unavailable,
            machines=observed_machines,
            available=observed_available,
            outdated=work.outdated,
            drifted=len(work.drifted),
            status=status,
            reason=reason,
            batches=tuple(batches),
        )

    def _in_flight(
        self, work: _PoolWork, b: _Budget, first: list[AnyAction], later: list[AnyAction]
    ) -> None:
        """Batch 1's carry-on steps: finish what earlier reconciles started."""
        cluster, pool = work.cluster, work.pool.name
        timeout = work.pool.update.node_startup_timeout
        for m in work.abandon:
            machine = m.machine
            assert machine is not None
            why = (
                f"marked failed: {m.failed}"
                if m.failed
                else f"no Ready node {format_duration(timeout)} after creation (nodeStartupTimeout)"
            )
            first.append(
                AbandonMachine(
                    cluster=cluster,
                    pool=pool,
                    machine=machine.name,
                    node=m.node.name if m.node is not None else "",
                    replaces=m.replaces,
                    counted=bool(m.failed),
                    reason=f"abandon {machine.name}: {why}",
                    budget="counts once against the wave's maxFailedNodes",
                    ready=True,
                )
            )
        for m in work.deleting:
            first.append(
                Wait(
                    cluster=cluster,
                    pool=pool,
                    on="deletion",
                    what=m.name,
                    reason=f"{m.name} is being deleted; it holds a surge slot until it is gone",
                )
            )
        for m in work.leaving:
            b.available -= 1 if m.available else 0
            first.append(
                self._retire_action(
                    work,
                    m,
                    "",
                    reason=f"carry on retiring {m.name} (phase {m.phase or 'deleting'})",
                    budget="already under way",
                    ready=True,
                )
            )
        for target, replacement in work.pairs:
            repl = replacement.machine.name if replacement.machine is not None else ""
            _, why = work.why.get(target.name, _NO_REASON)
            if target.quarantined:
                first.append(self._quarantine_wait(work, target))
            elif target.leaving:
                b.available -= 1 if target.available else 0
                first.append(
                    self._retire_action(
                        work,
                        target,
                        repl,
                        reason=f"carry on retiring {target.name}, replaced by {repl}",
                        budget="already under way",
                        ready=True,
                    )
                )
            elif replacement.ready:
                first.append(self._retire_now(work, b, target, repl, f"{repl} is Ready"))
            else:
                created = replacement.machine.created if replacement.machine is not None else 0.0
                first.append(
                    Wait(
                        cluster=cluster,
                        pool=pool,
                        on="node-ready",
                        what=repl,
                        until=created + timeout,
                        reason=(
                            f"replacement {repl} for {target.name} is not Ready yet; it is "
                            f"abandoned if not Ready {format_duration(timeout)} after creation"
                        ),
                    )
                )
                later.append(
                    self._retire_action(
                        work,
                        target,
                        repl,
                        reason=f"retire {target.name} once {repl} is Ready: {why}",
                        budget="after its replacement is Ready",
                        ready=False,
                    )
                )
        for m in work.quarantined:
            first.append(self._quarantine_wait(work, m))
        for m in work.uncordon:
            node = m.node
            assert node is not None
            b.available += 1 if node.ready else 0
            first.append(
                Uncordon(
                    cluster=cluster,
                    pool=pool,
                    node=node.name,
                    reason=(
                        f"{node.name} was cordoned by this controller ({node.cordoned_by}) for a "
                        "replacement that no longer exists"
                    ),
                    budget=f"availability: {b.available} available after this",
                    ready=True,
                )
            )
        for m in work.provisioning:
            machine = m.machine
            assert machine is not None
            first.append(
                Wait(
                    cluster=cluster,
                    pool=pool,
                    on="node-ready",
                    what=machine.name,
                    until=machine.created + timeout,
                    reason=f"new machine {machine.name} is not Ready yet",
                )
            )

    def _retire_now(
        self, work: _PoolWork, b: _Budget, target: Member, replacement: str, because: str
    ) -> AnyAction:
        """RetireNode if the availability budget allows it now, else a Wait saying why not."""
        _, why = work.why.get(target.name, _NO_REASON)
        if target.available and b.available - 1 < b.floor:
            return Wait(
                cluster=work.cluster,
                pool=work.pool.name,
                on="availability",
                what=target.name,
                reason=(
                    f"{target.name} waits: {b.available} nodes are available and "
                    f"{b.floor} must stay so (replicas {b.replicas} - maxUnavailable "
                    f"{b.unavailable})"
                ),
            )
        b.available -= 1 if target.available else 0
        return self._retire_action(
            work,
            target,
            replacement,
            reason=f"retire {target.name}, {because}" + (f": {why}" if why else ""),
            budget=self._availability_text(b, target.available),
            ready=True,
        )

    def _retire_action(
        self,
        work: _PoolWork,
        target: Member,
        replacement: str,
        *,
        reason: str,
        budget: str,
        ready: bool,
    ) -> RetireNode:
        fingerprint, _ = work.why.get(target.name, _NO_REASON)
        return RetireNode(
            cluster=work.cluster,
            pool=work.pool.name,
            node=target.node.name if target.node is not None else "",
            machine=target.machine.name if target.machine is not None else "",
            replacement=replacement,
            finding=fingerprint,
            reason=reason,
            budget=budget,
            ready=ready,
        )

    @staticmethod
    def _availability_text(b: _Budget, took: bool) -> str:
        if not took:
            return f"availability: unchanged at {b.available} (the node is not available)"
        return f"availability: {b.available} available after this, at least {b.floor} required"

    def _quarantine_wait(self, work: _PoolWork, member: Member) -> Wait:
        return Wait(
            cluster=work.cluster,
            pool=work.pool.name,
            on="human",
            what=member.name,
            reason=(
                f"{member.name} is quarantined after its drain timed out; it keeps its slot "
                "until a human deletes it or removes the fleet.gitops.io/quarantined label"
            ),
        )

    def _zone(self, work: _PoolWork, member: Member | None, counts: dict[str, int]) -> str:
        """The member's zone when still declared, else the least-filled declared zone."""
        zones = work.pool.zones
        if member is not None and member.zone in zones:
            zone = member.zone
        else:
            zone = min(zones, key=lambda z: (counts.get(z, 0), zones.index(z)))
        counts[zone] = counts.get(zone, 0) + 1
        return zone

    @staticmethod
    def _zone_counts(members: Iterable[Member], removed: set[Member]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in members:
            if m not in removed:
                counts[m.zone] = counts.get(m.zone, 0) + 1
        return counts

    def _scale_up(
        self, work: _PoolWork, b: _Budget, zone: str, why: str, ready: bool, budget: str = ""
    ) -> ScaleUp:
        b.machines += 1
        return ScaleUp(
            cluster=work.cluster,
            pool=work.pool.name,
            zone=zone,
            image=work.pool.image,
            reason=why,
            budget=budget or f"surge: {b.machines}/{b.ceiling} machines after this",
            ready=ready,
        )

    def _scale_down(self, work: _PoolWork, b: _Budget, m: Member, ready: bool) -> ScaleDown:
        fingerprint, why = work.why.get(m.name, _NO_REASON)
        return ScaleDown(
            cluster=work.cluster,
            pool=work.pool.name,
            node=m.node.name if m.node is not None else "",
            machine=m.machine.name if m.machine is not None else "",
            finding=fingerprint,
            reason=f"the pool has more than its {b.replicas} replicas; {m.name} goes first"
            + (f": {why}" if why else ""),
            budget=self._availability_text(b, m.available),
            ready=ready,
        )

    def _create(
        self, work: _PoolWork, b: _Budget, target: Member, zone: str, ready: bool
    ) -> CreateReplacement:
        b.machines += 1
        fingerprint, why = work.why.get(target.name, _NO_REASON)
        return CreateReplacement(
            cluster=work.cluster,
            pool=work.pool.name,
            zone=zone,
            image=work.pool.image,
            replaces=target.name,
            replaces_machine=target.machine.name if target.machine is not None else "",
            finding=fingerprint,
            reason=f"replace {target.name}: {why}",
            budget=(
                f"surge: {b.machines}/{b.ceiling} machines after this "
                f"(replicas {b.replicas} + maxSurge {b.surge})"
            ),
            ready=ready,
        )

    def _scale_now(
        self,
        work: _PoolWork,
        b: _Budget,
        deficit: int,
        out: list[AnyAction],
        candidates: list[Member],
        removed: set[Member],
    ) -> tuple[int, int]:
        """Fix capacity as far as the budgets allow now; returns (deficit left, machines added)."""
        added = 0
        if deficit > 0:
            counts = self._zone_counts(work.members, removed)
            for _ in range(min(deficit, max(0, b.ceiling - b.machines))):
                zone = self._zone(work, None, counts)
                why = f"the pool has fewer than its {b.replicas} replicas"
                out.append(self._scale_up(work, b, zone, why, ready=True))
                added += 1
            return deficit - added, added
        blocked = False
        for m in sorted(candidates, key=work.key):
            if deficit >= 0:
                break
            if m.available and b.available - 1 < b.floor:
                blocked = True
                continue  # an unavailable member later in the order may still go
            b.available -= 1 if m.available else 0
            removed.add(m)
            out.append(self._scale_down(work, b, m, ready=True))
            deficit += 1
        if deficit < 0 and blocked:
            out.append(
                Wait(
                    cluster=work.cluster,
                    pool=work.pool.name,
                    on="availability",
                    what=work.pool.name,
                    reason=(
                        f"{-deficit} more to remove, but {b.available} nodes are available "
                        f"and {b.floor} must stay so"
                    ),
                )
            )
        return deficit, 0

    def _replace_now(
        self,
        work: _PoolWork,
        b: _Budget,
        remaining: list[Member],
        out: list[AnyAction],
        later: list[AnyAction],
        removed: set[Member],
    ) -> tuple[list[Member], int]:
        """Start replacements within the budgets; returns (targets left, machines created)."""
        if not remaining:
            return remaining, 0
        cluster, pool = work.cluster, work.pool.name
        gate = self._soak_gate(work)
        if gate > self.now:
            out.append(
                Wait(
                    cluster=cluster,
                    pool=pool,
                    on="soak",
                    what=pool,
                    until=gate,
                    reason=(
                        f"new nodes soak {format_duration(work.pool.update.soak)} before the "
                        "next batch starts"
                    ),
                )
            )
            return remaining, 0
        counts = self._zone_counts(work.members, removed)
        started: list[Member] = []
        if b.surge > 0:
            for target in remaining:
                if b.machines >= b.ceiling:
                    break
                out.append(self._create(work, b, target, self._zone(work, target, counts), True))
                started.append(target)
            for target in started:
                removed.add(target)
                _, why = work.why.get(target.name, _NO_REASON)
                later.append(
                    self._retire_action(
                        work,
                        target,
                        "",
                        reason=f"retire {target.name} once its replacement is Ready: {why}",
                        budget="after its replacement is Ready",
                        ready=False,
                    )
                )
            if b.machines >= b.ceiling:
                # No surge room left: a due node that is not available anyway may go before
                # its replacement exists. That costs no availability and frees a machine slot;
                # without it, a pair waiting on the availability floor and a dead node waiting
                # on surge room would wait for each other for ever.
                for target in remaining[len(started) :]:
                    if target.available:
                        continue
                    _, why = work.why.get(target.name, _NO_REASON)
                    out.append(
                        self._retire_action(
                            work,
                            target,
                            "",
                            reason=(
                                f"retire {target.name} before its replacement: it is not "
                                f"available and the surge budget is full: {why}"
                            ),
                            budget=self._availability_text(b, False),
                            ready=True,
                        )
                    )
                    started.append(target)
                    removed.add(target)
            if not started and not work.in_flight:
                out.append(
                    Wait(
                        cluster=cluster,
                        pool=pool,
                        on="surge",
                        what=pool,
                        reason=(
                            f"{len(remaining)} nodes to replace, but {b.machines} machines "
                            f"already fill replicas {b.replicas} + maxSurge {b.surge}"
                        ),
                    )
                )
            gone = set(started)
            created = sum(1 for a in out if isinstance(a, CreateReplacement) and a.ready)
            return [t for t in remaining if t not in gone], created
        # maxSurge 0: break before make, within the unavailability budget.
        for target in remaining:
            if target.available and b.available - 1 < b.floor:
                continue  # an unavailable node later in the order may still go
            b.available -= 1 if target.available else 0
            _, why = work.why.get(target.name, _NO_REASON)
            out.append(
                self._retire_action(
                    work,
                    target,
                    "",
                    reason=f"retire {target.name} before its replacement (maxSurge 0): {why}",
                    budget=self._availability_text(b, target.available),
                    ready=True,
                )
            )
            started.append(target)
            removed.add(target)
        for target in started:
            why = f"replaces {target.name} once it is gone (maxSurge 0)"
            # Counted against the machine ``target`` leaves behind, not on top of it.
            budget = f"surge: takes the place of {target.name}, at most {b.ceiling} machines"
            zone = self._zone(work, target, counts)
            later.append(self._scale_up(work, b, zone, why, False, budget))
        if not started and not work.in_flight:
            out.append(
                Wait(
                    cluster=cluster,
                    pool=pool,
                    on="availability",
                    what=pool,
                    reason=(
                        f"{len(remaining)} nodes to replace, but {b.available} nodes are "
                        f"available and {b.floor} must stay so (maxSurge 0)"
                    ),
                )
            )
        gone = set(started)
        return [t for t in remaining if t not in gone], len(started)

    def _soak_gate(self, work: _PoolWork) -> float:
        """When the next batch of new replacements may start (0: now)."""
        soak = work.pool.update.soak
        if not soak:
            return 0.0
        recorded = self.state.pool(work.cluster, work.pool.name).last_batch_ready_at or 0.0
        start = max(recorded, work.newest_ready)
        return start + soak if start > 0 else 0.0

    def _project(
        self,
        work: _PoolWork,
        v: _Budget,
        deficit: int,
        remaining: list[Member],
        kept: list[Member],
        avail: dict[Member, bool],
        batches: list[Batch],
    ) -> str:
        """Lay out later batches on counts alone; returns why it stalls ("" when it does not).

        ``v`` starts as the pool once batch 1 is done (every new machine a Ready node, every
        retired node gone); each batch then creates, waits for Ready, and retires, and the
        budgets are checked at each of those steps as the executor will check them.
        """
        soak = work.pool.update.soak
        note = f"after the previous batch has soaked {format_duration(soak)}" if soak else ""
        counts = self._zone_counts(kept, set())
        index = len(batches) + 1
        gone: set[Member] = set()
        remaining = list(remaining)
        while remaining or deficit:
            acts: list[AnyAction] = []
            if deficit > 0:
                k = min(deficit, v.ceiling - v.machines)
                for _ in range(max(0, k)):
                    why = f"the pool has fewer than its {v.replicas} replicas"
                    acts.append(self._scale_up(work, v, self._zone(work, None, counts), why, False))
                    v.available += 1
                    deficit -= 1
            elif deficit < 0:
                for m in sorted(kept, key=work.key):
                    if deficit >= 0:
                        break
                    if m in gone or m.quarantined:
                        continue
                    if avail[m] and v.available - 1 < v.floor:
                        continue
                    v.available -= 1 if avail[m] else 0
                    v.machines -= 1
                    gone.add(m)
                    acts.append(self._scale_down(work, v, m, ready=False))
                    deficit += 1
                    if m in remaining:
                        remaining.remove(m)
            elif v.surge > 0:
                # Creates first, then retires; keep the largest batch whose retires all fit.
                size = min(len(remaining), v.ceiling - v.machines)
                while size > 0 and not self._fits(v, [avail[t] for t in remaining[:size]]):
                    size -= 1
                batch, remaining = remaining[:size], remaining[size:]
                retires: list[AnyAction] = []
                for target in batch:
                    acts.append(
                        self._create(work, v, target, self._zone(work, target, counts), False)
                    )
                    v.available += 1
                for target in batch:
                    took = avail[target]
                    v.available -= 1 if took else 0
                    v.machines -= 1
                    gone.add(target)
                    _, why = work.why.get(target.name, _NO_REASON)
                    retires.append(
                        self._retire_action(
                            work,
                            target,
                            "",
                            reason=f"retire {target.name} once its replacement is Ready: {why}",
                            budget=self._availability_text(v, took),
                            ready=False,
                        )
                    )
                acts.extend(retires)
            else:
                batch = []
                for target in remaining:
                    took = avail[target]
                    if took and v.available - 1 < v.floor:
                        continue
                    v.available -= 1 if took else 0
                    v.machines -= 1
                    gone.add(target)
                    batch.append(target)
                    _, why = work.why.get(target.name, _NO_REASON)
                    acts.append(
                        self._retire_action(
                            work,
                            target,
                            "",
                            reason=f"retire {target.name} before its replacement (maxSurge 0): {why}",
                            budget=self._availability_text(v, took),
                            ready=False,
                        )
                    )
                remaining = [t for t in remaining if t not in gone]
                for target in batch:
                    why = f"replaces {target.name} once it is gone (maxSurge 0)"
                    acts.append(
                        self._scale_up(work, v, self._zone(work, target, counts), why, False)
                    )
                    v.available += 1
            if not acts:
                break
            batches.append(Batch(index=index, actions=tuple(acts), projected=True, note=note))
            index += 1
        if not remaining and not deficit:
            return ""
        left = []
        if remaining:
            left.append(f"{len(remaining)} nodes to replace")
        if deficit > 0:
            left.append(f"{deficit} nodes to add")
        if deficit < 0:
            left.append(f"{-deficit} nodes to remove")
        return (
            f"stalls after batch {index - 1}: {', '.join(left)} cannot proceed within "
            f"maxSurge {v.surge} and maxUnavailable {v.unavailable} "
            f"({v.available} of {v.replicas} available, {v.machines} machines)"
        )

    @staticmethod
    def _fits(v: _Budget, took: list[bool]) -> bool:
        """Whether creating len(took) replacements, then retiring their nodes, keeps the floor."""
        available = v.available + len(took)
        for t in took:
            if t and available - 1 < v.floor:
                return False
            available -= 1 if t else 0
        return True


@dataclass(slots=True)
class _Budget:
    """Running counts of one pool while its batches are laid out.

    ``replicas``, ``surge`` and ``unavailable`` never change once built, so ``floor``
    (replicas - maxUnavailable) and ``ceiling`` (replicas + maxSurge) are computed once: they
    are read for every action of the fleet.
    """

    replicas: int
    surge: int
    unavailable: int
    machines: int
    available: int
    floor: int = field(init=False)
    ceiling: int = field(init=False)

    def __post_init__(self) -> None:
        self.floor = self.replicas - self.unavailable
        self.ceiling = self.replicas + self.surge
