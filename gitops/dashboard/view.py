"""The dashboard's view model: what the page shows, computed from what the controller holds.

Pure (DESIGN section 9.6): ``build(inputs)`` turns the fleet in force, the last plan and the
loop's outcomes into frozen values, and ``to_dict`` turns those into the JSON document served at
``/api/v1/fleet`` (``gitops.dashboard/v1``, keys in a fixed order). Nothing here does I/O or
reads a clock (``now`` comes in with the inputs), and nothing here takes a secret: the inputs
hold names, images, counts, reasons and web addresses only, so the page cannot show a token or
a kubeconfig whatever it renders. Every string is data to the page, never markup: escaping is
the renderer's job (``textContent`` in the browser, ``svg`` for the timeline).

A pool's *state* is one of ``STATES``; each has a text label, so the page never relies on
colour alone:

=============  ==============================================================================
converged      every node runs the declared image, nothing to do
rolling        replacements are being made or awaited in this pool
waiting        the pool has work but waits: for a soak, for its wave's gate or for a free slot
halted         the rollout stopped (failure budget spent, or the plan refused to act)
paused         ``spec.paused`` in git: nothing new starts here
unreachable    the cluster could not be observed; its numbers are unknown, never guessed
=============  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gitops.bot import links
from gitops.drift import Finding
from gitops.fleet import Fleet
from gitops.fleet.quantities import format_duration
from gitops.plan import ClusterPlan, Plan, PoolPlan, Wait, WavePlan

SCHEMA_VERSION = "gitops.dashboard/v1"

PoolState = Literal["converged", "rolling", "waiting", "halted", "paused", "unreachable"]
STATES: tuple[PoolState, ...] = (
    "converged",
    "rolling",
    "waiting",
    "halted",
    "paused",
    "unreachable",
)
# Which state a cluster shows when its pools differ: the one a person must see first.
_PRECEDENCE: tuple[PoolState, ...] = (
    "halted",
    "unreachable",
    "paused",
    "rolling",
    "waiting",
    "converged",
)
_WAIT_WORDS = {
    "node-ready": "a new node to become Ready",
    "soak": "a soak",
    "availability": "the availability budget (maxUnavailable)",
    "surge": "the surge budget (maxSurge)",
    "deletion": "a machine to be deleted",
    "human": "a human (a node is quarantined)",
    "window": "a maintenance window to open",
    "freeze": "a freeze to end",
    "rate": "the rate budget (maxReplacements per period)",
    "gpu-driver-upgrade": "the GPU Operator to finish a driver upgrade",
}


@dataclass(frozen=True)
class Link:
    """Text to show and where it points ("" when the forge is not known)."""

    text: str
    url: str = ""


@dataclass(frozen=True)
class Phase:
    """One phase of the controller's last pass, as ``/readyz`` says it."""

    name: str
    kind: str  # ok, waiting, transient, stalled
    message: str


@dataclass(frozen=True)
class Forge:
    """What is known of the fleet repository's forge, for links (all "" when unknown)."""

    kind: str = ""  # github, gitlab, gitea
    repository: str = ""  # the repository's web page
    status_commit: str = ""  # the newest status commit the controller wrote


@dataclass(frozen=True)
class Inputs:
    """What the controller loop holds after a pass; everything the page may show."""

    now: float
    fleet: Fleet | None = None
    plan: Plan | None = None
    phases: tuple[Phase, ...] = ()
    fetched: str = ""  # the newest revision seen on the remote
    stalled: str = ""  # why the newest revision is not in force ("" when it is)
    forge: Forge = field(default_factory=Forge)
    pulls: Mapping[str, Link] = field(default_factory=dict)  # head branch -> open pull request


@dataclass(frozen=True)
class PoolView:
    name: str
    image: str
    on_target: int | None  # None: the cluster could not be observed
    replicas: int
    state: PoolState
    label: str
    detail: str


@dataclass(frozen=True)
class FindingView:
    kind: str
    pool: str
    node: str
    fact: str
    expected: str
    observed: str
    message: str
    fingerprint: str


@dataclass(frozen=True)
class ClusterView:
    name: str
    wave: str
    labels: tuple[tuple[str, str], ...]
    state: PoolState
    label: str
    detail: str
    pools: tuple[PoolView, ...]
    findings: tuple[FindingView, ...]
    drift_pull: Link | None


