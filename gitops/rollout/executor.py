"""Carry a plan out: level-triggered reconciles of the whole fleet, crash-safe.

Shell layer. Each ``reconcile`` observes the fleet (watch caches), loads the durable record,
asks the pure planner for the plan, and carries out the plan's *ready* actions through the
adapters, then records wave progress. Nothing needed to resume lives only in memory: a
replacement Machine is annotated with the node it replaces and its phase, an old node with its
retirement phase, failures and halts are in the ConfigMap record. Every write is idempotent
(machine names derive from what they are for and the plan id; annotations are merges), so a
crash between two writes is harmless. The decisions are the planner's; this module decides
nothing beyond *how* to perform a step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gitops import plan as planner
from gitops.errors import GitopsError
from gitops.fleet import Fleet
from gitops.fleet.spec import ClusterDocument, NodePool
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    DRAIN_BLOCKED_ANNOTATION,
    DRAIN_STARTED_ANNOTATION,
    FAILED_ANNOTATION,
    PHASE_ANNOTATION,
)
from gitops.inventory import ClusterInventory, Inventory, Node
from gitops.kube import actions
from gitops.kube.client import Kube
from gitops.kube.errors import NotFound
from gitops.kube.observe import Observer
from gitops.plan import (
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    Plan,
    RetireNode,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
)
from gitops.plan.make import STARTUP_PHASES
from gitops.providers.clusterapi import ClusterAPIProvider, MachineRequest
from gitops.rollout import drain
from gitops.rollout.store import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Something the executor did, for logs and progress displays."""

    time: float
    cluster: str
    pool: str
    subject: str
    message: str
    level: str = "info"  # info, warning, error


