"""Node facts beyond nodeInfo and the fingerprint of each pool.

Part of the pure core, beside the drift finder (``gitops.drift`` reads it; so do ``plan``,
status reports and ``gitops drift --fingerprints``). An image may declare labels and
annotations a node booted from it must carry (``Image.facts``); a node's *facts* are its four
nodeInfo values, every label under ``wellknown.FACT_LABEL_PREFIXES`` and every label and
annotation some image of the fleet declares. They hash to the node's fingerprint; a pool whose
nodes run one image should have one fingerprint, and the nodes outside the commonest one are its
odd ones out.

Nothing here reads a clock: whether a fact a node does not report yet is "unknown" or missing
depends on ``now``, which the caller passes (``missing_facts``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gitops.fleet import Fleet, Image
from gitops.fleet.wellknown import FACT_LABEL_PREFIXES
from gitops.inventory import ClusterInventory, Inventory, Member, Node

NODE_INFO = ("osImage", "kernelVersion", "kubeletVersion", "containerRuntimeVersion")
MISSING = "(missing)"

# A fact's name: "label <key>", "annotation <key>" or one of NODE_INFO.
Facts = tuple[tuple[str, str], ...]


def declared(image: Image) -> tuple[tuple[str, str], ...]:
    """(fact, value) the image declares beyond nodeInfo, sorted by fact."""
    out = [(f"label {k}", v) for k, v in image.facts.labels.items()]
    out += [(f"annotation {k}", v) for k, v in image.facts.annotations.items()]
    return tuple(sorted(out))


def observed(node: Node, fact: str) -> str | None:
    """The value ``node`` reports for a declared fact ("label k" / "annotation k"), or None."""
    where, _, key = fact.partition(" ")
    return (node.labels if where == "label" else node.annotations).get(key)


@dataclass(frozen=True, slots=True)
class Keys:
    """Which labels and annotations count as facts in a fleet (its images declare them)."""

    labels: frozenset[str]
    annotations: tuple[str, ...]

    @classmethod
    def of(cls, fleet: Fleet) -> Keys:
        """The fleet's keys; equal keys are one object, so that what is remembered per
        cluster for them (``cluster_facts``) is found again whoever asks."""
        labels = {k for image in fleet.images.values() for k in image.facts.labels}
        annotations = {k for image in fleet.images.values() for k in image.facts.annotations}
        keys = cls(frozenset(labels), tuple(sorted(annotations)))
        return _KEYS.setdefault(keys, keys)


NO_FACT_KEYS = Keys(frozenset(), ())
_KEYS: dict[Keys, Keys] = {NO_FACT_KEYS: NO_FACT_KEYS}


def node_facts(node: Node, keys: Keys) -> Facts:
    """Every fact ``node`` reports, sorted: nodeInfo, fact labels, declared annotations.

    Nodes that report the same facts share one tuple (``_SAME``): a pool's nodes nearly always
    do, and the plan of a large fleet then holds a handful of these rather than one per node.
    """
    fact_labels = keys.labels
    extra = [
        ("label " + k, v)
        for k, v in node.labels.items()
        if k in fact_labels or k.startswith(FACT_LABEL_PREFIXES)
    ]
    extra.sort()
    for key in keys.annotations:
        value = node.annotations.get(key)
        if value is not None:
            extra.append(("annotation " + key, value))
    facts = (
        (NODE_INFO[0], node.os_image),
        (NODE_INFO[1], node.kernel_version),
        (NODE_INFO[2], node.kubelet_version),
        (NODE_INFO[3], node.container_runtime_version),
        *extra,
    )
    same = _SAME.get(facts)
    if same is not None:
        return same
    if len(_SAME) >= _SAME_MAX:
        _SAME.clear()
    _SAME[facts] = facts
    return facts


# Facts tuples seen lately, each its own key; cleared when full (only sharing is lost).
_SAME: dict[Facts, Facts] = {}
_SAME_MAX = 4096


def cluster_facts(seen: ClusterInventory, keys: Keys) -> Mapping[str, Facts]:
    """Every node's facts in ``seen``, by node name: computed once per observation of the
    cluster, for the drift finder (``divergent``) and the plan's fingerprints alike."""
    return seen.derived(
        "facts", (keys,), lambda: {node.name: node_facts(node, keys) for node in seen.nodes}
    )