@dataclass(frozen=True)
class WaveView:
    index: int
    name: str
    status: str  # the plan's wave status
    label: str
    clusters: tuple[str, ...]
    on_target: int
    replicas: int
    active: bool  # the first wave not complete: the one the rollout is at
    waiting_for: tuple[str, ...]  # why the active wave waits (soak, gate, budget)


@dataclass(frozen=True)
class Halt:
    status: str  # halted or refused
    reason: str
    revert_pull: Link | None


@dataclass(frozen=True)
class FleetView:
    """The whole page."""

    fleet: str
    status: str  # converged, in-progress, halted, refused, or "loading"
    reason: str
    revision: Link
    fetched: str
    plan_id: str
    plan: Link
    stalled: str
    updated: float
    waves: tuple[WaveView, ...]
    clusters: tuple[ClusterView, ...]
    halt: Halt | None
    phases: tuple[Phase, ...]

    @property
    def nodes(self) -> tuple[int, int]:
        """Nodes on target and replicas over every observed pool."""
        pools = [p for c in self.clusters for p in c.pools if p.on_target is not None]
        return sum(p.on_target or 0 for p in pools), sum(p.replicas for p in pools)


# -- pools and clusters --------------------------------------------------------------------------


def _waits(pool: PoolPlan) -> tuple[Wait, ...]:
    first = pool.batches[0].actions if pool.batches else ()
    return tuple(a for a in first if isinstance(a, Wait))


def pool_state(plan: Plan, wave: WavePlan, cluster: ClusterPlan, pool: PoolPlan) -> PoolView:
    """What the matrix shows for one observed pool of the plan."""
    state: PoolState
    detail = pool.reason
    if pool.status == "converged":
        state, label = "converged", "converged"
        if cluster.status == "soaking" or wave.status == "soaking":
            label = "converged, soaking"
            detail = cluster.reason or wave.reason
    elif plan.status in ("halted", "refused"):
        state, label = "halted", plan.status
        detail = plan.reason + (f" ({pool.reason})" if pool.reason else "")
    elif pool.status == "paused" or cluster.status == "paused":
        state, label = "paused", "paused"
        detail = cluster.reason or pool.reason
    elif pool.status == "active":
        state, label = "rolling", "rolling"
    elif pool.status == "waiting" and any(w.on == "soak" for w in _waits(pool)):
        state, label = "waiting", "waiting for soak"
    elif pool.status == "waiting":
        state, label = "rolling", "rolling"
        ons = sorted({w.on for w in _waits(pool)})
        detail = detail or "waits for " + ", ".join(_WAIT_WORDS.get(o, o) for o in ons)
    else:  # pending: the wave's gate or a free slot in it
        state, label = "waiting", "waiting for gate"
        detail = cluster.reason or wave.reason or pool.reason
    return PoolView(pool.name, pool.image, pool.on_target, pool.replicas, state, label, detail)


def _unreachable(fleet: Fleet | None, cluster: ClusterPlan) -> tuple[PoolView, ...]:
    doc = fleet.cluster(cluster.name) if fleet is not None else None
    if doc is None:
        return ()
    return tuple(
        PoolView(p.name, p.image, None, p.replicas, "unreachable", "unreachable", cluster.reason)
        for p in doc.spec.node_pools
    )


def _summary(pools: Iterable[PoolView]) -> tuple[PoolState, str, str]:
    """The cluster's state: its most pressing pool's (converged when it has none)."""
    by_state = {p.state: p for p in pools}
    for state in _PRECEDENCE:
        if state in by_state:
            return state, by_state[state].label, by_state[state].detail
    return "converged", "converged", ""


def _finding(f: Finding) -> FindingView:
    return FindingView(
        f.kind, f.pool, f.node, f.fact, f.expected, f.observed, f.message, f.fingerprint
    )


def _drift_branch(cluster: str) -> str:
    return f"gitops/drift/{cluster}"  # gitops.bot.driftpr.branch, without importing the bot


def _revert_branch(revision: str) -> str:
    return f"gitops/revert/{revision[:12]}"  # gitops.bot.revert.branch