class Executor:
    """Reconciles the fleet towards ``fleet`` until it converges or halts."""

    def __init__(
        self,
        fleet: Fleet,
        observer: Observer,
        provider: ClusterAPIProvider,
        store: StateStore,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
        override_drift_limit: bool = False,
    ) -> None:
        self.fleet = fleet.scaled(time_scale)
        self.observer = observer
        self.provider = provider
        self.store = store
        self.clock = clock
        self.on_event = on_event
        self.override_drift_limit = override_drift_limit
        self.stopping = threading.Event()
        # Steps done since the caches last changed: repeating them would be harmless (every
        # write is idempotent) but noisy, so wait until the effect is observed. Memory only.
        self._done: dict[str, int] = {}
        # Steps that failed or could not finish yet (a drain blocked by a PDB) are tried again
        # after ``retry_interval``: every pass re-lists the pods, but not many times a second.
        self._not_before: dict[str, float] = {}
        self.retry_interval = min(1.0, max(0.05, time_scale))
        # Expectations, as Kubernetes' ReplicaSet controller keeps them: Machines this process
        # created that its cache has not shown yet. Planning before they show would count the
        # pool short and create a second replacement. A restarted process lists afresh and sees
        # them all, so this too lives in memory only.
        self._expected: dict[tuple[str, str], float] = {}
        self._wave_of = {
            c: members.wave.name for members in self.fleet.waves for c in members.clusters
        }

    # -- the loop ------------------------------------------------------------------------

    def reconcile(self, *, resume: bool = False) -> Plan:
        """One level-triggered pass; returns the plan it acted on."""
        self._await_expected()
        now = self.clock()
        inventory = self.observer.inventory()
        state = self._effective_state(resume=resume, announce=True)
        self._mark_ready(inventory, now)
        plan = planner.make(
            self.fleet, inventory, state, now, override_drift_limit=self.override_drift_limit
        )
        if plan.status == "halted" and not state.halted:
            state = state.halt(plan.reason.removeprefix("rollout halted: "), now)
            self._emit("", "", "", plan.reason, "error")
        if plan.status == "in-progress" and not self.stopping.is_set():
            generation = self.observer.generation()
            self._done = {k: g for k, g in self._done.items() if g == generation}
            for slot, action in enumerate(planner.next_actions(plan)):
                if self.stopping.is_set():
                    break
                if action.key in self._done or self._not_before.get(action.key, 0.0) > now:
                    continue
                state, settled = self._perform(action, slot, plan, inventory, state, now)
                if settled:
                    self._done[action.key] = generation
                else:  # failed, or a drain still blocked: try again, but not at once
                    self._not_before[action.key] = now + self.retry_interval
                if state.halted:
                    break
        state = self._record_progress(plan, state, now)
        self.store.save(state)
        return plan

    def preview(self, *, resume: bool = False) -> Plan:
        """The plan the next reconcile would act on, without acting or writing anything."""
        state = self._effective_state(resume=resume, announce=False)
        return planner.make(
            self.fleet,
            self.observer.inventory(),
            state,
            self.clock(),
            override_drift_limit=self.override_drift_limit,
        )

    def _effective_state(self, *, resume: bool, announce: bool) -> RolloutState:
        state = self.store.load()
        if state.revision != self.fleet.revision:
            # A new fleet revision is a new rollout: its waves start afresh and an old halt
            # no longer applies (the revision is what a human changed to fix it).
            if state.halted and announce:
                self._emit("", "", "", f"a new fleet revision clears the halt: {state.halt_reason}")
            return RolloutState(revision=self.fleet.revision)
        if resume and state.halted:
            if announce:
                self._emit(
                    "", "", "", f"resuming the halted rollout (--resume): {state.halt_reason}"
                )
            return state.resume()
        return state

    def run(
        self,
        *,
        resume: bool = False,
        poll: float = 1.0,
        on_plan: Callable[[Plan], None] | None = None,
    ) -> Plan:
        """Reconcile until converged, halted, refused or stopped; wake on changes or ``poll``."""
        first = True
        while True:
            generation = self.observer.generation()
            try:
                plan = self.reconcile(resume=resume and first)
            except GitopsError as err:
                self._emit("", "", "", f"reconcile failed, retrying: {err}", "warning")
                self.stopping.wait(poll)
                continue
            first = False
            if on_plan is not None:
                on_plan(plan)
            if plan.status in ("converged", "halted", "refused") or self.stopping.is_set():
                return plan
            wake = planner.next_wakeup(plan)
            timeout = poll if wake is None else max(0.05, min(poll, wake - self.clock()))
            self.observer.wait_changed(generation, timeout)

    def _await_expected(self, timeout: float = 30.0) -> None:
        """Wait until the Machines cache shows every Machine this process created."""
        cache = self.observer.machines
        deadline = time.monotonic() + timeout
        while self._expected:
            self._expected = {k: t for k, t in self._expected.items() if cache.get(*k) is None}
            if not self._expected:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopping.is_set():
                missing = ", ".join(f"{ns}/{name}" for ns, name in sorted(self._expected))
                self._emit("", "", "", f"created Machines not observed yet: {missing}", "warning")
                self._expected.clear()
                return
            cache.wait_changed(cache.generation, min(remaining, 1.0))

    # -- steps ---------------------------------------------------------------------------

    def _perform(
        self,
        action: AnyAction,
        slot: int,
        plan: Plan,
        inventory: Inventory,
        state: RolloutState,
        now: float,
    ) -> tuple[RolloutState, bool]:
        """Carry one step out; the flag says whether it is done (its effect will be observed)."""
        doc = self.fleet.cluster(action.cluster)
        pool = doc.pool(action.pool) if doc is not None else None
        if doc is None or pool is None:
            return state, True
        settled = True
        try:
            if isinstance(action, ScaleUp | CreateReplacement):
                self._create(action, slot, plan, doc, pool, state)
            elif isinstance(action, RetireNode | ScaleDown):
                state, settled = self._retire(action, plan, inventory, doc, pool, state, now)
            elif isinstance(action, AbandonMachine):
                state = self._abandon(action, doc, state)
            elif isinstance(action, Uncordon):
                self._uncordon(action)
        except GitopsError as err:
            self._emit(
                action.cluster,
                action.pool,
                action.subject,
                f"{action.kind} failed: {err}",
                "warning",
            )
            settled = False
        return state, settled

    def _create(
        self,
        action: ScaleUp | CreateReplacement,
        slot: int,
        plan: Plan,
        doc: ClusterDocument,
        pool: NodePool,
        state: RolloutState,
    ) -> None:
        replacing = isinstance(action, CreateReplacement)
        # A failed attempt is deleted and the inventory goes back to what it was, so the plan
        # id (and with it the name) would repeat: the new Machine would collide with the old
        # one, or with its infrastructure clone, while they are still being deleted. The wave's
        # failure count is durable and moves with every abandon, so it tells attempts apart.
        failures = state.wave(self._wave_of[doc.name]).failures
        attempt = f"#attempt-{failures}" if failures else ""
        request = MachineRequest(
            cluster=doc,
            pool=pool,
            image_name=action.image,
            image=self.fleet.images[action.image],
            zone=action.zone,
            replaces=action.replaces if isinstance(action, CreateReplacement) else "",
            plan_id=plan.id,
            # A scale-up has no node to key on: its step number in this plan tells it apart.
            slot=("" if replacing else str(slot)) + attempt,
        )
        machine = self.provider.create_replacement(request)
        meta = machine["metadata"]
        self._expected[(meta["namespace"], meta["name"])] = self.clock()
        what = f"for {action.replaces}" if isinstance(action, CreateReplacement) else "to scale up"
        self._emit(
            doc.name,
            pool.name,
            machine["metadata"]["name"],
            f"created machine {machine['metadata']['name']} in {action.zone} {what}",
        )

    def _retire(
        self,
        action: RetireNode | ScaleDown,
        plan: Plan,
        inventory: Inventory,
        doc: ClusterDocument,
        pool: NodePool,
        state: RolloutState,
        now: float,
    ) -> tuple[RolloutState, bool]:
        """One pass of a retirement; settled once the machine is deleted (or the rollout halts)."""
        seen = inventory.cluster(doc.name)
        node = seen.node(action.node) if seen is not None and action.node else None
        kube = self.observer.workload(doc.name)
        if node is not None and kube is not None and not node.deleting:
            try:
                result = self._drain(kube, node, plan, doc, pool, now)
            except NotFound:
                # the node went away under us: only its machine is left
                result = drain.DrainResult("drained")
            if result.outcome == "failed":
                # The reason names the node, the blocking PDB and the timeout: it is what the
                # record, the plan and `gitops apply` show the SRE who has to act.
                why = result.message or f"drain of {node.name} failed"
                return state.halt(f"{why} (onDrainTimeout: fail)", now), True
            if result.outcome != "drained":
                return state, False
        if action.machine:
            try:
                self.provider.annotate_machine(
                    doc.namespace, action.machine, {PHASE_ANNOTATION: "retired"}
                )
            except NotFound:
                # Deleted by an earlier pass whose effect the cache has not shown yet: done.
                return state, True
            self.provider.delete_machine(doc.namespace, action.machine)
            self._emit(
                doc.name,
                pool.name,
                action.node or action.machine,
                f"deleted machine {action.machine} of {action.node or 'no node'}",
            )
        return state, True

    def _drain(
        self, kube: Kube, node: Node, plan: Plan, doc: ClusterDocument, pool: NodePool, now: float
    ) -> drain.DrainResult:
        """Cordon (once) and run one eviction pass; the outcome says whether to delete now."""
        if not node.unschedulable or node.phase not in ("draining", "retired"):
            drain.cordon(kube, node, plan.id, now)
            self._emit(doc.name, pool.name, node.name, f"cordoned {node.name}")
            started = node.annotations.get(DRAIN_STARTED_ANNOTATION, f"{now:.3f}")
            node = replace(
                node,
                unschedulable=True,
                annotations={**node.annotations, DRAIN_STARTED_ANNOTATION: started},
            )
        result = drain.drain_pass(kube, node, pool, now)
        if result.outcome == "draining" and result.blocked_by:
            blockers = ", ".join(result.blocked_by)
            self._emit(
                doc.name,
                pool.name,
                node.name,
                f"drain of {node.name} blocked by PodDisruptionBudget {blockers}; retrying",
            )
        elif result.outcome in ("quarantined", "failed"):
            level = "warning" if result.outcome == "quarantined" else "error"
            self._emit(doc.name, pool.name, node.name, result.message, level)
        elif result.outcome == "drained":
            actions.patch_node(kube, node.name, annotations={PHASE_ANNOTATION: "retired"})
        return result

    def _abandon(
        self, action: AbandonMachine, doc: ClusterDocument, state: RolloutState
    ) -> RolloutState:
        if not action.counted:
            # Count first, then mark: a crash in between counts the failure twice, which halts
            # early; the other order could lose it and let a bad image go further.
            state = state.record_failure(self._wave_of[doc.name])
            self.store.save(state)
            self.provider.annotate_machine(
                doc.namespace,
                action.machine,
                {
                    FAILED_ANNOTATION: action.reason.removeprefix(f"abandon {action.machine}: ")[
                        :200
                    ]
                },
            )
            self._emit(
                doc.name,
                action.pool,
                action.machine,
                f"machine {action.machine} failed: {action.reason}",
                "error",
            )
        self.provider.delete_machine(doc.namespace, action.machine)
        return state

    def _uncordon(self, action: Uncordon) -> None:
        kube = self.observer.workload(action.cluster)
        if kube is None:
            return
        actions.patch_node(
            kube,
            action.node,
            unschedulable=False,
            annotations={
                CORDONED_BY_ANNOTATION: None,
                PHASE_ANNOTATION: None,
                DRAIN_STARTED_ANNOTATION: None,
                DRAIN_BLOCKED_ANNOTATION: None,
            },
        )
        self._emit(action.cluster, action.pool, action.node, f"uncordoned {action.node}")

    def _mark_ready(self, inventory: Inventory, now: float) -> None:
        """Record ``ready`` on machines the controller created once their node is first Ready.

        From then on nodeStartupTimeout no longer applies to them (the planner reads the phase).
        """
        for seen in inventory.clusters:
            doc = self.fleet.cluster(seen.name)
            if doc is None or not seen.reachable:
                continue
            for machine in _started(seen):
                try:
                    self.provider.annotate_machine(
                        doc.namespace, machine, {PHASE_ANNOTATION: "ready"}
                    )
                except GitopsError as err:
                    self._emit(
                        seen.name, "", machine, f"cannot mark {machine} ready: {err}", "warning"
                    )

    # -- progress ------------------------------------------------------------------------

    def _record_progress(self, plan: Plan, state: RolloutState, now: float) -> RolloutState:
        for wave in plan.waves:
            progress = state.wave(wave.name)
            if wave.status == "active" and progress.started_at is None:
                progress = replace(progress, started_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} started")
            if (
                wave.status in ("soaking", "complete")
                and progress.converged_at is None
                and progress.started_at is not None
            ):
                progress = replace(progress, converged_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} converged")
            if (
                wave.status == "complete"
                and progress.soaked_at is None
                and progress.started_at is not None
            ):
                progress = replace(progress, soaked_at=now)
                self._emit("", "", wave.name, f"wave {wave.name} soaked")
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
        return state

    def _emit(
        self, cluster: str, pool: str, subject: str, message: str, level: str = "info"
    ) -> None:
        event = Event(self.clock(), cluster, pool, subject, message, level)
        getattr(log, "error" if level == "error" else level)(
            "%s", message, extra={"cluster": cluster, "pool": pool, "node": subject}
        )
        if self.on_event is not None:
            self.on_event(event)


def _started(seen: ClusterInventory) -> list[str]:
    """Controller-made machines still in a start-up phase whose node is Ready."""
    out = []
    for machine in seen.machines:
        if not machine.created_by_controller or machine.fleet_phase not in STARTUP_PHASES:
            continue
        node = seen.node(machine.node) if machine.node else None
        if node is not None and node.ready and not machine.failed:
            out.append(machine.name)
    return out
