"""The drift finder: what differs between the declared fleet and the observed one.

Part of the pure core. In the reconcile cycle it runs after ``observe`` and before (and inside)
``plan``: ``find(fleet, inventory)`` compares each observed node and pool with its declaration
and returns findings sorted by (cluster, pool, node, kind, fact). It never does I/O, never reads
a clock and never decides *when* to act; it only says what is wrong, how sure it is (severity)
and what the fleet's policy will do about it (remediation). ``gitops drift`` renders these
findings; ``plan.make`` turns the ones remediated by replacement into actions.

The kinds (DESIGN section 4), and the decisions taken where the design is silent:

``Outdated`` (info, replace)
    The node runs another image of its pool's image *family* exactly (all four nodeInfo facts
    match a catalog image), or its facts match the declared image but its Machine records that
    it was booted from another catalog image with a different ``source``. Git moved; this is a
    pending change, not drift, and the rollout replaces the node.
``ImageMismatch`` (error, per policy)
    A nodeInfo fact matches no catalog image of the family: a hand-patched host. One finding per
    differing fact, compared with the family's image the node is closest to (the one it was
    booted from when its Machine says so), so an old node with a patched kernel reads
    "kernelVersion: expected 6.6.64-talos, observed 6.6.99" plus an ``Outdated`` finding, rather
    than four mismatches against the new image.
    The image's declared facts beyond nodeInfo (``Image.facts``: GPU driver, CUDA runtime,
    system extension labels, the schematic annotation) are checked the same way, against the
    image the node was compared with: a different value is an ImageMismatch naming the fact;
    a fact the node does not report is "unknown" until the node has been Ready for the fleet's
    ``drift.factGracePeriod`` (its labeller may not have run), then an ImageMismatch with the
    observed value "(missing)". Only ``find(..., now=...)`` judges missing facts.
``ConfigMismatch`` (warning, per policy)
    A label the pool declares is missing or different; a declared taint is missing or has
    another value; or the node carries an undeclared ``NoSchedule``/``NoExecute`` taint.
    Extra labels are ignored (other controllers add them), as are ``PreferNoSchedule`` taints
    (soft) and taints Kubernetes, Cluster API, the autoscaler or this controller manage
    themselves (``SYSTEM_TAINT_PREFIXES``): those come and go without anyone patching a host.
``FactDivergence`` (warning, report)
    A fact no image declares (see ``gitops.facts``: a fact label such as a CUDA or kernel label
    from a labeller) differs between nodes of one pool that run the same image. Reported, never
    remediated: nothing says which value is right, only that the pool is not uniform.
``UnmanagedNode`` (warning, report)
    The node names no pool, or a pool its cluster does not declare. Never remediated: the
    controller does not delete nodes it does not own.
``CapacityMismatch`` (warning, scale)
    A pool's slots (nodes and provisioning machines, a node and its in-flight replacement
    counting once, leaving and failed ones not at all) differ from ``replicas``.
``StuckCordoned`` (warning, report)
    Cordoned by someone else (no ``fleet.gitops.io/cordoned-by``), not quarantined and not part
    of a replacement in flight. Reported only: a human may have cordoned it on purpose, and
    undoing a human's cordon is not ours to decide. (Nodes the controller itself left cordoned
    are uncordoned by the plan.)
``Unknown`` (error, report)
    The cluster could not be observed; nothing else is concluded about it.

``remediation`` for ImageMismatch and ConfigMismatch is the fleet's ``drift.remediate``
(replace or report). Each finding's ``fingerprint`` hashes (kind, cluster, pool, node, fact,
expected, observed), so a report can say "still open" or "new" across runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from gitops import facts as facts_
from gitops.fleet import ClusterDocument, Fleet, Image, NodePool
from gitops.inventory import ClusterInventory, Inventory, Member, Node, NodeTaint

FindingKind = Literal[
    "ImageMismatch",
    "ConfigMismatch",
    "FactDivergence",
    "UnmanagedNode",
    "CapacityMismatch",
    "Outdated",
    "StuckCordoned",
    "Unknown",
]
Severity = Literal["info", "warning", "error"]
Remediation = Literal["replace", "scale", "report"]

KINDS: tuple[FindingKind, ...] = (
    "Unknown",
    "UnmanagedNode",
    "ImageMismatch",
    "ConfigMismatch",
    "FactDivergence",
    "StuckCordoned",
    "CapacityMismatch",
    "Outdated",
)
_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}
SEVERITY: Mapping[FindingKind, Severity] = {
    "ImageMismatch": "error",
    "ConfigMismatch": "warning",
    "FactDivergence": "warning",
    "UnmanagedNode": "warning",
    "CapacityMismatch": "warning",
    "Outdated": "info",
    "StuckCordoned": "warning",
    "Unknown": "error",
}
# Kinds that count as drift: the fleet differs from git without git having moved. Outdated is a
# pending change and Unknown an observation failure; neither is drift.
DRIFT_KINDS = frozenset(
    {
        "ImageMismatch",
        "ConfigMismatch",
        "FactDivergence",
        "UnmanagedNode",
        "CapacityMismatch",
        "StuckCordoned",
    }
)
# Drift that makes a node a candidate for replacement (when the policy says replace).
NODE_DRIFT_KINDS = frozenset({"ImageMismatch", "ConfigMismatch"})

FACT_NAMES = ("osImage", "kernelVersion", "kubeletVersion", "containerRuntimeVersion")
SYSTEM_TAINT_PREFIXES = (
    "node.kubernetes.io/",
    "node.cloudprovider.kubernetes.io/",
    "node.cluster.x-k8s.io/",
    "node-role.kubernetes.io/",
    "fleet.gitops.io/",
    "ToBeDeletedByClusterAutoscaler",
    "DeletionCandidateOfClusterAutoscaler",
)
HARD_EFFECTS = ("NoSchedule", "NoExecute")
MISSING = "(missing)"
ABSENT = "(absent)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One difference between the declared and the observed fleet."""

    kind: FindingKind
    cluster: str
    pool: str = ""
    node: str = ""
    fact: str = ""
    expected: str = ""
    observed: str = ""
    severity: Severity
    remediation: Remediation
    image: str = ""  # the catalog image an image finding was compared with
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            key = "\0".join(
                (
                    self.kind,
                    self.cluster,
                    self.pool,
                    self.node,
                    self.fact,
                    self.expected,
                    self.observed,
                )
            )
            object.__setattr__(self, "fingerprint", hashlib.sha256(key.encode()).hexdigest()[:16])

    @property
    def is_drift(self) -> bool:
        return self.kind in DRIFT_KINDS

    @property
    def where(self) -> str:
        """cluster/pool/node, as far as the finding goes."""
        return "/".join(p for p in (self.cluster, self.pool, self.node) if p)

    @property
    def message(self) -> str:
        """One sentence for people; renderers and logs quote it."""
        return _message(self)

    def sort_key(self) -> tuple[str, str, str, int, str]:
        return (self.cluster, self.pool, self.node, _KIND_ORDER[self.kind], self.fact)