def _cluster(
    inputs: Inputs,
    plan: Plan,
    wave: WavePlan,
    cplan: ClusterPlan,
    drift: Mapping[str, list[Finding]],
) -> ClusterView:
    doc = inputs.fleet.cluster(cplan.name) if inputs.fleet is not None else None
    if cplan.status == "unknown":
        pools = _unreachable(inputs.fleet, cplan)
    else:
        pools = tuple(pool_state(plan, wave, cplan, p) for p in cplan.pools)
    state, label, detail = _summary(pools)
    if cplan.status == "unknown":
        detail = cplan.reason
    findings = tuple(_finding(f) for f in drift.get(cplan.name, ()))
    return ClusterView(
        name=cplan.name,
        wave=wave.name,
        labels=tuple(sorted(doc.metadata.labels.items())) if doc is not None else (),
        state=state,
        label=label,
        detail=detail,
        pools=pools,
        findings=findings,
        drift_pull=inputs.pulls.get(_drift_branch(cplan.name)) if findings else None,
    )


# -- waves ---------------------------------------------------------------------------------------

_WAVE_LABELS = {
    "complete": "complete",
    "soaking": "soaking",
    "active": "rolling",
    "blocked": "blocked",
    "pending": "waiting for gate",
    "stopped": "stopped",
}


def _remaining(until: float | None, now: float) -> str:
    return format_duration(max(0.0, until - now)) if until is not None else ""


def _spent(cluster: str, pool: PoolPlan) -> list[str]:
    """The budgets a pool with work left has used up (what keeps its next step from starting)."""
    if pool.status in ("converged", "paused", "stopped"):
        return []
    out = []
    if pool.max_surge and pool.machines >= pool.replicas + pool.max_surge:
        out.append(
            f"budget: {cluster}/{pool.name} uses its whole surge ({pool.machines} machines for "
            f"{pool.replicas} replicas + maxSurge {pool.max_surge})"
        )
    if pool.max_unavailable and pool.available <= pool.replicas - pool.max_unavailable:
        out.append(
            f"budget: {cluster}/{pool.name} uses its whole unavailability ({pool.available} of "
            f"{pool.replicas} available, maxUnavailable {pool.max_unavailable})"
        )
    return out


def waiting_for(wave: WavePlan, now: float) -> tuple[str, ...]:
    """Why a wave waits, one phrase per cause: soak remaining, gate, budgets, free slots."""
    out: list[str] = []
    if wave.status == "soaking":
        out.append(f"soak: {_remaining(wave.soak_until, now)} left before the next wave")
    elif wave.status in ("pending", "blocked", "stopped") and wave.reason:
        out.append(f"gate: {wave.reason}")
    for cluster in wave.clusters:
        if cluster.status == "soaking":
            out.append(f"soak: {cluster.name} {_remaining(cluster.soak_until, now)} left")
        elif cluster.status == "queued" and cluster.reason:
            out.append(f"slot: {cluster.name}, {cluster.reason}")
    for cluster in wave.clusters:
        for pool in cluster.pools:
            out.extend(_spent(cluster.name, pool))
    budgets: dict[str, int] = {}
    for cluster in wave.clusters:
        for pool in cluster.pools:
            for wait in _waits(pool):
                budgets[wait.on] = budgets.get(wait.on, 0) + 1
    for on in sorted(budgets):
        if on in ("availability", "surge"):
            out.append(f"budget: {budgets[on]} step(s) wait for {_WAIT_WORDS[on]}")
        elif on == "soak":
            out.append(f"soak: {budgets[on]} pool(s) soak a batch")
        else:
            out.append(f"{budgets[on]} step(s) wait for {_WAIT_WORDS.get(on, on)}")
    return tuple(dict.fromkeys(out))


def _wave(wave: WavePlan, clusters: list[ClusterView], active: bool, now: float) -> WaveView:
    pools = [p for c in clusters for p in c.pools if p.on_target is not None]
    return WaveView(
        index=wave.index,
        name=wave.name,
        status=wave.status,
        label=_WAVE_LABELS.get(wave.status, wave.status),
        clusters=tuple(c.name for c in clusters),
        on_target=sum(p.on_target or 0 for p in pools),
        replicas=sum(p.replicas for p in pools),
        active=active,
        waiting_for=waiting_for(wave, now) if active else (),
    )


# -- the page ------------------------------------------------------------------------------------


def _revision_links(inputs: Inputs, plan: Plan | None) -> tuple[Link, Link]:
    revision = inputs.fleet.revision if inputs.fleet is not None else ""
    forge = inputs.forge
    commit = links.commit_url(forge.kind, forge.repository, revision) if revision else ""
    plan_link = Link(plan.id if plan is not None else "")
    if plan is not None and forge.status_commit:
        url = links.file_url(forge.kind, forge.repository, forge.status_commit, "README.md")
        plan_link = Link(plan.id, url)
    return Link(revision, commit), plan_link


