"""Which controller replica owns which workload cluster: the pure placement of the sharded controller.

Sits in the pure core beside the planner: the shard manager (``gitops.kube.shards``) feeds it the
live members it read from their Leases and the clusters' node counts, and writes what it returns
into owner Leases. Rendezvous (highest-random-weight) hashing keeps moves few when members come
and go; the bounded-load cap keeps any one replica from carrying far more nodes than its share.
No clock, no I/O, no use of Python's salted ``hash``: every replica computes the same answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def _score(member: str, cluster: str) -> int:
    """A stable pseudo-random score of one (member, cluster) pair, the same on every replica."""
    digest = hashlib.blake2b(f"{member}\0{cluster}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def place(
    weights: Mapping[str, int], members: Sequence[str], *, slack: float = 0.25
) -> dict[str, str]:
    """Assign every cluster to one member: rendezvous hashing with a bounded load per member.

    Clusters go heaviest first (ties by name), each to its highest-scoring member whose load
    plus the cluster's weight stays within ``cap = max(max weight, (1 + slack) * total / n)``.
    """
    live = sorted(set(members))
    if not live or not weights:
        return {}
    sized = {cluster: max(1, weight) for cluster, weight in weights.items()}
    total = sum(sized.values())
    cap = max(*sized.values(), (1.0 + slack) * total / len(live))
    load = dict.fromkeys(live, 0)
    out: dict[str, str] = {}
    for cluster in sorted(sized, key=lambda c: (-sized[c], c)):
        ranked = sorted(live, key=lambda m: (-_score(m, cluster), m))
        weight = sized[cluster]
        # The cap is at least the heaviest weight and above the mean, so some member always fits;
        # the fallback (least loaded) only guards against float rounding at the edge.
        chosen = next((m for m in ranked if load[m] + weight <= cap), None)
        if chosen is None:
            chosen = min(live, key=lambda m: (load[m], m))
        load[chosen] += weight
        out[cluster] = chosen
    return out


def moved(before: Mapping[str, str], after: Mapping[str, str]) -> int:
    """How many clusters present in both assignments changed member."""
    return sum(
        1 for cluster, member in after.items() if cluster in before and before[cluster] != member
    )


def balance(
    assignment: Mapping[str, str], weights: Mapping[str, int], members: Sequence[str]
) -> float:
    """The heaviest member's load over the mean load (1.0 is perfect); 0.0 with nothing to carry."""
    live = sorted(set(members))
    if not live:
        return 0.0
    load = dict.fromkeys(live, 0)
    for cluster, member in assignment.items():
        load[member] = load.get(member, 0) + max(1, weights[cluster])
    total = sum(load.values())
    if total == 0:
        return 0.0
    return max(load.values()) / (total / len(live))