class _FindingInit:
    """Builds a ``Finding`` at a fraction of the frozen dataclass's cost (see ``_finding``).

    The same trick as ``gitops.inventory._MemberInit``: ``Finding``'s own slots, filled by plain
    stores, then the instance becomes the ``Finding`` it is (``__class__`` assignment, allowed
    only between identical layouts). The fingerprint is computed exactly as ``__post_init__``
    computes it.
    """

    __slots__ = Finding.__slots__

    def __init__(
        self,
        kind: FindingKind,
        cluster: str,
        pool: str,
        node: str,
        fact: str,
        expected: str,
        observed: str,
        severity: Severity,
        remediation: Remediation,
        image: str,
    ) -> None:
        self.kind = kind
        self.cluster = cluster
        self.pool = pool
        self.node = node
        self.fact = fact
        self.expected = expected
        self.observed = observed
        self.severity = severity
        self.remediation = remediation
        self.image = image
        key = "\0".join((kind, cluster, pool, node, fact, expected, observed))
        self.fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.__class__ = Finding  # type: ignore[assignment]


def _finding(
    kind: FindingKind,
    cluster: str,
    pool: str,
    node: str,
    fact: str,
    expected: str,
    observed: str,
    severity: Severity,
    remediation: Remediation,
    image: str,
) -> Finding:
    """A node's finding, built fast: one or more per node of the fleet on every reconcile."""
    return _FindingInit(  # type: ignore[return-value]
        kind, cluster, pool, node, fact, expected, observed, severity, remediation, image
    )


def image_facts(image: Image) -> tuple[str, str, str, str]:
    """The nodeInfo facts a node booted from ``image`` reports, in ``FACT_NAMES`` order."""
    return (
        image.os_image,
        image.kernel_version,
        image.kubelet_version,
        image.container_runtime_version,
    )


