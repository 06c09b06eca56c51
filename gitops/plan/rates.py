"""Rates over time: at most N new replacements started per period, at each level that says so.

Part of the pure core (gitops.plan). ``make`` builds one ``RateLedger`` per plan when any level
declares a ``rate`` (none otherwise: a fleet without rates pays nothing); ``poolplan`` asks it
how many replacements a pool may start now and records what it starts, in plan order, so the
pools and clusters planned later see the room the earlier ones took. What counts as started is
observed, not remembered: every replacement Machine (``fleet.gitops.io/replaces``) created in the
last ``per`` seconds within the level's clusters. Levels stack like the surge budgets: the
tightest one decides, and the plan names it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from gitops.fleet import Fleet
from gitops.fleet.quantities import format_duration
from gitops.fleet.windows import Level
from gitops.inventory import Inventory


@dataclass(frozen=True, slots=True)
class Room:
    """How many replacements may start now, and which level says so (None: no rate applies)."""

    left: int
    level: Level | None = None
    text: str = ""
    frees_at: float | None = None  # when the oldest counted start leaves the period


def declares_rates(fleet: Fleet) -> bool:
    """Whether any level of the fleet declares a rate."""
    rollout = fleet.document.spec.rollout
    blocks = [rollout.maintenance, *(w.maintenance for w in rollout.waves)]
    blocks += [c.spec.maintenance for c in fleet.clusters]
    return any(b is not None and b.rate is not None for b in blocks)


@dataclass(slots=True)
class RateLedger:
    """Replacements started per cluster (observed, then taken in this plan), by level."""

    now: float
    fleet: Fleet
    inventory: Inventory
    started: dict[str, list[float]] = field(default_factory=dict)  # per cluster, sorted
    taken: dict[str, list[float]] = field(default_factory=dict)  # per cluster, in this plan

    @classmethod
    def observe(cls, fleet: Fleet, inventory: Inventory, now: float) -> RateLedger:
        return cls(now=now, fleet=fleet, inventory=inventory)

    def _observed(self, name: str) -> list[float]:
        """When each replacement Machine of the cluster was created, sorted; read from the
        pools' members (built for the plan anyway) and remembered on the cluster's inventory
        until it changes."""
        found = self.started.get(name)
        if found is None:
            seen, doc = self.inventory.cluster(name), self.fleet.cluster(name)
            if seen is None or doc is None or not seen.reachable:
                found = []
            else:
                pools = tuple(p.name for p in doc.spec.node_pools)
                found = seen.derived(
                    "rates/started",
                    (self.fleet,),
                    lambda: sorted(
                        m.machine.created
                        for p in pools
                        for m in seen.members(p)
                        if m.replaces and m.machine is not None
                    ),
                )
            self.started[name] = found
        return found

    def _scope(self, level: Level) -> Sequence[str]:
        if level.scope == "cluster":
            return (level.name,)
        if level.scope == "wave":
            return next(m.clusters for m in self.fleet.waves if m.wave.name == level.name)
        return tuple(c.name for c in self.fleet.clusters)

    def _starts(self, clusters: Sequence[str], since: float) -> list[float]:
        times: list[float] = []
        for name in clusters:
            observed = self._observed(name)
            times.extend(observed[bisect.bisect_right(observed, since) :])
            times.extend(self.taken.get(name, []))
        return sorted(times)

    def room(self, levels: Sequence[Level]) -> Room:
        """The room left under every level's rate: the tightest decides."""
        tightest = Room(left=1 << 30)
        for level in levels:
            rate = level.maintenance.rate if level.maintenance is not None else None
            if rate is None:
                continue
            starts = self._starts(self._scope(level), self.now - rate.per)
            left = max(0, rate.max_replacements - len(starts))
            if left < tightest.left:
                text = (
                    f"rate at {level.scope} {level.name}: at most {rate.max_replacements} "
                    f"replacements per {format_duration(rate.per)}, {len(starts)} started in "
                    "the last period"
                )
                frees = starts[len(starts) - rate.max_replacements] + rate.per if not left else None
                tightest = Room(left=left, level=level, text=text, frees_at=frees)
        return tightest

    def take(self, cluster: str, count: int) -> None:
        """Record ``count`` replacements started now in ``cluster`` by this plan."""
        if count:
            self.taken.setdefault(cluster, []).extend([self.now] * count)
