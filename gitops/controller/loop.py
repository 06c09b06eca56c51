"""The reconcile loop of ``gitops run``: fetch → load → observe → plan → act → report.

Shell layer. Each phase returns a result or raises a typed error; the loop keeps the last good
fleet revision running whatever goes wrong with a newer one (unreachable remote: Transient,
retried; an invalid or untrusted revision: Stalled, reported, never applied). Observation,
planning and acting are the executor's (``gitops.rollout``); status goes to the status branch
through a coalescing writer, only when it changed, so the loop never wakes itself.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitops.controller.metrics import Metrics
from gitops.controller.webhooks import Trigger
from gitops.errors import GitopsError, Stalled
from gitops.fleet import Fleet, FleetError, load
from gitops.gitrepo.mirror import Mirror
from gitops.gitrepo.status import CoalescingWriter
from gitops.gitrepo.verify import TrustStore
from gitops.kube.client import Kube
from gitops.kube.observe import Observer
from gitops.plan import Plan, next_wakeup
from gitops.providers.clusterapi import ClusterAPIProvider
from gitops.report import status
from gitops.rollout.executor import Executor
from gitops.rollout.store import StateStore

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """What the loop knows between passes (all of it can be rebuilt from git and the cluster)."""

    fleet: Fleet | None = None  # the last good revision, in force
    fetched: str = ""  # the newest revision seen on the remote
    stalled: str = ""  # why ``fetched`` is not the one in force ("" when it is)
    transient: str = ""  # the last passing failure
    plan: Plan | None = None
    reconciles: int = 0
    history: list[str] = field(default_factory=list)


class Controller:
    """Runs the phases for one fleet repository against one management cluster."""

    def __init__(
        self,
        mirror: Mirror,
        management: Kube,
        *,
        path: str = "",
        writer: CoalescingWriter | None = None,
        trust: TrustStore | None = None,
        metrics: Metrics | None = None,
        state_namespace: str = "gitops-system",
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mirror = mirror
        self.management = management
        self.path = path
        self.writer = writer
        self.trust = trust
        self.metrics = metrics or Metrics()
        self.time_scale = time_scale
        self.clock = clock
        self.observer = Observer(management)
        self.provider = ClusterAPIProvider(management)
        self.store = StateStore(management, state_namespace)
        self.executor: Executor | None = None
        self.state = LoopState()
        self.stopping = threading.Event()

    # -- phases --------------------------------------------------------------------------

    def fetch_and_load(self) -> None:
        """Fetch; when the branch moved, verify and load the new revision (or keep the old)."""
        started = time.monotonic()
        try:
            result = self.mirror.sync()
        except GitopsError as err:
            self.metrics.errors.labels("fetch").inc()
            self.state.transient = f"fetch failed: {err}"
            log.warning(
                "Fetching the fleet repository failed; %s stays in force: %s", self._in_force(), err
            )
            return
        finally:
            self.metrics.git_fetch_seconds.observe(time.monotonic() - started)
        self.state.transient = ""
        if result.forced:
            log.warning(
                "The fleet branch was force-pushed: %s -> %s.", result.previous, result.revision
            )
        if not result.changed and self.state.fleet is not None:
            return
        revision = result.revision
        self.state.fetched = revision
        try:
            fleet = self._load(revision)
        except Stalled as err:
            self.state.stalled = str(err)
            self.metrics.errors.labels("stalled").inc()
            log.error(
                "Revision %s is not applied; %s stays in force: %s",
                revision[:12],
                self._in_force(),
                err,
            )
            return
        self.state.stalled = ""
        self.state.fleet = fleet
        self.state.history.append(revision)
        self.observer.track((c.name, c.namespace) for c in fleet.clusters)
        self.executor = Executor(
            fleet,
            self.observer,
            self.provider,
            self.store,
            time_scale=self.time_scale,
            clock=self.clock,
        )
        log.info("Fleet revision %s is in force: %s", revision[:12], fleet.summary())

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

    def act(self) -> Plan | None:
        """Observe, plan and carry out what is ready (the executor's reconcile)."""
        if self.executor is None:
            return None
        started = time.monotonic()
        try:
            plan = self.executor.reconcile()
        except GitopsError as err:
            self.metrics.errors.labels("reconcile").inc()
            self.state.transient = f"reconcile failed: {err}"
            log.warning("Reconcile failed, retrying: %s", err)
            return None
        finally:
            self.metrics.reconcile_seconds.labels("act").observe(time.monotonic() - started)
        self.state.plan = plan
        self.metrics.plan_actions.set(sum(1 for _ in plan.actions()))
        for kind in (
            "ImageMismatch",
            "ConfigMismatch",
            "UnmanagedNode",
            "CapacityMismatch",
            "Outdated",
            "StuckCordoned",
            "Unknown",
        ):
            self.metrics.findings.labels(kind).set(sum(1 for f in plan.findings if f.kind == kind))
        return plan

    def report(self) -> None:
        """Offer the status files to the coalescing writer (it commits only on change)."""
        plan, fleet = self.state.plan, self.state.fleet
        if self.writer is None or plan is None or fleet is None:
            return
        files = status.files(fleet, self.observer.inventory(), plan, stalled=self.state.stalled)
        message = f"Status of {fleet.name} at {fleet.revision[:12]}: {plan.status}"
        try:
            self.writer.offer(files, message, fleet_revision=fleet.revision, plan_id=plan.id)
        except GitopsError as err:
            self.metrics.errors.labels("report").inc()
            log.warning("Writing status to git failed, will retry: %s", err)

    # -- the loop ------------------------------------------------------------------------

    def reconcile_once(self) -> None:
        self.fetch_and_load()
        self.act()
        self.report()
        self.state.reconciles += 1

    def run(
        self,
        *,
        interval: float,
        trigger: Trigger | None = None,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        """Reconcile until ``stopping``; wake on a push, a due timer or the poll interval."""
        rng = rng or random.Random()
        while not self.stopping.is_set():
            self.reconcile_once()
            wait = interval * (1 + rng.uniform(-jitter, jitter))
            plan = self.state.plan
            if plan is not None and plan.status == "in-progress":
                wake = next_wakeup(plan)
                soon = max(0.05, min(1.0, 2 * self.time_scale))
                wait = min(wait, soon if wake is None else max(0.05, wake - self.clock()))
            if self.writer is not None and self.writer.due_in() is not None:
                wait = min(wait, max(0.05, self.writer.due_in() or 0.0))
            if trigger is not None:
                trigger.wait(wait)
            else:
                self.stopping.wait(wait)

    def _in_force(self) -> str:
        fleet = self.state.fleet
        return f"revision {fleet.revision[:12]}" if fleet is not None else "no revision"

    def ready(self) -> tuple[bool, str]:
        if self.state.fleet is None:
            return (
                False,
                self.state.stalled or self.state.transient or "no fleet revision loaded yet",
            )
        return True, ""

    def stop(self) -> None:
        self.stopping.set()
        if self.writer is not None:
            try:
                self.writer.flush()
            except GitopsError as err:
                log.warning("Final status write failed: %s", err)
        self.observer.stop()
