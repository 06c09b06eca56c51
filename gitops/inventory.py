"""The observed state of the fleet: nodes, machines and disruption budgets, as frozen values.

Part of the model layer, beside ``gitops.fleet`` (the desired state). In the reconcile cycle it
is what ``observe`` produces and what ``drift.find`` and ``plan.make`` read:

    kube watch caches ──(gitops.kube translates)──▶ Inventory ──▶ drift.find / plan.make

It must never do I/O, read a clock or hold a ``kubernetes`` object: the kube adapter translates
Kubernetes objects into these types at its boundary and they go no further. Every container is
normalised on construction (sorted by name, labels in a sorted frozen mapping), so two
observations of the same cluster compare equal and hash to the same ``digest()`` whatever order
the API listed the objects in.

What the adapter fills in, field by field, is written on each class. Times are float seconds
since the epoch (``creationTimestamp``, a condition's ``lastTransitionTime``); heartbeat times
are deliberately absent: they change every few seconds and would make every plan id new.

How the executor's progress shows up here (DESIGN section 5, issue 5): a replacement Machine
carries ``fleet.gitops.io/replaces: <old node>`` and ``fleet.gitops.io/phase``; an old node the
controller cordoned carries ``fleet.gitops.io/cordoned-by`` and, once its retirement began, the
phase ``cordoned``/``draining``/``retired`` on the Node or its Machine; a replacement that failed
carries ``fleet.gitops.io/failed: <reason>``. ``Member`` joins a node with its machine and answers
the questions the planner asks about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    FAILED_ANNOTATION,
    IMAGE_ANNOTATION,
    MACHINE_ANNOTATION,
    PHASE_ANNOTATION,
    PLAN_ID_ANNOTATION,
    POOL_ANNOTATION,
    POOL_LABEL,
    QUARANTINE_LABEL,
    REPLACES_ANNOTATION,
    ZONE_LABEL,
)

# Phases (fleet.gitops.io/phase) in which an old node is on its way out: it no longer counts
# towards its pool's capacity and its retirement must be carried on, not started again.
LEAVING_PHASES = frozenset({"cordoned", "draining", "retired"})
T = TypeVar("T")


class FrozenMap(dict[str, str]):
    """An immutable, hashable string mapping kept in sorted key order (labels, annotations).

    Sorted so that iteration, ``repr`` and therefore ``Inventory.digest`` never depend on the
    order the API server returned the keys in. A ``dict`` underneath so that lookups, which
    the core does for every node, run at C speed; every mutator raises.
    """

    __slots__ = ()

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        super().__init__(sorted(pairs))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({dict.__repr__(self)})"

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("FrozenMap is immutable")

    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly


EMPTY = FrozenMap()


def _frozen(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


def _plain(mapping: Mapping[str, str]) -> Any:
    return dict.copy(mapping) if isinstance(mapping, FrozenMap) else dict(sorted(mapping.items()))


def _pdb(p: PodDisruptionBudget) -> tuple[Any, ...]:
    return (
        p.namespace,
        p.name,
        p.disruptions_allowed,
        p.current_healthy,
        p.desired_healthy,
        p.expected_pods,
    )


def _content(canonical: tuple[Any, ...]) -> str:
    # The repr of plain tuples, strings, numbers and (sorted) dicts is deterministic and built
    # in C: far cheaper than JSON or a dataclass repr.
    return sha256_hex(repr(canonical))


# hashlib lets go of the interpreter lock to hash more than 2,047 bytes at once; taking it
# back waits for whichever thread got it (up to the 5 ms switch interval), so one digest of
# a cluster in the executor's loop cost milliseconds whenever a watch or a step was busy.
# Fed in pieces below that size, it keeps the lock and costs what the hashing costs.
_GIL_FREE_CHUNK = 2047


def sha256_hex(text: str) -> str:
    """The hex SHA-256 of ``text`` (UTF-8), computed without releasing the interpreter lock."""
    data = memoryview(text.encode())
    digest = hashlib.sha256()
    for start in range(0, len(data), _GIL_FREE_CHUNK):
        digest.update(data[start : start + _GIL_FREE_CHUNK])
    return digest.hexdigest()


def _set(obj: object, name: str, value: object) -> None:
    # Normalising a frozen dataclass in __post_init__ is the one sanctioned use of this.
    object.__setattr__(obj, name, value)


class NodeTaint(NamedTuple):
    """One ``spec.taints`` entry of a Node; ``value`` is "" when the taint has none.

    Named tuples (here and for conditions) because there are tens of thousands
    of them: they compare, sort and hash at C speed, and they are immutable all the same.
    """

    key: str
    effect: str
    value: str = ""

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


class Condition(NamedTuple):
    """One ``status.conditions`` entry of a Node (without its heartbeat time), or of a Cluster
    API object (a ``metav1.Condition``, whichever API version it was read in)."""

    type: str
    status: str  # "True", "False" or "Unknown", as in the API
    reason: str = ""
    message: str = ""
    last_transition: float = 0.0


class ObjectRef(NamedTuple):
    """A Cluster API reference (infrastructure, bootstrap config), read from either shape:
    v1beta1 names ``apiVersion`` (and ``namespace``), v1beta2 only ``apiGroup``; the namespace
    is then the referring object's."""

    group: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind}.{self.group} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PodDisruptionBudget:
    """A policy/v1 PodDisruptionBudget's status, as the disruption controller computed it."""

    namespace: str
    name: str
    disruptions_allowed: int
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0
    # Which version of the object this is (not content: left out of equality and digests).
    # The executor retries a drain a budget refused as soon as the budget has a newer one.
    resource_version: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A workload cluster's Node, translated.

    ``pool`` comes from the ``node.cluster.x-k8s.io/pool`` label, else from the owning Machine
    (``ClusterInventory.build`` fills it in); "" when neither names one. ``zone`` from
    ``topology.kubernetes.io/zone``, else the Machine's failure domain. The four nodeInfo facts are
    copied verbatim. ``ready`` is the Ready condition being True and ``ready_since`` its last
    transition. ``unschedulable`` is ``spec.unschedulable`` (cordoned). ``machine`` is the owning
    Machine's name ("" when none).
    """

    name: str
    pool: str = ""
    zone: str = ""
    os_image: str = ""
    kernel_version: str = ""
    kubelet_version: str = ""
    container_runtime_version: str = ""
    labels: Mapping[str, str] = EMPTY
    annotations: Mapping[str, str] = EMPTY
    taints: tuple[NodeTaint, ...] = ()
    conditions: tuple[Condition, ...] = ()
    ready: bool = False
    ready_since: float = 0.0
    unschedulable: bool = False
    created: float = 0.0
    machine: str = ""
    deleting: bool = False
    content: str = field(default="", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        labels = _frozen(self.labels)
        annotations = _frozen(self.annotations)
        _set(self, "labels", labels)
        _set(self, "annotations", annotations)
        _set(self, "taints", tuple(sorted(self.taints)))
        _set(self, "conditions", tuple(sorted(self.conditions)))
        if not self.pool:
            _set(self, "pool", labels.get(POOL_LABEL, ""))
        if not self.zone:
            _set(self, "zone", labels.get(ZONE_LABEL, ""))
        if not self.machine:
            _set(self, "machine", annotations.get(MACHINE_ANNOTATION, ""))
        _set(self, "content", _content(self.canonical()))

    def canonical(self) -> tuple[Any, ...]:
        """Every field as plain values, for ``digest``: its repr is built at C speed."""
        return (
            self.name,
            self.pool,
            self.zone,
            self.os_image,
            self.kernel_version,
            self.kubelet_version,
            self.container_runtime_version,
            _plain(self.labels),
            _plain(self.annotations),
            tuple(map(tuple, self.taints)),
            tuple(map(tuple, self.conditions)),
            self.ready,
            self.ready_since,
            self.unschedulable,
            self.created,
            self.machine,
            self.deleting,
        )

    @property
    def facts(self) -> tuple[str, str, str, str]:
        """(osImage, kernelVersion, kubeletVersion, containerRuntimeVersion), as ``image_facts``."""
        return (
            self.os_image,
            self.kernel_version,
            self.kubelet_version,
            self.container_runtime_version,
        )

    @property
    def available(self) -> bool:
        """Ready, schedulable and not being deleted: what the availability budget counts."""
        return self.ready and not self.unschedulable and not self.deleting

    @property
    def cordoned_by(self) -> str:
        return self.annotations.get(CORDONED_BY_ANNOTATION, "")

    @property
    def phase(self) -> str:
        return self.annotations.get(PHASE_ANNOTATION, "")

    @property
    def quarantined(self) -> bool:
        return QUARANTINE_LABEL in self.labels


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    """A Cluster API Machine in the management cluster, translated.

    ``pool`` comes from the ``node.cluster.x-k8s.io/pool`` label, else the
    ``fleet.gitops.io/pool`` annotation. ``phase`` is CAPI's ``status.phase`` (Pending,
    Provisioning, Provisioned, Running, Deleting, Failed); the controller's own progress is
    ``fleet_phase``. ``node`` is ``status.nodeRef.name``; ``zone`` is ``spec.failureDomain``;
    ``image`` the catalog image it was created from (``fleet.gitops.io/image``) and ``source``
    what its infrastructure object boots, when known. ``deleting``: a deletionTimestamp is set.
    """

    name: str
    namespace: str = ""
    pool: str = ""
    phase: str = ""
    node: str = ""
    zone: str = ""
    version: str = ""
    image: str = ""
    source: str = ""
    labels: Mapping[str, str] = EMPTY
    annotations: Mapping[str, str] = EMPTY
    created: float = 0.0
    deleting: bool = False
    # Read alike from v1beta1 and v1beta2 (``gitops.kube.capi``). Left out of ``canonical``
    # (and so of the plan id): the planner decides on ``phase`` and ``node``, and a plan id
    # that moved with every status write of Cluster API would rename a retried create.
    infrastructure: ObjectRef | None = None
    bootstrap: ObjectRef | None = None
    drain_timeout: float | None = None  # Cluster API's own drain bound; None: unbounded
    conditions: tuple[Condition, ...] = ()  # metav1.Conditions (Ready, UpToDate, Deleting...)
    infrastructure_ready: bool = False
    failure: str = ""  # failureReason: failureMessage, when Cluster API reported one
    content: str = field(default="", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        labels = _frozen(self.labels)
        annotations = _frozen(self.annotations)
        _set(self, "labels", labels)
        _set(self, "annotations", annotations)
        if not self.pool:
            _set(self, "pool", labels.get(POOL_LABEL) or annotations.get(POOL_ANNOTATION, ""))
        if not self.image:
            _set(self, "image", annotations.get(IMAGE_ANNOTATION, ""))
        _set(self, "content", _content(self.canonical()))

    def canonical(self) -> tuple[Any, ...]:
        """Every field as plain values, for ``digest``."""
        return (
            self.name,
            self.namespace,
            self.pool,
            self.phase,
            self.node,
            self.zone,
            self.version,
            self.image,
            self.source,
            _plain(self.labels),
            _plain(self.annotations),
            self.created,
            self.deleting,
        )

    def condition(self, type_: str) -> Condition | None:
        """The Cluster API condition ``type_`` (v1beta2 meaning), when reported."""
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def replaces(self) -> str:
        """The node this machine was created to replace ("" for a scale-up or a foreign one)."""
        return self.annotations.get(REPLACES_ANNOTATION, "")

    @property
    def fleet_phase(self) -> str:
        return self.annotations.get(PHASE_ANNOTATION, "")

    @property
    def failed(self) -> str:
        """Why the controller marked this machine failed ("" when it did not)."""
        return self.annotations.get(FAILED_ANNOTATION, "")

    @property
    def plan_id(self) -> str:
        return self.annotations.get(PLAN_ID_ANNOTATION, "")

    @property
    def created_by_controller(self) -> bool:
        return PLAN_ID_ANNOTATION in self.annotations


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDeployment:
    """A Cluster API MachineDeployment in the management cluster, translated (either version).

    ``template`` is the name of the infrastructure template ``spec.template.spec
    .infrastructureRef`` names; ``max_surge``/``max_unavailable`` the rolling update's, as written
    (int or percent, "" when unset). The counters are v1beta2's: ``up_to_date`` is
    ``upToDateReplicas`` (v1beta1 servers: ``updatedReplicas``), ``available`` is
    ``availableReplicas``; ``observed_generation`` against ``generation`` says whether the status
    speaks of the current spec. ``image`` is the ``fleet.gitops.io/image`` annotation: the
    catalog image gitops last pointed it at ("" before gitops rolled it).
    """

    name: str
    namespace: str = ""
    template: str = ""
    replicas: int = 0
    max_surge: str = ""
    max_unavailable: str = ""
    paused: bool = False
    generation: int = 0
    observed_generation: int = 0
    status_replicas: int = 0
    up_to_date: int = 0
    available: int = 0
    topology_worker: str = ""  # the topology.cluster.x-k8s.io/deployment-name label
    min_ready_seconds: int = 0  # how long a new Machine's node is Ready before it counts
    annotations: Mapping[str, str] = EMPTY
    content: str = field(default="", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _set(self, "annotations", _frozen(self.annotations))
        _set(self, "content", _content(self.canonical()))

    def canonical(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.namespace,
            self.template,
            self.replicas,
            self.max_surge,
            self.max_unavailable,
            self.paused,
            self.generation,
            self.observed_generation,
            self.status_replicas,
            self.up_to_date,
            self.available,
            self.topology_worker,
            self.min_ready_seconds,
            _plain(self.annotations),
        )

    @property
    def image(self) -> str:
        return self.annotations.get(IMAGE_ANNOTATION, "")

    @property
    def rolled(self) -> bool:
        """Cluster API's rule for a finished rollout: the status speaks of the current spec, and
        every replica is up to date and available (no extra Machine left)."""
        return (
            self.observed_generation >= self.generation
            and self.up_to_date == self.available == self.status_replicas == self.replicas
        )


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """One member of a node pool: a node, its machine, or both, with the facts the core asks.

    Built once per observation by ``ClusterInventory.pools`` (``Member.of``); the derived
    fields are computed there because the planner reads them for every node of the fleet.
    Compared by identity: two members are the same only if they are the same object.
    """

    node: Node | None
    machine: Machine | None
    name: str  # the node's name, or the machine's while it has no node
    created: float  # the node's creation, else the machine's
    zone: str
    ready: bool
    available: bool  # Ready, schedulable, not deleting
    deleting: bool  # the node or its machine has a deletionTimestamp
    phase: str  # fleet.gitops.io/phase of the node, else of its machine
    leaving: bool  # being retired or deleted: no longer part of the pool's capacity
    replaces: str  # the node this member's machine was created to replace
    failed: str  # why the controller marked its machine failed
    quarantined: bool
    by_controller: bool  # its machine was created by this controller

    @classmethod
    def of(cls, node: Node | None, machine: Machine | None) -> Member:
        # Annotations are read directly rather than through the properties: this runs for
        # every node of the fleet on every reconcile.
        if machine is not None:
            ma = machine.annotations
            m_deleting = machine.deleting
            phase = ma.get(PHASE_ANNOTATION, "")
            replaces = ma.get(REPLACES_ANNOTATION, "")
            failed = ma.get(FAILED_ANNOTATION, "")
            by_controller = PLAN_ID_ANNOTATION in ma
        else:
            m_deleting, phase, replaces, failed, by_controller = False, "", "", "", False
        if node is not None:
            deleting = m_deleting or node.deleting
            phase = node.annotations.get(PHASE_ANNOTATION, "") or phase
            return _MemberInit(
                node,
                machine,
                node.name,
                node.created,
                node.zone or (machine.zone if machine is not None else ""),
                node.ready,
                node.ready and not node.unschedulable and not deleting,
                deleting,
                phase,
                deleting or phase in LEAVING_PHASES,
                replaces,
                failed,
                QUARANTINE_LABEL in node.labels,
                by_controller,
            )  # type: ignore[return-value]
        if machine is None:
            raise ValueError("a member needs a node or a machine")
        return _MemberInit(
            None,
            machine,
            machine.name,
            machine.created,
            machine.zone,
            False,
            False,
            m_deleting,
            phase,
            m_deleting or phase in LEAVING_PHASES,
            replaces,
            failed,
            False,
            by_controller,
        )  # type: ignore[return-value]


class _MemberInit:
    """Builds a ``Member`` at a fifth of the frozen dataclass's cost (one per node, per observation).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, a call per
    field: with 14 fields and 50,000 nodes that was a tenth of a fleet's plan. This class has
    exactly ``Member``'s slots, filled here by plain stores, and then turns the instance into
    the ``Member`` it is (``__class__`` assignment, which Python allows between identical
    layouts and refuses otherwise). What ``Member.of`` returns is an ordinary, immutable
    ``Member``; arguments are positional, in field order.
    """

    __slots__ = Member.__slots__

    def __init__(
        self,
        node: Node | None,
        machine: Machine | None,
        name: str,
        created: float,
        zone: str,
        ready: bool,
        available: bool,
        deleting: bool,
        phase: str,
        leaving: bool,
        replaces: str,
        failed: str,
        quarantined: bool,
        by_controller: bool,
    ) -> None:
        self.node = node
        self.machine = machine
        self.name = name
        self.created = created
        self.zone = zone
        self.ready = ready
        self.available = available
        self.deleting = deleting
        self.phase = phase
        self.leaving = leaving
        self.replaces = replaces
        self.failed = failed
        self.quarantined = quarantined
        self.by_controller = by_controller
        self.__class__ = Member  # type: ignore[assignment]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterInventory:
    """Everything observed in one workload cluster (and its Machines in the management cluster).

    ``reachable=False`` with ``error`` set says observation failed; the other fields are then
    empty and nothing about the cluster may be concluded (drift reports it as Unknown).
    """

    name: str
    reachable: bool = True
    error: str = ""
    nodes: tuple[Node, ...] = ()
    machines: tuple[Machine, ...] = ()
    pdbs: tuple[PodDisruptionBudget, ...] = ()
    # The MachineDeployments of the cluster's machines namespace (MachineDeployment mode).
    deployments: tuple[MachineDeployment, ...] = ()
    _node_index: dict[str, Node] = field(init=False, repr=False, compare=False, hash=False)
    _pdb_index: dict[str, PodDisruptionBudget] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _pools: dict[str, tuple[Member, ...]] | None = field(
        init=False, repr=False, compare=False, hash=False
    )
    _digest: list[str] = field(init=False, repr=False, compare=False, hash=False)
    _derived: dict[str, tuple[tuple[object, ...], Any]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        _set(self, "nodes", tuple(sorted(self.nodes, key=lambda n: n.name)))
        _set(self, "machines", tuple(sorted(self.machines, key=lambda m: (m.namespace, m.name))))
        _set(self, "pdbs", tuple(sorted(self.pdbs, key=lambda p: (p.namespace, p.name))))
        _set(self, "deployments", tuple(sorted(self.deployments, key=lambda d: d.name)))
        _set(self, "_node_index", {n.name: n for n in self.nodes})
        _set(self, "_pdb_index", {p.key: p for p in self.pdbs})
        _set(self, "_pools", None)
        _set(self, "_digest", [])
        _set(self, "_derived", {})

    @classmethod
    def build(
        cls,
        name: str,
        nodes: Iterable[Node],
        machines: Iterable[Machine] = (),
        pdbs: Iterable[PodDisruptionBudget] = (),
        deployments: Iterable[MachineDeployment] = (),
    ) -> ClusterInventory:
        """Join nodes with their machines, as the kube adapter should construct a cluster.

        A node learns its machine from the machine's nodeRef when its own annotation is absent,
        and its pool and zone from that machine when its labels do not name them.
        """
        machine_list = list(machines)
        by_node = {m.node: m for m in sorted(machine_list, key=lambda m: m.name) if m.node}
        by_name = {m.name: m for m in machine_list}
        joined = []
        for node in nodes:
            machine = by_name.get(node.machine) if node.machine else by_node.get(node.name)
            if machine is not None and not (node.machine and node.pool and node.zone):
                node = replace(
                    node,
                    machine=node.machine or machine.name,
                    pool=node.pool or machine.pool,
                    zone=node.zone or machine.zone,
                )
            joined.append(node)
        return cls(
            name=name,
            nodes=tuple(joined),
            machines=tuple(machine_list),
            pdbs=tuple(pdbs),
            deployments=tuple(deployments),
        )

    @classmethod
    def unreachable(cls, name: str, error: str) -> ClusterInventory:
        return cls(name=name, reachable=False, error=error or "unreachable")

    def node(self, name: str) -> Node | None:
        return self._node_index.get(name)

    def derived(
        self,
        key: str,
        inputs: tuple[object, ...],
        compute: Callable[[], T],
        *,
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """``compute()``, a pure function of this cluster and ``inputs``, computed once.

        The adapter hands the planner the same ``ClusterInventory`` object for as long as a
        cluster does not change, so what is derived from it (drift findings, the analysis of
        a pool) is computed once per change rather than once per reconcile. ``inputs`` are
        compared by identity: the same fleet objects give the same value. A value for which
        ``keep`` says no is returned but not remembered. Callers treat values as read-only.
        """
        hit = self._derived.get(key)
        if (
            hit is not None
            and len(hit[0]) == len(inputs)
            and all(a is b for a, b in zip(hit[0], inputs, strict=True))
        ):
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        if keep is None or keep(value):
            self._derived[key] = (inputs, value)
        return value

    def digest(self) -> str:
        """A stable hex SHA-256 of this cluster's content."""
        if not self._digest:
            # Each node and machine hashed its own content when it was built (once per watch
            # event in the adapter), so a digest per reconcile is one pass over short strings.
            parts = [repr((self.name, self.reachable, self.error))]
            parts += [n.content for n in self.nodes]
            parts += [m.content for m in self.machines]
            parts += [repr(_pdb(p)) for p in self.pdbs]
            parts += [d.content for d in self.deployments]
            self._digest.append(sha256_hex("\n".join(parts)))
        return self._digest[0]

    def pdb(self, key: str) -> PodDisruptionBudget | None:
        return self._pdb_index.get(key)

    def deployment(self, name: str) -> MachineDeployment | None:
        return next((d for d in self.deployments if d.name == name), None)

    def topology_deployment(self, worker: str) -> MachineDeployment | None:
        """The MachineDeployment the topology controller manages for ``worker``."""
        return next((d for d in self.deployments if d.topology_worker == worker), None)

    def pools(self) -> Mapping[str, tuple[Member, ...]]:
        """Members of every pool named by a node or machine, sorted by member name.

        A node belongs to the pool it names; a machine with no node yet (provisioning) belongs
        to its own pool. Nodes with no pool are under the key "".
        """
        if self._pools is not None:
            return self._pools
        machines = {m.name: m for m in self.machines}
        claimed: set[str] = set()
        grouped: dict[str, list[Member]] = {}
        for node in self.nodes:
            machine = machines.get(node.machine) if node.machine else None
            if machine is not None:
                claimed.add(machine.name)
            grouped.setdefault(node.pool, []).append(Member.of(node, machine))
        for machine in self.machines:
            if machine.name in claimed:
                continue
            # A machine whose node is not (yet or any more) observed still occupies a slot of
            # the surge budget: count it, so that nothing is created on top of it.
            grouped.setdefault(machine.pool, []).append(Member.of(None, machine))
        by_name = attrgetter("name")
        pools = {
            pool: tuple(sorted(members, key=by_name)) for pool, members in sorted(grouped.items())
        }
        _set(self, "_pools", pools)
        return pools

    def members(self, pool: str) -> tuple[Member, ...]:
        return self.pools().get(pool, ())