def find(fleet: Fleet, inventory: Inventory, now: float | None = None) -> tuple[Finding, ...]:
    """Every finding for the fleet's clusters, sorted by (cluster, pool, node, kind, fact).

    With ``now``, a declared fact a node has not reported after being Ready for the fleet's
    ``factGracePeriod`` is an ImageMismatch; without it such facts stay unknown.
    """
    catalogs: list[_Catalog] = []  # built on first need: most clusters are remembered
    remediate: Remediation = fleet.document.spec.drift.remediate
    grace = fleet.document.spec.drift.fact_grace_period
    any_facts = any(
        image.facts.labels or image.facts.annotations for image in fleet.images.values()
    )
    out: list[Finding] = []
    for cluster in sorted(fleet.clusters, key=lambda c: c.name):
        observed = inventory.cluster(cluster.name)
        if observed is None or not observed.reachable:
            out.append(unknown(cluster.name, observed))
            continue

        def compute(
            doc: ClusterDocument = cluster, seen: ClusterInventory = observed
        ) -> tuple[Finding, ...]:
            if not catalogs:
                catalogs.append(_Catalog(fleet))
            return tuple(_cluster(doc, seen, catalogs[0], remediate))

        out.extend(observed.derived("drift", (fleet, cluster), compute))
        if now is not None and any_facts:
            if not catalogs:
                catalogs.append(_Catalog(fleet))
            out.extend(_missing_facts(cluster, observed, catalogs[0], remediate, now - grace))
    out.sort(key=Finding.sort_key)
    return tuple(out)


def unknown(cluster: str, observed: ClusterInventory | None) -> Finding:
    reason = "not observed" if observed is None else (observed.error or "unreachable")
    return Finding(
        kind="Unknown",
        cluster=cluster,
        fact="observation",
        expected="reachable",
        observed=reason,
        severity="error",
        remediation="report",
    )


def live_replacements(members: Iterable[Member]) -> dict[str, Member]:
    """Replacement machines still in play, by the node they replace (the newest one wins).

    Failed or deleting replacements are out of play: their node will get a new one.
    """
    live = [m for m in members if m.replaces and not m.failed and not m.deleting]
    live.sort(key=lambda m: (m.created, m.name))
    return {m.replaces: m for m in live}


def pool_slots(members: Iterable[Member], replaced: Mapping[str, Member] | None = None) -> int:
    """How many of the pool's replicas the members fill (see ``CapacityMismatch``)."""
    members = tuple(members)
    if replaced is None:
        replaced = live_replacements(members)
    slots = 0
    for m in members:
        if m.leaving or m.failed:
            continue
        if m.node is not None and m.name in replaced:
            continue  # its replacement fills this slot
        slots += 1
    return slots


def drifted_nodes(findings: Iterable[Finding]) -> frozenset[tuple[str, str]]:
    """(cluster, node) of every node with image or configuration drift."""
    return frozenset((f.cluster, f.node) for f in findings if f.kind in NODE_DRIFT_KINDS)


class _Catalog:
    """The image catalog, indexed once per ``find`` and memoising per-fact verdicts."""

    def __init__(self, fleet: Fleet) -> None:
        self.images = fleet.images
        self.facts = {name: image_facts(image) for name, image in self.images.items()}
        self.family: dict[str, tuple[str, ...]] = {}
        for name, image in self.images.items():
            # Catalog order, oldest first; images without a family share the "" family, as
            # Fleet.previous_image treats them.
            self.family[name] = tuple(
                n for n, other in self.images.items() if other.family == image.family
            )
        self._memo: dict[tuple[str, tuple[str, str, str, str], str], _Verdict] = {}
        self.declared = {name: facts_.declared(image) for name, image in self.images.items()}
        self.keys = facts_.Keys.of(fleet)

    def verdict(self, declared: str, facts: tuple[str, str, str, str], booted: str) -> _Verdict:
        key = (declared, facts, booted)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._judge(declared, facts, booted)
        return found

    def _judge(self, declared: str, facts: tuple[str, str, str, str], booted: str) -> _Verdict:
        if booted not in self.images:
            booted = ""
        family = self.family[declared]
        if facts == self.facts[declared]:
            if (
                booted
                and booted != declared
                and self.images[booted].source != self.images[declared].source
            ):
                return _Verdict(outdated_from=booted, baseline=booted, mismatches=())
            return _Verdict(outdated_from="", baseline=declared, mismatches=())
        exact = [name for name in family if self.facts[name] == facts]
        if exact:
            seen = booted if booted in exact else exact[-1]
            return _Verdict(outdated_from=seen, baseline=seen, mismatches=())

        def closeness(name: str) -> tuple[int, int, int, int]:
            score = sum(a == b for a, b in zip(self.facts[name], facts, strict=True))
            return (score, name == booted, name == declared, family.index(name))

        baseline = max(family, key=closeness)
        expected = self.facts[baseline]
        mismatches = tuple(
            (FACT_NAMES[i], expected[i], facts[i]) for i in range(4) if expected[i] != facts[i]
        )
        return _Verdict(
            outdated_from=baseline if baseline != declared else "",
            baseline=baseline,
            mismatches=mismatches,
        )


