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

This module keeps the stops and the wave loop. The rest lives in rooms by concern: ``waves``
(slots and status ladders), ``pools`` (a pool's analysis), ``budget`` and ``batches`` (the
bounds and the batch rules, written once for batch 1 and the projection), ``inflight`` (work
under way), ``actions`` (every action's text), ``poolplan`` (a pool's batches and status).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace

from gitops import drift
from gitops.drift import Finding
from gitops.facts import Keys
from gitops.fleet import Fleet
from gitops.fleet.windows import Calendar, local
from gitops.gcpause import collector_paused
from gitops.inventory import Inventory, sha256_hex
from gitops.plan import adoption
from gitops.plan.context import Context
from gitops.plan.model import PLANNER_VERSION, Plan, PlanStatus, WavePlan
from gitops.plan.pools import STARTUP_PHASES
from gitops.plan.rates import RateLedger, declares_rates
from gitops.plan.shard import Shard
from gitops.plan.state import RolloutState
from gitops.plan.waves import plan_wave

__all__ = ["STARTUP_PHASES", "fleet_identity", "make", "plan_id"]


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
    return "sha256:" + sha256_hex(content)


def make(
    fleet: Fleet,
    inventory: Inventory,
    state: RolloutState,
    now: float,
    *,
    override_drift_limit: bool = False,
    ignore_windows: bool = False,
    shard: Shard | None = None,
) -> Plan:
    """The plan for this fleet, as observed, at ``now``; pure and deterministic.

    ``ignore_windows`` lifts maintenance windows (never freezes) for this plan: what
    ``gitops apply --ignore-windows`` asks for, after a human confirmed it. ``shard``: a
    sharded replica's view of the clusters it does not observe (``gitops.plan.shard``).
    """
    with collector_paused():  # time only: see gitops.gcpause
        return _make(fleet, inventory, state, now, override_drift_limit, ignore_windows, shard)


def _calendar(fleet: Fleet, now: float, ignore_windows: bool) -> tuple[Calendar, str]:
    """The plan's windows and freezes at ``now``, and the override in force ("" when none).

    ``spec.rollout.override`` lifts windows (and freezes when it says so) until its ``until``:
    it travels with the change that carries it, so it lapses by itself and a later change
    without it is held to the windows again.
    """
    override = fleet.document.spec.rollout.override
    if override is not None and now < override.until_at:
        lifts = "windows and freezes" if override.lift_freezes else "windows"
        text = f"override lifts {lifts} until {local(override.until_at, 'UTC')}: {override.reason}"
        return Calendar(now, ignore_windows=True, lift_freezes=override.lift_freezes), text
    if ignore_windows:
        return Calendar(
            now, ignore_windows=True
        ), "windows ignored at the terminal (--ignore-windows)"
    return Calendar(now), ""