def build(inputs: Inputs) -> FleetView:
    """The page for ``inputs``; a controller with no fleet in force yet shows a loading page."""
    plan, fleet = inputs.plan, inputs.fleet
    revision, plan_link = _revision_links(inputs, plan)
    if plan is None:
        return FleetView(
            fleet=fleet.name if fleet is not None else "",
            status="loading",
            reason=inputs.stalled or "no plan made yet",
            revision=revision,
            fetched=inputs.fetched,
            plan_id="",
            plan=plan_link,
            stalled=inputs.stalled,
            updated=inputs.now,
            waves=(),
            clusters=(),
            halt=None,
            phases=inputs.phases,
        )
    drift: dict[str, list[Finding]] = {}
    for f in plan.findings:  # once: a rollout's plan can hold a finding per node
        if f.is_drift:
            drift.setdefault(f.cluster, []).append(f)
    clusters: list[ClusterView] = []
    waves: list[WaveView] = []
    active_seen = False
    for wave in plan.waves:
        members = [_cluster(inputs, plan, wave, c, drift) for c in wave.clusters]
        active = not active_seen and wave.status != "complete"
        active_seen = active_seen or active
        waves.append(_wave(wave, members, active, inputs.now))
        clusters.extend(members)
    halt = None
    if plan.status in ("halted", "refused"):
        halt = Halt(plan.status, plan.reason, inputs.pulls.get(_revert_branch(plan.fleet_revision)))
    return FleetView(
        fleet=plan.fleet,
        status=plan.status,
        reason=plan.reason,
        revision=revision,
        fetched=inputs.fetched,
        plan_id=plan.id,
        plan=plan_link,
        stalled=inputs.stalled,
        updated=inputs.now,
        waves=tuple(waves),
        clusters=tuple(clusters),
        halt=halt,
        phases=inputs.phases,
    )


# -- JSON ----------------------------------------------------------------------------------------


def _link(link: Link | None) -> dict[str, str] | None:
    return None if link is None else {"text": link.text, "url": link.url}


def to_dict(view: FleetView, timeline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``gitops.dashboard/v1`` document (README: "The dashboard")."""
    on_target, replicas = view.nodes
    return {
        "schemaVersion": SCHEMA_VERSION,
        "fleet": view.fleet,
        "status": view.status,
        "reason": view.reason,
        "revision": _link(view.revision),
        "fetchedRevision": view.fetched,
        "plan": _link(view.plan),
        "stalled": view.stalled,
        "updated": view.updated,
        "nodes": {"onTarget": on_target, "replicas": replicas},
        "halt": None
        if view.halt is None
        else {
            "status": view.halt.status,
            "reason": view.halt.reason,
            "revertPullRequest": _link(view.halt.revert_pull),
        },
        "waves": [
            {
                "index": w.index,
                "name": w.name,
                "status": w.status,
                "label": w.label,
                "active": w.active,
                "clusters": list(w.clusters),
                "onTarget": w.on_target,
                "replicas": w.replicas,
                "waitingFor": list(w.waiting_for),
            }
            for w in view.waves
        ],
        "clusters": [
            {
                "name": c.name,
                "wave": c.wave,
                "labels": dict(c.labels),
                "state": c.state,
                "label": c.label,
                "detail": c.detail,
                "pools": [
                    {
                        "name": p.name,
                        "image": p.image,
                        "onTarget": p.on_target,
                        "replicas": p.replicas,
                        "state": p.state,
                        "label": p.label,
                        "detail": p.detail,
                    }
                    for p in c.pools
                ],
                "findings": [
                    {
                        "kind": f.kind,
                        "pool": f.pool,
                        "node": f.node,
                        "fact": f.fact,
                        "expected": f.expected,
                        "observed": f.observed,
                        "message": f.message,
                        "fingerprint": f.fingerprint,
                    }
                    for f in c.findings
                ],
                "driftPullRequest": _link(c.drift_pull),
            }
            for c in view.clusters
        ],
        "phases": [{"name": p.name, "kind": p.kind, "message": p.message} for p in view.phases],
        "timeline": dict(timeline) if timeline is not None else None,
    }
