"""The inputs of one ``plan.make`` call that every room of the planner reads.

Part of the pure core (gitops.plan). ``make`` builds one ``Context`` per call and hands it down
to the wave, pool and batch functions (``waves``, ``pools``, ``poolplan``). It is read-only:
nothing in it changes while a plan is made, and it is never kept between plans. ``now`` is the
caller's time; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gitops.drift import Finding
from gitops.facts import NO_FACT_KEYS, Keys
from gitops.fleet import ClusterDocument, Fleet
from gitops.fleet.windows import Calendar, Level, cluster_levels
from gitops.plan.rates import RateLedger
from gitops.plan.shard import Shard
from gitops.plan.state import RolloutState

# A node's findings, keyed by (cluster, node): the finding itself when it has one (nearly
# always), else a list. One list per node of the fleet would be 50,000 more objects for the
# cyclic GC to scan.
FindingsByNode = Mapping[tuple[str, str], Finding | list[Finding]]


@dataclass(frozen=True, slots=True)
class Context:
    """The fleet, the durable record, the time and the findings of the plan being made."""

    fleet: Fleet
    state: RolloutState
    now: float
    by_node: FindingsByNode
    replace_drift: bool  # drift.remediate is "replace": drifted nodes are due for replacement
    # Windows and freezes at ``now``, evaluated once per plan (per window, per set of levels).
    calendar: Calendar | None = None
    # Replacements started per level and period (None: no level declares a rate).
    rates: RateLedger | None = None
    # Which labels and annotations are node facts (for the pools' fingerprints).
    fact_keys: Keys = NO_FACT_KEYS
    # A sharded replica's view of the clusters it does not observe (None: not sharded).
    shard: Shard | None = None
    # Sharded: (cluster, node) of every drifted node, for the clusters' summaries.
    drifted: frozenset[tuple[str, str]] = frozenset()

    def levels(self, doc: ClusterDocument) -> tuple[Level, ...]:
        """The fleet, wave and cluster levels whose windows and freezes govern ``doc``."""
        return cluster_levels(self.fleet, doc.name)
