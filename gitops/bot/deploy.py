"""Deployment status of the fleet revision in force: ``gitops/deploy/<cluster>`` per cluster.

Part of the bot's pure core. The forge shows it on the merged commit, so whoever merged a
change sees where it has reached:

| state | when |
|---|---|
| ``pending`` | the cluster is still rolling (or waits for its wave, is paused, cannot be observed) |
| ``success`` | the cluster converged on the revision (nothing left to do or to wait for) |
| ``failure`` | the rollout halted or refused to act, and the cluster had not converged |

Descriptions name a state, never a count or a time, so an unchanged rollout gives identical
statuses and the bot sends nothing (:func:`changed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gitops.forge.base import CommitState, CommitStatus
from gitops.plan import Plan

CONTEXT_PREFIX = "gitops/deploy/"
_LIMIT = 140


def context(cluster: str) -> str:
    return f"{CONTEXT_PREFIX}{cluster}"


def statuses(plan: Plan, revision: str, target_url: str = "") -> tuple[CommitStatus, ...]:
    """One status per cluster of the plan on ``revision``, in cluster-name order."""
    stopped = plan.status in ("halted", "refused")
    out = []
    for wave in plan.waves:
        for cluster in wave.clusters:
            work = any(True for p in cluster.pools for b in p.batches for _ in b.actions)
            state: CommitState
            if cluster.status == "converged" and not work:
                state, text = "success", f"converged (wave {wave.name})"
            elif stopped:
                state, text = "failure", plan.reason or plan.status
            elif cluster.status == "unknown":
                state, text = "pending", "cannot be observed; waiting to see it"
            elif cluster.status == "paused":
                state, text = "pending", "paused in git"
            elif cluster.status in ("pending", "queued"):
                state, text = "pending", f"waiting for its turn in wave {wave.name}"
            else:
                state, text = "pending", f"rolling out (wave {wave.name}, {cluster.status})"
            if len(text) > _LIMIT:
                text = text[: _LIMIT - 1] + "…"
            out.append(CommitStatus(revision, context(cluster.name), state, text, target_url))
    return tuple(sorted(out, key=lambda s: s.context))


def changed(
    wanted: Iterable[CommitStatus], sent: Mapping[str, CommitStatus]
) -> tuple[CommitStatus, ...]:
    """The statuses of ``wanted`` that differ (state or description) from what was sent."""
    out = []
    for status in wanted:
        before = sent.get(status.context)
        if before is None or (before.state, before.description) != (
            status.state,
            status.description,
        ):
            out.append(status)
    return tuple(out)