class Requirement(NamedTuple):
    """One ``matchExpressions`` entry of a label selector."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


def selector_matches(
    match_labels: Mapping[str, str], expressions: Iterable[Requirement], labels: Mapping[str, str]
) -> bool:
    """Whether a ``metav1.LabelSelector`` (its two parts) selects ``labels``; an empty one
    selects everything, as ``LabelSelectorAsSelector`` makes it."""
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for req in expressions:
        present = req.key in labels
        if (
            (req.operator == "In" and (not present or labels[req.key] not in req.values))
            or (req.operator == "NotIn" and present and labels[req.key] in req.values)
            or (req.operator == "Exists" and not present)
            or (req.operator == "DoesNotExist" and present)
        ):
            return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineOwner:
    """A Cluster API MachineSet or MachineDeployment and the Machines its selector takes.

    A MachineSet adopts every owner-less Machine of its cluster (``spec.clusterName``) in its
    namespace that its selector matches, and then scales it like its own; a MachineDeployment's
    selector is what its MachineSets' selectors start from. Read alike from v1beta1 and v1beta2
    (the selector did not change between them).
    """

    kind: str  # MachineSet or MachineDeployment
    namespace: str
    name: str
    cluster: str  # spec.clusterName
    match_labels: Mapping[str, str] = EMPTY
    match_expressions: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "match_labels", _frozen(self.match_labels))

    def selects(self, labels: Mapping[str, str]) -> bool:
        return selector_matches(self.match_labels, self.match_expressions, labels)

    def selector(self) -> str:
        """The selector as kubectl prints it: "a=b,c in (d,e)"."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            if req.operator in ("In", "NotIn"):
                parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
            else:
                parts.append(req.key if req.operator == "Exists" else f"!{req.key}")
        return ",".join(parts) or "(everything)"

    def canonical(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.namespace,
            self.name,
            self.cluster,
            _plain(self.match_labels),
            tuple(tuple(r[:2]) + r.values for r in self.match_expressions),
        )