@dataclass(frozen=True, slots=True)
class _Verdict:
    outdated_from: str  # the catalog image the node is on, when git has moved away from it
    baseline: str  # the image its facts were compared with
    mismatches: tuple[tuple[str, str, str], ...]  # (fact, expected, observed)


def _cluster(
    cluster: ClusterDocument,
    observed: ClusterInventory,
    catalog: _Catalog,
    remediate: Remediation,
) -> list[Finding]:
    out: list[Finding] = []
    pools = {p.name: p for p in cluster.spec.node_pools}
    members = observed.pools()
    declared_names = ", ".join(sorted(pools)) or "(none)"
    replacements: dict[str, dict[str, Member]] = {}  # per declared pool, computed once
    known = facts_.cluster_facts(observed, catalog.keys)  # every node's facts
    for pool_name, pool_members in members.items():
        pool = pools.get(pool_name)
        if pool is None:
            for member in pool_members:
                if member.node is not None:
                    out.append(
                        Finding(
                            kind="UnmanagedNode",
                            cluster=cluster.name,
                            pool=pool_name,
                            node=member.name,
                            fact="pool",
                            expected=declared_names,
                            observed=pool_name or "(none)",
                            severity="warning",
                            remediation="report",
                        )
                    )
            continue
        check = _PoolCheck(cluster.name, pool, catalog, remediate)
        replaced = replacements[pool_name] = live_replacements(pool_members)
        for member in pool_members:
            node = member.node
            if node is None:
                continue
            check.node(member, node, out)
            if (
                node.unschedulable
                and not node.cordoned_by
                and not member.quarantined
                and not member.leaving
                and node.name not in replaced
            ):
                out.append(
                    Finding(
                        kind="StuckCordoned",
                        cluster=cluster.name,
                        pool=pool.name,
                        node=node.name,
                        fact="unschedulable",
                        expected="false",
                        observed="true",
                        severity="warning",
                        remediation="report",
                    )
                )
        for node_name, fact, common, seen in facts_.divergent(
            pool_members, known, check.image_of, catalog.images
        ):
            out.append(
                Finding(
                    kind="FactDivergence",
                    cluster=cluster.name,
                    pool=pool.name,
                    node=node_name,
                    fact=fact,
                    expected=common,
                    observed=seen,
                    severity="warning",
                    remediation="report",
                )
            )
    for pool in cluster.spec.node_pools:
        slots = pool_slots(members.get(pool.name, ()), replacements.get(pool.name))
        if slots != pool.replicas:
            out.append(
                Finding(
                    kind="CapacityMismatch",
                    cluster=cluster.name,
                    pool=pool.name,
                    fact="replicas",
                    expected=str(pool.replicas),
                    observed=str(slots),
                    severity="warning",
                    remediation="scale",
                )
            )
    return out


