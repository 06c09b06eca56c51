"""A pool's surge and availability budget while its batches are laid out.

Part of the pure core (gitops.plan), used by ``batches`` and ``inflight``. The two bounds of
DESIGN section 4 are written here once, as named operations on running counts: a machine is
created only while ``machines < replicas + maxSurge`` (``room``, ``take_surge``), and a node
that serves is taken out only while ``available - 1 >= replicas - maxUnavailable``
(``may_take``, ``take_available``, ``take_node``); a node that is not available may always go,
since that takes nothing away. The texts that quote the availability budget live here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Budget:
    """Running counts of one pool.

    ``replicas``, ``surge`` and ``unavailable`` never change once built, so ``floor``
    (replicas - maxUnavailable) and ``ceiling`` (replicas + maxSurge) are computed once: they
    are read for every action of the fleet.
    """

    replicas: int
    surge: int
    unavailable: int
    machines: int
    available: int
    floor: int = field(init=False)
    ceiling: int = field(init=False)

    def __post_init__(self) -> None:
        self.floor = self.replicas - self.unavailable
        self.ceiling = self.replicas + self.surge

    @property
    def room(self) -> int:
        """Machines that may still be created; negative when the pool is over its ceiling."""
        return self.ceiling - self.machines

    def take_surge(self) -> None:
        """A new machine: it counts against the ceiling from the moment it is created."""
        self.machines += 1

    def may_take(self, available: bool) -> bool:
        """Whether a node that is (or is not) available may be taken out now."""
        return not available or self.available - 1 >= self.floor

    def take_available(self, available: bool) -> None:
        """A node taken out of service: it stops counting as available if it did.

        Its machine still counts until it is deleted (``take_node``).
        """
        if available:
            self.available -= 1

    def take_node(self, available: bool) -> None:
        """A node retired and its machine deleted: neither counts any more."""
        if available:
            self.available -= 1
        self.machines -= 1

    def add_available(self, count: int = 1) -> None:
        """Nodes that serve again, or new ones Ready."""
        self.available += count

    def fits(self, took: Sequence[bool]) -> bool:
        """Whether creating len(took) replacements, then retiring their nodes, keeps the floor.

        ``took`` says, for each node to retire in order, whether it is available.
        """
        available = self.available + len(took)
        for t in took:
            if t and available - 1 < self.floor:
                return False
            available -= 1 if t else 0
        return True

    def availability_text(self, took: bool) -> str:
        """The availability budget once a node (available or not: ``took``) is taken out."""
        if not took:
            return f"availability: unchanged at {self.available} (the node is not available)"
        return (
            f"availability: {self.available} available after this, at least {self.floor} required"
        )

    def floor_text(self) -> str:
        """Why an available node must stay for now."""
        return f"{self.available} nodes are available and {self.floor} must stay so"