def _make(
    fleet: Fleet,
    inventory: Inventory,
    state: RolloutState,
    now: float,
    override_drift_limit: bool,
    ignore_windows: bool = False,
    shard: Shard | None = None,
) -> Plan:
    findings = drift.find(fleet, inventory, now)
    drifted = drift.drifted_nodes(findings)
    observed = _observed_nodes(fleet, inventory)
    drifted_count = len(drifted)
    if shard is not None:  # the drift limit is fleet-wide: count what the others observe
        for doc in fleet.clusters:
            summary = shard.summary(doc.name, fleet.revision)
            if summary is not None and inventory.cluster(doc.name) is None:
                observed += summary.nodes
                drifted_count += summary.drifted
    status, reason = _stop(fleet, state, drifted_count, observed, override_drift_limit)
    if status != "halted" and (adopted := adoption.refusal(fleet, inventory)):
        # Not overridable: acting would hand the pool's new Machines to a MachineSet.
        status, reason = "refused", adopted
    calendar, override = _calendar(fleet, now, ignore_windows)
    ctx = Context(
        fleet=fleet,
        state=state,
        now=now,
        by_node=_by_node(findings),
        replace_drift=fleet.document.spec.drift.remediate == "replace",
        calendar=calendar,
        rates=RateLedger.observe(fleet, inventory, now) if declares_rates(fleet) else None,
        fact_keys=Keys.of(fleet),
        shard=shard,
        drifted=drifted if shard is not None else frozenset(),
    )
    rollout = fleet.document.spec.rollout
    plan = Plan(
        id=plan_id(fleet, inventory),
        planner_version=PLANNER_VERSION,
        fleet=fleet.name,
        fleet_revision=fleet.revision,
        inventory_digest=inventory.digest(),
        now=now,
        status=status,
        reason=reason,
        drifted_nodes=drifted_count,
        observed_nodes=observed,
        max_drifted_fraction=rollout.max_drifted_fraction,
        override_drift_limit=override_drift_limit,
        waves=_waves(ctx, inventory, stopped=status in ("halted", "refused")),
        findings=findings,
        override=override,
    )
    if status == "in-progress" and plan.converged:
        plan = replace(plan, status="converged")
    return plan


def _by_node(findings: Sequence[Finding]) -> dict[tuple[str, str], Finding | list[Finding]]:
    """Each node's findings: the finding itself when it has one (nearly always), else a list."""
    # One list per node of the fleet would be 50,000 more objects for the cyclic GC to scan.
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
    return by_node


def _observed_nodes(fleet: Fleet, inventory: Inventory) -> int:
    """Nodes of the fleet's reachable clusters: what the drifted share is a share of."""
    observed = 0
    for doc in fleet.clusters:
        seen = inventory.cluster(doc.name)
        if seen is not None and seen.reachable:
            observed += len(seen.nodes)
    return observed


def _stop(
    fleet: Fleet, state: RolloutState, drifted: int, observed: int, override_drift_limit: bool
) -> tuple[PlanStatus, str]:
    """The plan's status before its waves are planned (halted, refused or in progress), and why."""
    rollout = fleet.document.spec.rollout
    if state.halted:
        return "halted", f"rollout halted: {state.halt_reason or 'no reason recorded'}"
    for members in fleet.waves:
        failures = state.wave(members.wave.name).failures
        if failures > rollout.max_failed_nodes:
            return "halted", (
                f"rollout halted: {failures} nodes failed in wave {members.wave.name}, more "
                f"than maxFailedNodes {rollout.max_failed_nodes}"
            )
    if not observed or drifted / observed <= rollout.max_drifted_fraction:
        return "in-progress", ""
    share = drifted / observed
    if override_drift_limit:
        return "in-progress", (
            f"{drifted} of {observed} nodes ({share:.0%}) have drifted, more than "
            f"maxDriftedFraction {rollout.max_drifted_fraction:g}; acting anyway: overridden"
        )
    return "refused", (
        f"refusing to act: {drifted} of {observed} nodes ({share:.0%}) have "
        f"drifted, more than maxDriftedFraction {rollout.max_drifted_fraction:g}; so "
        "much drift at once looks like an outage or a mass change, not hand edits. "
        "Find the cause, then override the drift limit to remediate"
    )


def _waves(ctx: Context, inventory: Inventory, *, stopped: bool) -> tuple[WavePlan, ...]:
    """Every wave in order: the first that is not complete gets new work, the rest wait for it."""
    waves: list[WavePlan] = []
    gate_open = not stopped
    blocker = ""
    for index, members in enumerate(ctx.fleet.waves, start=1):
        wave_plan = plan_wave(
            ctx,
            index,
            members.wave,
            members.clusters,
            inventory,
            gate_open=gate_open,
            stopped=stopped,
            blocker=blocker,
        )
        waves.append(wave_plan)
        if gate_open and wave_plan.status != "complete":
            gate_open = False
            blocker = members.wave.name
    return tuple(waves)
