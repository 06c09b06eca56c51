"""The planner and its renderers: ``make(fleet, inventory, state, now) -> Plan``.

Part of the pure core (DESIGN section 2): it imports only ``gitops.fleet``,
``gitops.inventory``, ``gitops.drift`` and the standard library minus I/O, and it never reads a
clock: ``now`` is passed in. The executor calls ``make`` on every reconcile and carries out
``next_actions(plan)``; it requeues at ``next_wakeup(plan)``. ``gitops plan`` renders the same
plan with ``gitops.plan.text``, ``gitops.plan.markdown`` or ``gitops.plan.jsonout``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from gitops.plan.make import fleet_identity, make, plan_id
from gitops.plan.model import (
    ACTION_KINDS,
    PLANNER_VERSION,
    SCHEMA_VERSION,
    AbandonMachine,
    Action,
    AnyAction,
    Batch,
    ClusterPlan,
    CreateReplacement,
    PauseMachineDeployment,
    Plan,
    PoolPlan,
    RetireNode,
    RollMachineDeployment,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    WavePlan,
)
from gitops.plan.state import ClusterProgress, PoolProgress, RolloutState, WaveProgress

__all__ = [
    "ACTION_KINDS",
    "PLANNER_VERSION",
    "SCHEMA_VERSION",
    "AbandonMachine",
    "Action",
    "AnyAction",
    "Batch",
    "ClusterPlan",
    "ClusterProgress",
    "CreateReplacement",
    "PauseMachineDeployment",
    "Plan",
    "PoolPlan",
    "PoolProgress",
    "RetireNode",
    "RollMachineDeployment",
    "RolloutState",
    "ScaleDown",
    "ScaleUp",
    "Uncordon",
    "Wait",
    "WavePlan",
    "WaveProgress",
    "first_actionable",
    "fleet_identity",
    "make",
    "next_actions",
    "next_wakeup",
    "only_clusters",
    "plan_id",
]


def next_actions(plan: Plan) -> tuple[AnyAction, ...]:
    """The actions the executor may carry out now, in plan order (never a Wait)."""
    return tuple(a for a in plan.actions() if a.ready)


def first_actionable(plan: Plan) -> AnyAction | None:
    """The first action the executor may carry out now, or None."""
    return next((a for a in plan.actions() if a.ready), None)


def next_wakeup(plan: Plan) -> float | None:
    """The soonest time a Wait or a soak ends after ``plan.now`` (None: nothing is timed)."""
    times = [a.until for a in plan.actions() if isinstance(a, Wait) and a.until is not None]
    for wave in plan.waves:
        times.append(wave.soak_until or 0.0)
        times.extend(c.soak_until or 0.0 for c in wave.clusters)
    future = [t for t in times if t > plan.now]
    return min(future) if future else None


def only_clusters(plan: Plan, names: Collection[str]) -> Plan:
    """The plan restricted to ``names`` (``--cluster``): other clusters and their findings go.

    Waves left with no cluster are dropped. Decisions are not re-made: a cluster queued behind
    one filtered out stays queued, as it would be.

    Convergence is judged over the scope: clusters left out were not observed on purpose,
    which makes them out of scope, not unknown. So a plan that was "in-progress" only because
    of them (no action, no wait, no unknown cluster among ``names``) is "converged" here.
    """
    keep = set(names)
    waves = []
    for wave in plan.waves:
        clusters = tuple(c for c in wave.clusters if c.name in keep)
        if clusters:
            waves.append(replace(wave, clusters=clusters))
    findings = tuple(f for f in plan.findings if f.cluster in keep)
    scoped = replace(plan, waves=tuple(waves), findings=findings)
    if scoped.status == "in-progress" and scoped.converged:
        scoped = replace(scoped, status="converged")
    return scoped