class _PoolCheck:
    """One pool's declaration, indexed for checking each of its nodes quickly."""

    def __init__(
        self, cluster: str, pool: NodePool, catalog: _Catalog, remediate: Remediation
    ) -> None:
        self.cluster = cluster
        self.pool = pool
        self.catalog = catalog
        self.remediate = remediate
        self.labels = tuple(sorted(pool.labels.items()))
        self.label_set = frozenset(self.labels)
        self.taints = tuple(sorted(NodeTaint(t.key, t.effect, t.value or "") for t in pool.taints))
        self.declared = {(t.key, t.effect) for t in self.taints}
        self.image_of: dict[str, str] = {}  # node -> the catalog image it was compared with

    def node(self, member: Member, node: Node, out: list[Finding]) -> None:
        pool = self.pool
        booted = member.machine.image if member.machine is not None else ""
        verdict = self.catalog.verdict(pool.image, node.facts, booted)
        self.image_of[node.name] = verdict.baseline
        mismatches = verdict.mismatches
        declared = self.catalog.declared[verdict.baseline]
        if declared:
            mismatches = mismatches + tuple(
                (fact, want, have)
                for fact, want in declared
                if (have := facts_.observed(node, fact)) is not None and have != want
            )
        for fact, expected, seen in mismatches:
            out.append(
                _finding(
                    "ImageMismatch",
                    self.cluster,
                    pool.name,
                    node.name,
                    fact,
                    expected,
                    seen,
                    "error",
                    self.remediate,
                    verdict.baseline,
                )
            )
        if verdict.outdated_from:
            out.append(
                _finding(
                    "Outdated",
                    self.cluster,
                    pool.name,
                    node.name,
                    "image",
                    pool.image,
                    verdict.outdated_from,
                    "info",
                    "replace",
                    pool.image,
                )
            )
        if node.taints == self.taints and node.labels.items() >= self.label_set:
            return  # the common case: exactly as declared (a C-speed subset test)
        for fact, expected, seen in self._config(node):
            out.append(
                _finding(
                    "ConfigMismatch",
                    self.cluster,
                    pool.name,
                    node.name,
                    fact,
                    expected,
                    seen,
                    "warning",
                    self.remediate,
                    "",
                )
            )

    def _config(self, node: Node) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for key, want in self.labels:
            have = node.labels.get(key)
            if have != want:
                out.append((f"label {key}", want, MISSING if have is None else have))
        have_taints = {(t.key, t.effect): t for t in node.taints}
        for taint in self.taints:
            seen = have_taints.get((taint.key, taint.effect))
            if seen is None or seen.value != taint.value:
                fact = f"taint {taint.key}:{taint.effect}"
                out.append((fact, str(taint), MISSING if seen is None else str(seen)))
        for extra in node.taints:
            if (
                extra.effect in HARD_EFFECTS
                and (extra.key, extra.effect) not in self.declared
                and not extra.key.startswith(SYSTEM_TAINT_PREFIXES)
            ):
                out.append((f"taint {extra.key}:{extra.effect}", ABSENT, str(extra)))
        return out


def _missing_facts(
    cluster: ClusterDocument,
    observed: ClusterInventory,
    catalog: _Catalog,
    remediate: Remediation,
    ready_by: float,
) -> list[Finding]:
    """ImageMismatch for each declared fact a node Ready since before ``ready_by`` lacks."""
    out: list[Finding] = []
    pools = {p.name: p for p in cluster.spec.node_pools}
    for pool_name, members in observed.pools().items():
        pool = pools.get(pool_name)
        if pool is None:
            continue
        for member in members:
            node = member.node
            if node is None or not node.ready or node.ready_since > ready_by:
                continue  # not Ready for the grace period yet: its missing facts are unknown
            booted = member.machine.image if member.machine is not None else ""
            baseline = catalog.verdict(pool.image, node.facts, booted).baseline
            for fact, want in catalog.declared[baseline]:
                if facts_.observed(node, fact) is None:
                    out.append(
                        _finding(
                            "ImageMismatch",
                            cluster.name,
                            pool.name,
                            node.name,
                            fact,
                            want,
                            MISSING,
                            "error",
                            remediate,
                            baseline,
                        )
                    )
    return out


def _message(f: Finding) -> str:
    if f.kind == "Unknown":
        return f"cluster {f.cluster} could not be observed: {f.observed}"
    if f.kind == "UnmanagedNode":
        if f.observed == "(none)":
            return f"node {f.node} belongs to no pool (declared pools: {f.expected})"
        return f"node {f.node} names pool {f.observed}, which {f.cluster} does not declare"
    if f.kind == "ImageMismatch" and f.observed == MISSING:
        return (
            f"node {f.node} does not report {f.fact}, which image {f.image} declares as "
            f"{f.expected}, though Ready longer than the fact grace period"
        )
    if f.kind == "ImageMismatch":
        return (
            f"node {f.node} reports {f.fact} {f.observed} where image {f.image} has "
            f"{f.expected}: the host was changed in place"
        )
    if f.kind == "FactDivergence":
        return (
            f"node {f.node} reports {f.fact} {f.observed} where most of pool {f.pool} on its "
            f"image report {f.expected}: no image declares it, so it is only reported"
        )
    if f.kind == "Outdated":
        return f"node {f.node} runs image {f.observed}; git now declares {f.expected}"
    if f.kind == "ConfigMismatch":
        if f.expected == ABSENT:
            return f"node {f.node} carries undeclared {f.fact} ({f.observed})"
        if f.observed == MISSING:
            return f"node {f.node} lacks {f.fact} (declared {f.expected})"
        return f"node {f.node} has {f.fact} {f.observed}; the pool declares {f.expected}"
    if f.kind == "CapacityMismatch":
        return f"pool {f.pool} fills {f.observed} of its {f.expected} replicas"
    return f"node {f.node} is cordoned, but not by this controller nor for a replacement"
