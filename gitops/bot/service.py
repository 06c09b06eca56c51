"""The controller's pull-request bot: drift PRs, revert PRs, deploy statuses, the PR sweep.

Shell layer, report phase. ``gitops.controller.loop`` calls :meth:`Bot.report` once per
reconcile with what the pass saw (the fleet in force, the plan, the inventory); the bot then

1. counts each cluster's drift findings (``driftpr.Persistence``) and keeps one drift pull
   request per cluster in step with the persistent, unacknowledged ones;
2. opens one revert pull request when the rollout halted on its failure budget;
3. sets ``gitops/deploy/<cluster>`` on the revision in force whenever a cluster's state changes;
4. every ``sweep_interval`` seconds, plans each open pull request's head against the observed
   state and publishes the plan (``gitops.bot.prplan``).

Each step is independent: a forge or git error in one is logged, returned in
:class:`BotResult` (the loop counts it as ``errors{kind="forge"}``) and retried on a later pass;
it never stops the others or the reconcile loop. The bot remembers in memory only what saves
requests (what it last wrote, the persistence counters, the last converged revision); all of
it is rebuilt from the forge and git after a restart, except the counters, which start over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitops.bot import deploy, driftpr, links, revert
from gitops.bot.plans import invalid_id
from gitops.bot.prplan import PlanPublisher, cluster_names, pull_refs
from gitops.errors import GitopsError
from gitops.fleet import Fleet, FleetError, load
from gitops.forge.base import CommitStatus, Forge, PullRequest
from gitops.forge.errors import AlreadyExists
from gitops.gitrepo.branches import Branches, BranchMoved
from gitops.gitrepo.status import DEFAULT_IDENTITY, Identity, is_own_commit
from gitops.inventory import Inventory
from gitops.plan import Plan, RolloutState, make

log = logging.getLogger("gitops.bot")

DEFAULT_SWEEP_INTERVAL = 300.0


@dataclass(frozen=True)
class BotResult:
    """What one call did: the errors met (one line each; the loop counts them)."""

    errors: tuple[str, ...] = ()


@dataclass
class _Memory:
    drift: dict[str, str] = field(default_factory=dict)  # cluster -> report fingerprint handled
    acknowledged: dict[str, frozenset[str]] = field(default_factory=dict)
    acknowledged_at: str = ""  # the fleet revision the acknowledgements were read at
    reverted: set[str] = field(default_factory=set)  # revisions whose revert is settled
    failures: dict[str, dict[tuple[str, str], revert.Failure]] = field(default_factory=dict)
    deploy: dict[str, dict[str, CommitStatus]] = field(default_factory=dict)  # sha -> context
    last_good: Fleet | None = None  # the newest revision seen converged
    swept: dict[int, tuple[str, str]] = field(default_factory=dict)  # PR -> (head, plan id)
    last_sweep: float | None = None
    pulls: dict[str, PullRequest] = field(default_factory=dict)  # head branch -> open PR
    repository: str = ""  # the repository's web page, from the first pull request seen


class Bot:
    """The bot of one fleet repository on one forge."""

    def __init__(
        self,
        forge: Forge,
        branches: Branches,
        *,
        branch: str = "main",
        path: str = "",
        status_branch: str = "gitops/status",
        persistence: int = driftpr.DEFAULT_PERSISTENCE,
        sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
        identity: Identity = DEFAULT_IDENTITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.forge = forge
        self.branches = branches
        self.branch = branch
        self.path = path.strip("/")
        self.identity = identity
        self.sweep_interval = sweep_interval
        self.clock = clock
        self.persistence = driftpr.Persistence(persistence)
        self.publisher = PlanPublisher(forge, branches=branches, status_branch=status_branch)
        self.memory = _Memory()

    # -- the hook --------------------------------------------------------------------------

    def report(self, fleet: Fleet, plan: Plan, inventory: Inventory) -> BotResult:
        """One pass of every duty; never raises for a forge, git or bot failure."""
        errors: list[str] = []
        duties: tuple[tuple[str, Callable[[], None]], ...] = (
            ("drift", lambda: self.drift(fleet, plan, inventory)),
            ("revert", lambda: self.revert(fleet, plan, inventory)),
            ("deploy", lambda: self.deploy(fleet, plan)),
            ("sweep", lambda: self.sweep_if_due(fleet, inventory)),
        )
        for name, duty in duties:
            try:
                duty()
            except GitopsError as err:
                errors.append(f"{name}: {err}")
                log.warning(
                    "The bot's %s step failed; it is retried on a later pass: %s", name, err
                )
            except Exception as err:  # a bug in the bot must not stop the controller
                errors.append(f"{name}: {err!r}")
                log.exception("The bot's %s step failed unexpectedly: %r", name, err)
        return BotResult(tuple(errors))

    # -- what the dashboard links to -------------------------------------------------------

    @property
    def pulls(self) -> dict[str, PullRequest]:
        """The bot's open pull requests as last seen (drift and revert), by head branch."""
        return dict(self.memory.pulls)

    @property
    def repository(self) -> str:
        """The repository's web page, learnt from a pull request's ("" before any is seen)."""
        return self.memory.repository

    def _learn(self, pr: PullRequest) -> None:
        if not self.memory.repository:
            self.memory.repository = links.repository_url(self.forge.kind, pr.url)

    def _remember(self, head: str, pr: PullRequest | None) -> None:
        if pr is not None:
            self._learn(pr)
        if pr is not None and pr.state == "open":
            self.memory.pulls[head] = pr
        else:
            self.memory.pulls.pop(head, None)

    # -- drift pull requests ---------------------------------------------------------------

    def _file(self, rel: str) -> str:
        return f"{self.path}/{rel}" if self.path else rel

    def _acknowledged(self, fleet: Fleet) -> dict[str, frozenset[str]]:
        """Fingerprints in ``drift/<cluster>.yaml`` on the watched branch (read once a revision)."""
        if self.memory.acknowledged_at != fleet.revision:
            self.branches.fetch_commit(fleet.revision)
            found: dict[str, frozenset[str]] = {}
            for doc in fleet.clusters:
                data = self.branches.read(fleet.revision, self._file(driftpr.path(doc.name)))
                found[doc.name] = driftpr.acknowledged(data)
            self.memory.acknowledged = found
            self.memory.acknowledged_at = fleet.revision
        return self.memory.acknowledged

    def drift(self, fleet: Fleet, plan: Plan, inventory: Inventory) -> None:
        """Count this observation; bring each cluster's drift pull request in step."""
        reports = []
        for doc in fleet.clusters:
            seen = inventory.cluster(doc.name)
            if seen is None or not seen.reachable:
                continue  # an Unknown cluster neither confirms nor clears its drift
            persisted = self.persistence.observe(
                doc.name, driftpr.unresolved(plan.findings, doc.name)
            )
            reports.append((doc.name, persisted))
        if not reports:
            return
        acknowledged = self._acknowledged(fleet) if any(p for _, p in reports) else {}
        for cluster, persisted in reports:
            report = driftpr.Report(cluster, persisted, acknowledged.get(cluster, frozenset()))
            wanted = report.fingerprint if report.wanted else "none"
            if self.memory.drift.get(cluster) == wanted:
                continue
            self._sync_drift(fleet, plan, report)
            self.memory.drift[cluster] = wanted

    def _sync_drift(self, fleet: Fleet, plan: Plan, report: driftpr.Report) -> None:
        head = driftpr.branch(report.cluster)
        pr = self.forge.find_pull_request(head)
        open_fp = driftpr.body_fingerprint(pr.body) if pr is not None else None
        tip: str | None = None
        ours: bool | None = None
        if report.wanted and open_fp != report.fingerprint:
            tip = self.branches.fetch(head)
            if tip is not None:
                ours = is_own_commit(self.branches.commit_info(tip), self.identity)
        step = driftpr.decide(report, open_fp, ours)
        limit = self.forge.max_body_chars
        title = f"Drift in cluster {report.cluster}: {len(report.new)} new finding(s)"
        self._remember(head, pr)
        if step == "nothing":
            return
        if step == "close":
            assert pr is not None
            self.forge.create_comment(
                pr.number, driftpr.closing_comment(report.cluster, bool(report.findings))
            )
            self.forge.close_pull_request(pr.number)
            self._remember(head, None)
            log.info("Closed drift pull request #%d of cluster %s.", pr.number, report.cluster)
            tip = self.branches.fetch(head)
            if tip is not None and is_own_commit(self.branches.commit_info(tip), self.identity):
                self.branches.delete(head, expect=tip)
            return
        if step == "human":
            assert tip is not None
            info = self.branches.commit_info(tip)
            if pr is None:
                log.warning(
                    "The drift branch %s ends in %s by %s, not the bot; no pull request is open "
                    "from it, so the drift of cluster %s is not reported there.",
                    head,
                    tip[:12],
                    info.author_email,
                    report.cluster,
                )
                return
            comments = [c.body for c in self.forge.comments(pr.number)]
            if not driftpr.commented_on(comments, tip):
                author = f"{info.author_name} <{info.author_email}>"
                self.forge.create_comment(
                    pr.number, driftpr.human_comment(report, tip, author, changed=True)
                )
                log.info(
                    "Drift pull request #%d of cluster %s has a human commit %s; commented "
                    "instead of pushing.",
                    pr.number,
                    report.cluster,
                    tip[:12],
                )
            return
        base = self.branches.fetch(self.branch)
        if base is None:
            raise GitopsError(f"the branch {self.branch} does not exist on the remote")
        commit = self.branches.commit(
            base,
            {self._file(driftpr.path(report.cluster)): driftpr.render_file(report)},
            f"Drift in cluster {report.cluster}: {len(report.findings)} finding(s)",
            fleet_revision=fleet.revision,
            plan_id=plan.id,
        )
        try:
            self.branches.push(head, commit, expect=tip)
        except BranchMoved:
            self.memory.drift.pop(report.cluster, None)
            raise
        body = driftpr.render_body(report, plan, limit)
        if step == "open":
            try:
                opened = self.forge.open_pull_request(
                    head_ref=head, base_ref=self.branch, title=title, body=body
                )
            except AlreadyExists:
                found = self.forge.find_pull_request(head)
                if found is None:
                    raise
                opened = self.forge.update_pull_request(found.number, title=title, body=body)
            self._remember(head, opened)
            log.info("Opened drift pull request #%d for cluster %s.", opened.number, report.cluster)
        else:
            assert pr is not None
            self._remember(head, self.forge.update_pull_request(pr.number, title=title, body=body))
            log.info("Updated drift pull request #%d of cluster %s.", pr.number, report.cluster)

    # -- revert pull requests --------------------------------------------------------------

    def revert(self, fleet: Fleet, plan: Plan, inventory: Inventory) -> None:
        """Remember failures and the last good revision; open the revert PR on a budget halt."""
        if plan.status == "converged":
            self.memory.last_good = fleet
        seen = self.memory.failures.setdefault(fleet.revision, {})
        for failure in revert.failures(plan, inventory):
            seen[(failure.cluster, failure.machine)] = failure
        if not revert.is_budget_halt(plan) or fleet.revision in self.memory.reverted:
            return
        head = revert.branch(fleet.revision)
        earlier = [p for p in self.forge.pull_requests(state="all") if p.head_ref == head]
        if earlier:
            self._remember(head, next((p for p in earlier if p.state == "open"), None))
            self.memory.reverted.add(fleet.revision)  # opened before (and maybe closed): once
            return
        previous = self.memory.last_good
        if previous is not None and previous.revision == fleet.revision:
            previous = None
        chosen, notes = revert.pins(fleet, previous, inventory)
        self.branches.fetch_commit(fleet.revision)
        files: dict[str, str] = {}
        for cluster in sorted({p.cluster for p in chosen}):
            source = fleet.sources.get(cluster, "")
            data = self.branches.read(fleet.revision, self._file(source)) if source else None
            if data is None:
                raise GitopsError(
                    f"cannot read {self._file(source)} of cluster {cluster} at {fleet.revision}"
                )
            files[source] = data.decode()
        edited, edit_notes = revert.edit_files(files, fleet.sources, chosen)
        made = tuple(
            p
            for p in chosen
            if fleet.sources.get(p.cluster) in edited
            and not any(n.startswith(f"{p.cluster}/{p.pool}:") for n in edit_notes)
        )
        if not made:
            log.warning(
                "The rollout of %s halted on its failure budget, but no pool can be pinned back "
                "(%s); no revert pull request.",
                fleet.revision[:12],
                "; ".join((*notes, *edit_notes)) or "no pool changed image",
            )
            self.memory.reverted.add(fleet.revision)
            return
        commit = self.branches.commit(
            fleet.revision,
            {self._file(p): text for p, text in edited.items()},
            revert.summary(made),
            fleet_revision=fleet.revision,
            plan_id=plan.id,
        )
        existing = self.branches.tips(f"refs/heads/{head}").get(f"refs/heads/{head}")
        if existing is not None:
            self.branches.fetch(head)
            if not is_own_commit(self.branches.commit_info(existing), self.identity):
                log.warning("The revert branch %s exists with a human commit; leaving it.", head)
                self.memory.reverted.add(fleet.revision)
                return
        self.branches.push(head, commit, expect=existing)
        body = revert.render_body(
            fleet.revision,
            plan.reason,
            made,
            sorted(seen.values()),
            (*notes, *edit_notes),
            self.forge.max_body_chars,
        )
        try:
            opened = self.forge.open_pull_request(
                head_ref=head,
                base_ref=self.branch,
                title=f"Revert {fleet.revision[:12]}: {revert.summary(made)}",
                body=body,
            )
            self._remember(head, opened)
            log.warning(
                "The rollout of %s halted on its failure budget; opened revert pull request #%d.",
                fleet.revision[:12],
                opened.number,
            )
        except AlreadyExists:
            self._remember(head, self.forge.find_pull_request(head))
        self.memory.reverted.add(fleet.revision)

    # -- deployment statuses ---------------------------------------------------------------

    def deploy(self, fleet: Fleet, plan: Plan) -> None:
        """Set ``gitops/deploy/<cluster>`` on the revision in force where it changed."""
        revision = fleet.revision
        if not revision:
            return
        sent = self.memory.deploy.get(revision)
        if sent is None:
            sent = {s.context: s for s in self.forge.commit_statuses(revision)}
            self.memory.deploy = {revision: sent}  # older revisions are done with
        for status in deploy.changed(deploy.statuses(plan, revision), sent):
            self.forge.set_commit_status(status)
            sent[status.context] = status
            log.info(
                "Deployment status %s of %s: %s (%s).",
                status.context,
                revision[:12],
                status.state,
                status.description,
            )

    # -- the pull-request sweep ------------------------------------------------------------

    def sweep_if_due(self, fleet: Fleet, inventory: Inventory) -> None:
        if self.sweep_interval is None:
            return
        now = self.clock()
        last = self.memory.last_sweep
        if last is not None and now - last < self.sweep_interval:
            return
        self.memory.last_sweep = now
        self.sweep(fleet, inventory, now)

    def sweep(self, fleet: Fleet, inventory: Inventory, now: float) -> None:
        """Plan every open pull request to the watched branch at its head; publish the plan."""
        errors: list[str] = []
        open_numbers = set()
        for pr in self.forge.pull_requests(state="open"):
            self._learn(pr)
            if pr.base_ref != self.branch or pr.head_ref.startswith("gitops/drift/"):
                continue  # drift reports change no fleet file: their plan is the main branch's
            open_numbers.add(pr.number)
            try:
                self._plan_one(pr, fleet, inventory, now)
            except GitopsError as err:
                errors.append(f"#{pr.number}: {err}")
                log.warning("Planning pull request #%d failed: %s", pr.number, err)
        self.memory.swept = {n: v for n, v in self.memory.swept.items() if n in open_numbers}
        if errors:
            raise GitopsError("; ".join(errors))

    def _plan_one(self, pr: PullRequest, fleet: Fleet, inventory: Inventory, now: float) -> None:
        if self.branches.fetch_any(pull_refs(self.forge.kind, pr), pr.head_sha) is None:
            try:  # a fork's head under no ref we know: ask for the commit itself
                self.branches.fetch_commit(pr.head_sha)
            except GitopsError as err:
                log.info(
                    "The head %s of pull request #%d cannot be fetched yet (%s); planning it "
                    "on a later sweep.",
                    pr.head_sha[:12],
                    pr.number,
                    err,
                )
                return
        root = self.branches.snapshot(pr.head_sha)
        if self.path:
            root = root / self.path
        outcome: Plan | FleetError
        clusters: tuple[str, ...] = ()
        try:
            head = load(root).with_revision(pr.head_sha)
            outcome = make(head, inventory, RolloutState(revision=pr.head_sha), now)
            plan_id = outcome.id
        except FleetError as err:
            outcome = err
            plan_id = invalid_id(err.problems)
            clusters = tuple(sorted({*cluster_names(root), *(c.name for c in fleet.clusters)}))
        if self.memory.swept.get(pr.number) == (pr.head_sha, plan_id):
            return  # published already by this process: not even a request
        self.publisher.publish(pr, outcome, clusters=clusters)
        self.memory.swept[pr.number] = (pr.head_sha, plan_id)