def fingerprint(facts: Facts) -> str:
    """A short stable hash of a node's facts."""
    text = "\n".join(f"{name}={value}" for name, value in facts)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class OddNode:
    """A node outside its pool's commonest fingerprint, and the facts where it differs."""

    node: str
    fingerprint: str
    differs: tuple[tuple[str, str, str], ...]  # (fact, the commonest value, this node's)


@dataclass(frozen=True, slots=True)
class PoolFingerprints:
    """How many distinct fingerprints a pool's nodes have (the aim is 1), and the odd ones out."""

    cluster: str
    pool: str
    nodes: int
    counts: tuple[tuple[str, int], ...]  # (fingerprint, nodes), commonest first
    odd: tuple[OddNode, ...] = ()

    @property
    def distinct(self) -> int:
        return len(self.counts)

    @property
    def common(self) -> str:
        return self.counts[0][0] if self.counts else ""


def pool_fingerprints(
    cluster: str, pool: str, members: Iterable[Member], facts: Mapping[str, Facts]
) -> PoolFingerprints:
    """The fingerprints of the pool's nodes (members without a node do not count); ``facts``:
    the cluster's, by node (``cluster_facts``)."""
    by_node = {m.name: facts[m.name] for m in members if m.node is not None}
    tally = Counter(by_node.values())
    if not tally:
        return PoolFingerprints(cluster, pool, 0, ())
    prints = {facts: fingerprint(facts) for facts in tally}
    # Commonest first; ties go to the smaller fingerprint, so the order is stable.
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1], prints[kv[0]]))
    common = dict(ranked[0][0])
    odd = tuple(
        OddNode(name, prints[facts], _differs(common, dict(facts)))
        for name, facts in sorted(by_node.items())
        if facts != ranked[0][0]
    )
    counts = tuple((prints[facts], n) for facts, n in ranked)
    return PoolFingerprints(cluster, pool, len(by_node), counts, odd)


def _differs(
    common: Mapping[str, str], mine: Mapping[str, str]
) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (fact, common.get(fact, MISSING), mine.get(fact, MISSING))
        for fact in sorted(common.keys() | mine.keys())
        if common.get(fact) != mine.get(fact)
    )


def divergent(
    members: Iterable[Member],
    facts: Mapping[str, Facts],
    image_of: Mapping[str, str],
    images: Mapping[str, Image],
) -> list[tuple[str, str, str, str]]:
    """(node, fact, commonest value, node's value) for facts no image declares that differ
    between nodes of one pool running the same image (``image_of``: node -> catalog image).

    Nodes on different images differ by design during a rollout; declared facts and nodeInfo
    are the drift finder's ImageMismatch. Only groups of two or more nodes are compared.
    ``facts``: the cluster's, by node (``cluster_facts``).
    """
    groups: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for m in members:
        if m.node is not None:
            mine = dict(facts[m.name][len(NODE_INFO) :])
            groups.setdefault(image_of.get(m.name, ""), []).append((m.name, mine))
    out: list[tuple[str, str, str, str]] = []
    for image_name, nodes in sorted(groups.items()):
        if len(nodes) < 2:
            continue
        image = images.get(image_name)
        skip = {fact for fact, _ in declared(image)} if image is not None else set()
        names = sorted({f for _, seen in nodes for f in seen} - skip)
        for fact in names:
            values = Counter(seen.get(fact, MISSING) for _, seen in nodes)
            if len(values) < 2:
                continue
            common = min(values, key=lambda v: (-values[v], v))
            out += [
                (node, fact, common, seen.get(fact, MISSING))
                for node, seen in nodes
                if seen.get(fact, MISSING) != common
            ]
    return sorted(out)


def fleet_fingerprints(fleet: Fleet, inventory: Inventory) -> tuple[PoolFingerprints, ...]:
    """Every declared pool's fingerprints in the clusters observed, by (cluster, pool)."""
    keys = Keys.of(fleet)
    out: list[PoolFingerprints] = []
    for cluster in sorted(fleet.clusters, key=lambda c: c.name):
        seen = inventory.cluster(cluster.name)
        if seen is None or not seen.reachable:
            continue
        facts = cluster_facts(seen, keys)
        for pool in sorted(cluster.spec.node_pools, key=lambda p: p.name):
            out.append(pool_fingerprints(cluster.name, pool.name, seen.members(pool.name), facts))
    return tuple(out)
