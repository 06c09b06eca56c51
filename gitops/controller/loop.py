"""The reconcile loop of ``gitops run``: fetch → load → observe → plan → act → report.

Shell layer. Every pass runs the six phases in order and each ends in a typed
:class:`~gitops.controller.phases.PhaseOutcome` (ok, waiting, transient, stalled), recorded in
the metrics (``gitops_reconcile_duration_seconds{phase}``, ``gitops_phase_result``), logged when
it changes, shown by ``/readyz`` and written to the status branch (``controller.yaml``):

- fetch: ``Mirror.sync`` (ls-remote; a fetch only when the branch moved; force-pushes followed).
- load: only for a revision not judged yet: verify its signature (``--verify-signatures``),
  check it out and load it. An invalid or untrusted revision is Stalled and never applied; the
  last good revision stays in force whatever goes wrong with a newer one.
- observe: read the watch caches (no request to the API servers); a cluster that cannot be
  observed is Transient here and Unknown in the plan, never guessed.
- plan, act: the executor's ``reconcile`` (``gitops.rollout``) observes, plans and acts in one
  call; the loop times that call as ``act`` and derives ``plan``'s outcome from the plan it
  returns (in progress: Waiting until the next timer; halted or refused: Stalled) and ``act``'s
  from the typed result of the pass (halted: Stalled; steps failed and retried: Transient;
  machines failed within ``maxFailedNodes``: Ok, the budget named).
- report: offer the status files to the coalescing writer, which commits only on change, to a
  branch of its own, so the loop never wakes itself (a plan that newly halts or refuses is
  committed at once); then publish the dashboard and run the bot's pass, so that nothing the
  bot does about a plan (a revert pull request) shows before the plan's own status.

After the phases, the pass publishes what it holds to the dashboard's board
(``gitops.dashboard``), which the HTTP threads serve; publishing reads, never acts.

The loop then sleeps until the soonest requeue any outcome asks for, a push (webhook or local
watch, through ``Trigger``) or the poll interval. It must never apply a revision that failed to
load or verify, and never stop because one phase failed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import yaml

from gitops.bot.service import Bot
from gitops.controller import phases
from gitops.controller.metrics import Metrics
from gitops.controller.phases import PHASES, PhaseOutcome
from gitops.controller.webhooks import Trigger
from gitops.dashboard import view
from gitops.dashboard.board import Board
from gitops.drift import KINDS
from gitops.errors import GitopsError, Stalled
from gitops.fleet import Fleet, FleetError, load
from gitops.fleet.openings import window_states
from gitops.gitrepo.mirror import Mirror
from gitops.gitrepo.status import CoalescingWriter
from gitops.gitrepo.verify import TrustStore
from gitops.inventory import Inventory
from gitops.kube.client import Kube
from gitops.kube.observe import Observer
from gitops.kube.shards import ShardManager
from gitops.plan import Plan, Wait, next_wakeup
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.report import status
from gitops.rollout.clock import FunctionClock
from gitops.rollout.executor import Executor
from gitops.rollout.result import PassResult
from gitops.rollout.sharded import ShardedStore
from gitops.rollout.store import StateStore

log = logging.getLogger(__name__)

CONTROLLER_FILE = "controller.yaml"  # the loop's own status, beside the report's files
MAX_BACKOFF = 300.0
SYNC_TIMEOUT = 30.0  # the longest the first observe of new clusters waits for their caches


@dataclass
class LoopState:
    """What the loop knows between passes (all of it can be rebuilt from git and the cluster)."""

    fleet: Fleet | None = None  # the last good revision, in force
    fetched: str = ""  # the newest revision seen on the remote
    judged: str = ""  # the newest revision the load phase applied or refused
    forced_over: str = ""  # the tip a force-push replaced (until the branch moves again)
    plan: Plan | None = None
    outcomes: dict[str, PhaseOutcome] = field(default_factory=dict)
    failures: int = 0  # consecutive passes with a transient outcome (for the backoff)
    reconciles: int = 0
    history: list[str] = field(default_factory=list)
    status_commit: str = ""  # the newest status commit written (the dashboard links to it)
    # (revision, plan status) of the last status commit of a stopped plan: a new stop of the
    # plan is committed at once, not coalesced (see ``Controller.report``)
    stopped_reported: tuple[str, str] | None = None

    @property
    def stalled(self) -> str:
        """Why the newest fetched revision is not the one in force ("" when it is)."""
        for name in ("load", "fetch"):
            outcome = self.outcomes.get(name)
            if outcome is not None and outcome.kind == "stalled":
                return outcome.message
        return ""

    @property
    def transient(self) -> str:
        """The passing failures of the last pass, one per phase ("" when none)."""
        return "; ".join(o.describe() for o in self.outcomes.values() if o.kind == "transient")


# Waits that only time ends: while they are all a plan holds, nothing observed can change it.
_TIME_WAITS = frozenset({"window", "freeze", "rate"})


def plan_requeue(plan: Plan, now: float, soon: float) -> float:
    """When to plan again: ``soon`` while anything may move (a step ready or in flight, a
    soak, a budget); when all the plan waits for is time (a window to open, a freeze or a
    rate period to end), at that moment: the controller wakes itself then, without polling
    (a push or the interval still wakes it earlier)."""
    wake = next_wakeup(plan)
    if wake is None:
        return soon
    until = max(0.05, wake - now)
    # What happens now: the first batches (projected ones are shown for review only).
    steps = [
        a
        for wave in plan.waves
        for c in wave.clusters
        for pool in c.pools
        for batch in pool.batches
        if not batch.projected
        for a in batch.actions
    ]
    if steps and all(isinstance(a, Wait) and a.on in _TIME_WAITS for a in steps):
        return until
    return min(soon, until)


class Controller:
    """Runs the phases for one fleet repository against one management cluster."""

    def __init__(
        self,
        mirror: Mirror,
        management: Kube,
        *,
        path: str = "",
        writer: CoalescingWriter | None = None,
        bot: Bot | None = None,
        trust: TrustStore | None = None,
        metrics: Metrics | None = None,
        state_namespace: str = "gitops-system",
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        board: Board | None = None,
        shards: ShardManager | None = None,
    ) -> None:
        self.mirror = mirror
        self.management = management
        self.path = path
        self.writer = writer
        self.bot = bot  # the pull-request bot (issue 7), called from the report phase
        self.trust = trust
        self.metrics = metrics or Metrics()
        self.time_scale = time_scale
        self.clock = clock
        # Sharded, the management cluster's Machines are listed for the owned clusters only.
        self.observer = Observer(management, selected=None if shards is None else ())
        self.provider = ClusterAPIProvider(management)
        self.store = StateStore(management, state_namespace, time_scale=time_scale)
        # Sharded (``--sharding``): this replica acts on the clusters ``shards`` says it owns;
        # the holder of the Lease gitops-controller is the coordinator besides (``coordinating``).
        self.shards = shards
        self.coordinating = shards is None
        self.sharded: ShardedStore | None = None
        if shards is not None:
            self.sharded = ShardedStore(
                management,
                state_namespace,
                identity=shards.identity,
                fence=shards.fence,
                owned=shards.owned,
                coordinator=lambda: self.coordinating,
                time_scale=time_scale,
            )
        self._owned: frozenset[str] = frozenset()  # what the observer tracks (sharded)
        self.executor: Executor | None = None
        self.state = LoopState()
        self.board = board or Board()  # the dashboard's page, published after every pass
        self.stopping = threading.Event()
        self._trigger: Trigger | None = None
        self._backoff = self._soon()
        self._tracked = False  # clusters were (re)tracked since the last observe
        self._running = threading.Lock()  # one loop at a time, whatever the leadership flaps

    # -- phases --------------------------------------------------------------------------

    def fetch(self) -> PhaseOutcome:
        """Bring the mirror to the branch's tip; say where the branch is."""
        started = time.monotonic()
        try:
            result = self.mirror.sync()
        finally:
            self.metrics.git_fetch_seconds.observe(time.monotonic() - started)
            self.metrics.git_polls.inc()
        if result.fetched:
            self.metrics.git_fetches.inc()
        if result.forced:
            # The mirror logs the rewrite with both revisions; the outcome keeps saying it.
            self.state.forced_over = result.previous or ""
        elif result.changed:
            self.state.forced_over = ""
        self.state.fetched = result.revision
        branch = self.mirror.remote.branch
        message = f"{branch} is at {result.revision[:12]}"
        if self.state.forced_over:
            message += f", force-pushed over {self.state.forced_over[:12]}"
        return PhaseOutcome("fetch", "ok", message)

    def load(self) -> PhaseOutcome | None:
        """Verify and load a revision not judged yet (None: nothing new, the last word stands)."""
        revision = self.state.fetched
        if not revision:
            return PhaseOutcome("load", "waiting", "no revision fetched yet")
        if revision == self.state.judged:
            return None
        try:
            fleet = self._load(revision)
        except Stalled:
            self.state.judged = revision  # judged for good: only a new revision can fix it
            raise
        self.state.judged = revision
        self.state.fleet = fleet
        self.state.history.append(revision)
        self.executor = Executor(
            fleet,
            self.observer,
            self.provider,
            self.sharded or self.store,
            time_scale=self.time_scale,
            clock=FunctionClock(self.clock),
            fence=self.shards.check if self.shards is not None else None,
        )
        self._track(fleet, force=True)
        log.info(
            "Fleet revision %s is in force: %s",
            revision[:12],
            fleet.summary(),
            extra={"phase": "load", "revision": revision},
        )
        return PhaseOutcome("load", "ok", f"revision {revision[:12]} is in force")

    def _load(self, revision: str) -> Fleet:
        if self.trust is not None:
            verdict = self.mirror.verify(revision, self.trust)
            if not verdict.trusted:
                raise Stalled(
                    f"revision {revision[:12]} is not signed by a trusted key: {verdict.reason}"
                )
        in_use = [self.state.fleet.revision] if self.state.fleet is not None else []
        snapshot = self.mirror.snapshot(revision, in_use=in_use)
        try:
            return load(snapshot.path / self.path).with_revision(revision)
        except FleetError as err:
            problems = "; ".join(str(p) for p in err.problems[:10])
            raise Stalled(f"revision {revision[:12]} is invalid: {problems}") from err

    def _track(self, fleet: Fleet, *, force: bool = False) -> None:
        """Watch the fleet's clusters; sharded, only those this replica owns now."""
        if self.shards is None:
            self.observer.track((c.name, c.namespace) for c in fleet.clusters)
            self._tracked = True
            return
        executor = self.executor
        self.shards.set_inputs(
            {c.name: max(1, sum(p.replicas for p in c.spec.node_pools)) for c in fleet.clusters},
            executor.idle if executor is not None else (lambda cluster: True),
        )
        owned = self.shards.owned()
        if owned != self._owned or force:
            for gone in sorted(self._owned - owned):
                if self.sharded is not None:
                    self.sharded.forget(gone)
            self._owned = owned
            self.observer.select(owned)
            self.observer.track((c.name, c.namespace) for c in fleet.clusters if c.name in owned)
            self._tracked = True

    def observe(self) -> PhaseOutcome:
        """Read the watch caches; say what could not be observed."""
        if self.state.fleet is None:
            return PhaseOutcome("observe", "waiting", "no fleet revision in force")
        if self.shards is not None:
            self._track(self.state.fleet)
            self._shard_metrics(self.state.fleet)
        if self._tracked:
            # Clusters were just added: give their caches a bounded while to list, rather than
            # plan the first pass with them Unknown.
            self._tracked = False
            self.observer.wait_synced(SYNC_TIMEOUT)
        inventory = self._inventory()
        ready = cordoned = not_ready = 0
        for cluster in inventory.clusters:
            for node in cluster.nodes:
                if node.unschedulable:
                    cordoned += 1
                elif node.ready:
                    ready += 1
                else:
                    not_ready += 1
        for state, count in (("ready", ready), ("cordoned", cordoned), ("notready", not_ready)):
            self.metrics.nodes.labels(state).set(count)
        unknown = [c for c in inventory.clusters if not c.reachable]
        if unknown:
            # Unknown in the plan too; retried with backoff (watches reconnect on their own).
            what = "; ".join(f"{c.name}: {c.error}" for c in unknown)
            return PhaseOutcome(
                "observe",
                "transient",
                f"{len(unknown)} of {len(inventory.clusters)} clusters not observed: {what}",
                requeue=self._backoff,
            )
        return PhaseOutcome(
            "observe", "ok", f"{len(inventory.clusters)} clusters, {inventory.nodes} nodes"
        )

    def _shard_metrics(self, fleet: Fleet) -> None:
        shards = self.shards
        assert shards is not None
        weights = {c.name: 1 for c in fleet.clusters}
        self.metrics.shard_owned.set(len(shards.owned()))
        self.metrics.shard_unowned.set(len(shards.unowned(weights)))
        self.metrics.shard_handoffs.set(shards.handoffs)
        refused = shards.fencing_refusals + (self.sharded.fenced if self.sharded else 0)
        self.metrics.shard_fencing_refusals.set(refused)

    def plan_and_act(self) -> tuple[PhaseOutcome | None, PhaseOutcome]:
        """The executor's reconcile: the plan's outcome (None when unknown) and the act's."""
        executor = self.executor
        if executor is None:
            waiting = "no fleet revision in force"
            return PhaseOutcome("plan", "waiting", waiting), PhaseOutcome("act", "waiting", waiting)
        result = executor.reconcile()
        plan = self.state.plan = result.plan
        self.metrics.plan_actions.set(sum(1 for _ in plan.actions()))
        for scope, name, is_open in window_states(executor.fleet, plan.now):
            self.metrics.window_open.labels(scope, name).set(is_open)
        for kind in KINDS:
            self.metrics.findings.labels(kind).set(sum(1 for f in plan.findings if f.kind == kind))
        return self._plan_outcome(plan), self._act_outcome(result)

    def _plan_outcome(self, plan: Plan) -> PhaseOutcome:
        if plan.status in ("halted", "refused"):
            return PhaseOutcome("plan", "stalled", plan.reason)
        if plan.status == "converged":
            return PhaseOutcome("plan", "ok", "converged")
        active = [f"wave {w.name} {w.status}" for w in plan.waves if w.status in _MOVING]
        requeue = plan_requeue(plan, self.clock(), self._soon())
        return PhaseOutcome(
            "plan",
            "waiting",
            "rollout in progress: " + (", ".join(active) or plan.reason or "steps pending"),
            requeue=requeue,
        )

    def _act_outcome(self, result: PassResult) -> PhaseOutcome:
        if result.halted:
            return PhaseOutcome("act", "stalled", result.halt)
        failed = result.failed_steps
        if failed:
            assert self.executor is not None
            return PhaseOutcome(
                "act",
                "transient",
                f"{len(failed)} step(s) failed and will be retried; first: {failed[0].message}",
                requeue=self.executor.retry_interval,
            )
        # Machines that failed within maxFailedNodes are replaced like any other: the budget
        # is named (from the durable record, so the message stays put pass after pass).
        message = _ACTING.get(result.plan.status, "carrying the plan out")
        return PhaseOutcome(
            "act", "ok", "; ".join([message, *(b.describe() for b in result.budgets)])
        )

    def report(self) -> PhaseOutcome:
        """Offer the status files to the coalescing writer (it commits only on change), then
        run the bot's pass.

        Status and dashboard come first: what the bot does about this plan (a revert pull
        request on a halt) must never be visible before the plan's own status is. A plan that
        newly stops (halted, refused) is committed at once rather than coalesced.
        """
        plan, fleet = self.state.plan, self.state.fleet
        try:
            return self._report_status(plan, fleet)
        finally:
            if self.bot is not None:
                self._publish()  # the board shows this plan before the bot acts on it
            self._report_to_forge(plan, fleet)

    def _report_status(self, plan: Plan | None, fleet: Fleet | None) -> PhaseOutcome:
        if self.sharded is not None and plan is not None and fleet is not None:
            self._publish_statuses(plan, fleet)
        if not self.coordinating:
            return PhaseOutcome("report", "ok", "the coordinator writes the status")
        if self.writer is None:
            return PhaseOutcome("report", "ok", "no status branch configured")
        if plan is None or fleet is None:
            return PhaseOutcome("report", "waiting", "nothing to report before a plan exists")
        reports = (
            self.sharded.reports(fleet.revision, exclude=self._owned)
            if self.sharded is not None
            else None
        )
        files = status.files(
            fleet, self._inventory(), plan, stalled=self.state.stalled, reports=reports
        )
        files[CONTROLLER_FILE] = self.controller_file()
        message = f"Status of {fleet.name} at {fleet.revision[:12]}: {plan.status}"
        result = self.writer.offer(files, message, fleet_revision=fleet.revision, plan_id=plan.id)
        stops = (fleet.revision, plan.status) if plan.status in _STOPPED else None
        if result is None and stops is not None and stops != self.state.stopped_reported:
            result = self.writer.flush()  # a halt is news that must not wait its turn
        if result is not None and result.committed:
            self.state.stopped_reported = stops
        if result is not None and result.committed and result.revision:
            self.state.status_commit = result.revision
        due = self.writer.due_in()
        if due is not None:
            return PhaseOutcome("report", "ok", "a status commit waits its turn", requeue=due)
        if result is not None and result.committed:
            return PhaseOutcome("report", "ok", f"committed status {result.revision or ''}")
        return PhaseOutcome("report", "ok", "the status branch is current")

    def _publish_statuses(self, plan: Plan, fleet: Fleet) -> None:
        """Sharded: the status of each owned cluster, into its record for the coordinator."""
        assert self.sharded is not None
        inventory = self._inventory()
        every = self.writer.interval if self.writer is not None else 0.0
        for name in sorted(self._owned):
            if fleet.cluster(name) is None:
                continue
            report = status.cluster_status(fleet, inventory, plan, name, self.state.stalled)
            self.sharded.publish_status(
                name, report, now=self.clock(), every=every, urgent=plan.status in _STOPPED
            )

    def _inventory(self) -> Inventory:
        return self.observer.inventory(self._owned if self.shards is not None else None)

    def _report_to_forge(self, plan: Plan | None, fleet: Fleet | None) -> None:
        """The bot's pass (drift, revert and deploy statuses, PR sweep); its errors only count."""
        if self.bot is None or plan is None or fleet is None or not self.coordinating:
            return
        result = self.bot.report(fleet, plan, self._inventory())
        for _ in result.errors:
            self.metrics.errors.labels("forge").inc()

    def controller_file(self) -> str:
        """``controller.yaml``: the revisions and the outcome of every phase but report.

        It holds no timings, so an idle controller renders the same bytes every pass.
        """
        fleet = self.state.fleet
        doc = {
            "fleetRevision": fleet.revision if fleet is not None else "",
            "fetchedRevision": self.state.fetched,
            "phases": [
                self.state.outcomes[name].as_status()
                for name in PHASES
                if name != "report" and name in self.state.outcomes
            ],
        }
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)

    # -- one pass ------------------------------------------------------------------------

    def reconcile_once(self) -> tuple[PhaseOutcome, ...]:
        """Run the six phases once; the outcome of each (carried over when it had no news)."""
        self._backoff = min(MAX_BACKOFF, self._soon() * 2**self.state.failures)
        fresh = [
            self._phase("fetch", self.fetch),
            self._phase("load", self.load),
            self._phase("observe", self.observe),
        ]
        started = time.monotonic()
        try:
            plan, act = self.plan_and_act()
        except Exception as err:  # see _phase
            plan, act = None, self._failure("act", err)
        act = replace(act, duration=time.monotonic() - started)
        fresh += [self._record(plan) if plan is not None else None, self._record(act)]
        fresh.append(self._phase("report", self.report))
        ran = [o for o in fresh if o is not None]
        self.state.failures = (
            self.state.failures + 1 if any(o.kind == "transient" for o in ran) else 0
        )
        self.state.reconciles += 1
        self._publish()
        return self.outcomes()

    def _publish(self) -> None:
        try:
            self.publish()
        except Exception:  # the page must never stop the loop
            log.exception("Publishing the dashboard failed; the page shows the previous pass.")

    def publish(self) -> view.FleetView:
        """Hand what this pass holds to the dashboard (names, numbers, reasons; no secret)."""
        forge, pulls = view.Forge(status_commit=self.state.status_commit), {}
        if self.bot is not None:
            forge = view.Forge(self.bot.forge.kind, self.bot.repository, self.state.status_commit)
            pulls = {
                head: view.Link(f"#{pr.number} {pr.title}", pr.url)
                for head, pr in self.bot.pulls.items()
            }
        return self.board.publish(
            view.Inputs(
                now=self.clock(),
                fleet=self.state.fleet,
                plan=self.state.plan,
                phases=tuple(view.Phase(o.name, o.kind, o.message) for o in self.outcomes()),
                fetched=self.state.fetched,
                stalled=self.state.stalled,
                forge=forge,
                pulls=pulls,
            )
        )

    def _phase(self, name: str, step: Callable[[], PhaseOutcome | None]) -> PhaseOutcome | None:
        started = time.monotonic()
        try:
            outcome = step()
        except Exception as err:  # a failing phase must not end the loop
            outcome = self._failure(name, err)
        if outcome is None:
            return None  # nothing new: the last outcome stands
        return self._record(replace(outcome, duration=time.monotonic() - started))

    def _failure(self, name: str, err: Exception) -> PhaseOutcome:
        if isinstance(err, GitopsError):
            return phases.from_error(name, err, None, self._backoff)
        # A bug, not a condition of the world: keep the traceback, keep the loop alive.
        log.exception("The %s phase failed unexpectedly.", name, extra={"phase": name})
        return PhaseOutcome(name, "transient", f"unexpected error: {err!r}", None, self._backoff)

    def _record(self, outcome: PhaseOutcome) -> PhaseOutcome:
        previous = self.state.outcomes.get(outcome.name)
        self.state.outcomes[outcome.name] = outcome
        if outcome.duration is not None:
            self.metrics.reconcile_seconds.labels(outcome.name).observe(outcome.duration)
        for kind in phases.TITLES:
            self.metrics.phase_result.labels(outcome.name, kind).set(kind == outcome.kind)
        if outcome.kind in ("transient", "stalled"):
            self.metrics.errors.labels(outcome.name).inc()
        if not outcome.same(previous):
            self._log_change(outcome, previous)
        return outcome

    def _log_change(self, outcome: PhaseOutcome, previous: PhaseOutcome | None) -> None:
        extra = {"phase": outcome.name, "revision": self.state.fetched}
        if outcome.ok:
            recovered = previous is not None and not previous.ok
            log.log(
                logging.INFO if recovered else logging.DEBUG,
                "The %s phase is ok%s: %s.",
                outcome.name,
                " again" if recovered else "",
                outcome.message,
                extra=extra,
            )
        elif outcome.kind == "waiting":
            log.info("The %s phase is waiting: %s.", outcome.name, outcome.message, extra=extra)
        else:
            log.log(
                logging.ERROR if outcome.kind == "stalled" else logging.WARNING,
                "The %s phase is %s: %s; %s stays in force.",
                outcome.name,
                phases.TITLES[outcome.kind],
                outcome.message,
                self._in_force(),
                extra=extra,
            )

    def outcomes(self) -> tuple[PhaseOutcome, ...]:
        """The latest outcome of each phase, in phase order."""
        return tuple(self.state.outcomes[n] for n in PHASES if n in self.state.outcomes)

    # -- the loop ------------------------------------------------------------------------

    def run(
        self,
        *,
        interval: float,
        trigger: Trigger | None = None,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        """Reconcile until ``stopping``; wake on a push, the soonest requeue or the interval.

        A second ``run`` (leadership lost and won back before the first loop noticed) waits for
        the first to return, so two loops never act at once.
        """
        with self._running:
            self._run(interval, trigger, jitter, rng or random.Random())

    def _run(
        self, interval: float, trigger: Trigger | None, jitter: float, rng: random.Random
    ) -> None:
        self._trigger = trigger
        while not self.stopping.is_set():
            outcomes = self.reconcile_once()
            wait = interval * (1 + rng.uniform(-jitter, jitter))
            requeue = phases.soonest(outcomes)
            if requeue is not None:
                wait = min(wait, max(0.05, requeue))
            if self.stopping.is_set():
                break
            if trigger is not None:
                trigger.wait(wait)
            else:
                self.stopping.wait(wait)

    def resume(self) -> None:
        """Act again (leadership won): undo :meth:`pause` before starting or keeping a loop."""
        self.stopping.clear()
        if self.executor is not None:
            self.executor.stopping.clear()

    def pause(self) -> None:
        """Stop acting (leadership lost, or shutting down): steps under way finish, no new one
        starts, and the loop returns from its wait at once."""
        self.stopping.set()
        if self.executor is not None:
            self.executor.stopping.set()
        if self._trigger is not None:
            self._trigger.poke()

    def _soon(self) -> float:
        return max(0.05, min(1.0, 2 * self.time_scale))

    def _in_force(self) -> str:
        fleet = self.state.fleet
        return f"revision {fleet.revision[:12]}" if fleet is not None else "no revision"

    def ready(self) -> tuple[bool, str]:
        """Ready once a revision is in force and the Machines are listed; and what is wrong."""
        issues = phases.problems(self.outcomes())
        if self.state.fleet is None:
            return False, "; ".join(issues) or "no fleet revision loaded yet"
        if not self.observer.machines.synced:
            return False, "Machines in the management cluster are not listed yet"
        return True, "; ".join([f"{self._in_force()} is in force", *issues])

    def stop(self) -> None:
        self.pause()
        if self.writer is not None:
            try:
                self.writer.flush()
            except GitopsError as err:
                log.warning("Final status write failed: %s", err)
        self.observer.stop()
        if self.sharded is not None:
            self.sharded.stop()


_MOVING = ("active", "soaking")
_STOPPED = ("halted", "refused")
_ACTING = {
    "converged": "nothing to do",
    "refused": "nothing starts: the plan refused to act",
}
