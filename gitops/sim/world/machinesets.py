"""Cluster API's MachineSet controller, simulated: keep ``spec.replicas`` Machines, adopt
owner-less Machines the selector matches, delete the surplus in upstream's order.

Tool layer (``gitops.sim.world``), part of the physics (``physics.Physics``). Level-triggered:
any change to a MachineSet, MachineDeployment or Machine of a namespace marks the namespace
dirty, and ``_reconcile_capi`` reconciles its sets from what the store holds (read in v1beta2,
the storage version, as the upstream controllers read it). A new Machine is made as upstream's
MachineSet makes it: its ``SimMachine`` cloned from the template's infrastructure template, the
set's template labels plus ``cluster.x-k8s.io/set-name`` and ``cluster.x-k8s.io/deployment-name``,
owned by the set. Surplus Machines are deleted (their finalizer then runs the machine
controller's drain, PDBs honoured): those annotated ``cluster.x-k8s.io/delete-machine`` first,
then unhealthy ones, then by ``spec.deletion.order`` (Random, made deterministic here: by a hash
of the name; Newest; Oldest). It must never write a MachineDeployment.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

from gitops.fleet.wellknown import CLUSTER_NAME_LABEL, POOL_LABEL
from gitops.sim.api.resources import MACHINES_V1BETA2, MACHINESETS, SIMMACHINES, SIMMACHINETEMPLATES
from gitops.sim.world import capi
from gitops.sim.world import seed as seed_
from gitops.sim.world.base import Obj, PhysicsBase, key_of

MGMT = seed_.MANAGEMENT


def _conditions(status: Obj) -> dict[str, Obj]:
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def is_deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def ready_since(machine: Obj) -> float | None:
    """When a Machine (v1beta2 view) last became Ready, None when it is not Ready."""
    ready = _conditions(machine.get("status") or {}).get("Ready") or {}
    if ready.get("status") != "True" or is_deleting(machine):
        return None
    return seed_.parse_rfc3339(str(ready.get("lastTransitionTime")))


def is_available(machine: Obj, min_ready: int, now: float) -> bool:
    since = ready_since(machine)
    return since is not None and now - since >= min_ready


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    if not wanted and not selector.get("matchExpressions"):
        return False  # an empty selector adopts nothing
    for key, value in wanted.items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        present, value = req.get("key") in labels, labels.get(req.get("key"))
        op, values = req.get("operator"), req.get("values") or []
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and present and value in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _up_to_date(machine: Obj) -> bool:
    """A Machine's UpToDate condition (absent: a Machine just made from its set's template)."""
    cond = _conditions(machine.get("status") or {}).get("UpToDate")
    return cond is None or cond.get("status") == "True"


def owned_by(machine: Obj, owner: Obj) -> bool:
    ref = capi.controller_of(machine)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


def deletion_priority(machine: Obj, order: str) -> tuple[Any, ...]:
    """Sort key of a set's Machines for scale-down, most deletable first (upstream's
    ``deletePriority``: the delete annotation, then unhealthy, then the order)."""
    meta = machine["metadata"]
    annotated = capi.DELETE_MACHINE_ANNOTATION in (meta.get("annotations") or {})
    unhealthy = ready_since(machine) is None
    created = seed_.parse_rfc3339(str(meta.get("creationTimestamp")))
    if order == "Newest":
        rank: Any = -created
    elif order == "Oldest":
        rank = created
    else:  # Random: a stable pseudo-random order, so that runs repeat
        rank = capi.fnv32a(str(meta["name"]).encode())
    return (not annotated, not unhealthy, rank, meta["name"])


class MachineSetController(PhysicsBase):
    """See the module docstring; ``_reconcile_machinesets(namespace)`` is its entry point."""

    def _reconcile_machinesets(self, ns: str) -> None:
        sets = self.store.list(MGMT, MACHINESETS, ns)[0]
        if not sets:
            return
        machines = self.store.list(MGMT, MACHINES_V1BETA2, ns)[0]
        for ms in sets:
            if not is_deleting(ms):
                machines = self._adopt(ms, machines)
        for ms in sets:
            if not is_deleting(ms):
                self._sync_replicas(ms, [m for m in machines if owned_by(m, ms)])
        machines = self.store.list(MGMT, MACHINES_V1BETA2, ns)[0]
        for ms in sets:
            self._machineset_status(ms, [m for m in machines if owned_by(m, ms)])

    def _adopt(self, ms: Obj, machines: list[Obj]) -> list[Obj]:
        """Owner-less Machines the set's selector matches become the set's, as upstream's
        MachineSet controller adopts them (why gitops' standalone Machines must not match)."""
        out = []
        for machine in machines:
            labels = machine["metadata"].get("labels") or {}
            if (
                capi.controller_of(machine) is None
                and not is_deleting(machine)
                and machine["spec"].get("clusterName") == ms["spec"]["clusterName"]
                and selector_matches(ms["spec"].get("selector") or {}, labels)
            ):
                ref = capi.owner_ref(ms)

                def adopt(o: Obj, ref: Obj = ref) -> Obj:
                    meta = o["metadata"]
                    if capi.controller_of(o) is None:
                        meta["ownerReferences"] = [*(meta.get("ownerReferences") or []), ref]
                    return o

                machine = self._write(adopt, MGMT, MACHINES_V1BETA2, key_of(machine)) or machine
            out.append(machine)
        return out

    def _sync_replicas(self, ms: Obj, owned: list[Obj]) -> None:
        active = [m for m in owned if not is_deleting(m)]
        diff = len(active) - int(ms["spec"].get("replicas", 1))
        if diff < 0:
            for _ in range(-diff):
                if not self._create_machine(ms, active):
                    return
        elif diff > 0:
            order = (ms["spec"].get("deletion") or {}).get("order") or "Random"
            for machine in sorted(active, key=lambda m: deletion_priority(m, order))[:diff]:
                self._delete(MGMT, MACHINES_V1BETA2, key_of(machine))

    def _create_machine(self, ms: Obj, active: list[Obj]) -> bool:
        ns = ms["metadata"]["namespace"]
        template = copy.deepcopy(ms["spec"]["template"])
        ref = template["spec"].get("infrastructureRef") or {}
        source = self._get(MGMT, SIMMACHINETEMPLATES, ns, ref.get("name", ""))
        if source is None:
            return False  # the template is not there (yet): nothing to clone
        labels = capi.machine_labels(ms)
        name = self._machine_name(ns, ms["metadata"]["name"])
        spec = template["spec"]
        spec["infrastructureRef"] = {
            "apiGroup": capi.INFRA_GROUP,
            "kind": "SimMachine",
            "name": name,
        }
        if not spec.get("failureDomain"):
            zone = self._least_used_zone(labels, active)
            if zone:
                spec["failureDomain"] = zone
        machine: Obj = {
            "apiVersion": capi.API_VERSION,
            "kind": "Machine",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [capi.owner_ref(ms)],
                "finalizers": [seed_.MACHINE_FINALIZER],
            },
            "spec": spec,
        }
        annotations = (template.get("metadata") or {}).get("annotations")
        if annotations:
            machine["metadata"]["annotations"] = dict(annotations)
        created = self._create(MGMT, MACHINES_V1BETA2, machine)
        infra = seed_.sim_machine(
            namespace=ns,
            name=name,
            cluster=spec.get("clusterName", ""),
            pool=labels.get(POOL_LABEL, ""),
            spec=dict(((source.get("spec") or {}).get("template") or {}).get("spec") or {}),
            template=source["metadata"]["name"],
            contract=self.infra_contract,
        )
        infra["metadata"]["ownerReferences"] = [capi.owner_ref(created)]
        self._create(MGMT, SIMMACHINES, infra)
        active.append(created)
        return True

    def _machine_name(self, ns: str, base: str) -> str:
        """``<set>-<5 hex>``, upstream's default Machine naming, unique in the namespace."""
        prefix = base[: 63 - 6].rstrip("-")
        while True:
            name = f"{prefix}-{self.rng.getrandbits(20):05x}"
            if self._get(MGMT, MACHINES_V1BETA2, ns, name) is None:
                return name

    def _least_used_zone(self, labels: dict[str, str], active: list[Obj]) -> str:
        """Spread a pool's Machines over its zones (the fleet declares them), as failure
        domains spread them."""
        cluster = self.fleet.cluster(labels.get(CLUSTER_NAME_LABEL, ""))
        pool = cluster.pool(labels.get(POOL_LABEL, "")) if cluster is not None else None
        if pool is None:
            return ""
        used = dict.fromkeys(pool.zones, 0)
        for m in active:
            zone = m["spec"].get("failureDomain")
            if zone in used:
                used[zone] += 1
        return min(pool.zones, key=lambda z: (used[z], pool.zones.index(z)))

    def _machineset_status(self, ms: Obj, owned: list[Obj]) -> None:
        now = self.clock.now()
        stamp = seed_.rfc3339(now)
        min_ready = int(
            (ms["spec"].get("template") or {}).get("spec", {}).get("minReadySeconds") or 0
        )
        active = [m for m in owned if not is_deleting(m)]
        ready = sum(1 for m in active if ready_since(m) is not None)
        available = sum(1 for m in active if is_available(m, min_ready, now))
        self._recheck_availability(ms["metadata"]["namespace"], active, min_ready, now)
        desired = int(ms["spec"].get("replicas", 1))
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(
                ((ms["spec"].get("selector") or {}).get("matchLabels") or {}).items()
            )
        )
        old = ms.get("status") or {}
        conds = [
            (
                "MachinesReady",
                ready == len(active),
                "Ready" if ready == len(active) else "NotReady",
            ),
            (
                "ScalingUp",
                len(active) < desired,
                "ScalingUp" if len(active) < desired else "NotScalingUp",
            ),
            (
                "ScalingDown",
                len(owned) > desired,
                "ScalingDown" if len(owned) > desired else "NotScalingDown",
            ),
            (
                "MachinesUpToDate",
                all(_up_to_date(m) for m in active),
                "UpToDate" if all(_up_to_date(m) for m in active) else "NotUpToDate",
            ),
            ("Paused", False, "NotPaused"),
        ]
        status: Obj = {
            "selector": selector,
            "replicas": len(owned),
            "readyReplicas": ready,
            "availableReplicas": available,
            "upToDateReplicas": sum(1 for m in active if _up_to_date(m)),
            "observedGeneration": int(ms["metadata"].get("generation") or 1),
            "conditions": keep_transitions(old, conds, stamp),
            "deprecated": {
                "v1beta1": {
                    "fullyLabeledReplicas": len(owned),
                    "readyReplicas": ready,
                    "availableReplicas": available,
                }
            },
        }
        if status != old:
            self._write(
                lambda o: {**o, "status": status},
                MGMT,
                MACHINESETS,
                key_of(ms),
                subresource="status",
            )

    def _recheck_availability(self, ns: str, active: list[Obj], min_ready: int, now: float) -> None:
        """Machines Ready but not yet for minReadySeconds become available later: look again
        then (nothing else would wake the controller)."""
        if min_ready <= 0:
            return
        for m in active:
            since = ready_since(m)
            if since is not None and now - since < min_ready:
                due = (ns, since + min_ready)
                if due not in self._capi_wakeups:  # one wake-up per moment, however often
                    self._capi_wakeups.add(due)
                    self.scheduler.call_later(since + min_ready - now, partial(self._wake, due))

    def _wake(self, due: tuple[str, float]) -> None:
        self._capi_wakeups.discard(due)
        self._dirty_capi.add(due[0])


def keep_transitions(old: Obj, wanted: list[tuple[str, bool, str]], stamp: str) -> list[Obj]:
    """v1beta2 conditions, keeping each one's lastTransitionTime while its status holds."""
    before = _conditions(old)
    out = []
    for kind, ok, reason in wanted:
        new = capi.condition(kind, ok, reason, stamp)
        prev = before.get(kind)
        if prev is not None and prev.get("status") == new["status"]:
            new["lastTransitionTime"] = prev.get("lastTransitionTime", stamp)
        out.append(new)
    return out