@dataclass(frozen=True, slots=True)
class Inventory:
    """The observed fleet: one ``ClusterInventory`` per cluster, sorted by name, and the
    management cluster's MachineSets and MachineDeployments (``owners``), which decide which
    Machines Cluster API would adopt."""

    clusters: tuple[ClusterInventory, ...] = ()
    owners: tuple[MachineOwner, ...] = ()
    _index: dict[str, ClusterInventory] = field(init=False, repr=False, compare=False, hash=False)
    _digest: list[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _set(self, "clusters", tuple(sorted(self.clusters, key=lambda c: c.name)))
        key = attrgetter("namespace", "kind", "name")
        _set(self, "owners", tuple(sorted(self.owners, key=key)))
        _set(self, "_index", {c.name: c for c in self.clusters})
        _set(self, "_digest", [])

    def cluster(self, name: str) -> ClusterInventory | None:
        return self._index.get(name)

    def digest(self) -> str:
        """A stable hex SHA-256 of the whole content (equal inventories, equal digests)."""
        if not self._digest:
            text = "\n".join(f"{c.name} {c.digest()}" for c in self.clusters)
            if self.owners:  # absent from a fleet without any: its digests stay as they were
                text += "\n" + "\n".join(repr(o.canonical()) for o in self.owners)
            self._digest.append(sha256_hex(text))
        return self._digest[0]

    @property
    def nodes(self) -> int:
        return sum(len(c.nodes) for c in self.clusters)
