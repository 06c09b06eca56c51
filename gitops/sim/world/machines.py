"""The infrastructure provider and Cluster API's machine controller, as the world plays them.

Tool layer, the simulated world (``gitops.sim.world``), one of the controllers ``physics.Physics``
combines. A new Machine gets its ``SimMachine`` (cloned from a ``SimMachineTemplate`` when its
infrastructureRef names one), goes Provisioning -> Provisioned -> Running; after the
provisioning latency its Node registers NotReady (nodeInfo from the image the SimMachine boots,
labels of the ``node.cluster.x-k8s.io`` domain copied from the Machine, the pool's labels and
taints), and after the boot latency turns Ready, unless the seeded dice say the boot failed. A
Machine being deleted has its Node drained first (cordon, evictions through the PDBs every 20 s
until no pod is left, unless ``spec.nodeDrainTimeout`` passes or the exclude-node-draining
annotation says not to), then loses its Node after the deprovision latency, then its SimMachine
and finalizer. Drains go through the eviction subresource's decision (``disruption``), as Cluster
API's drain does through the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from gitops.fleet.quantities import parse_duration
from gitops.fleet.wellknown import MACHINE_ANNOTATION, POOL_LABEL, REPLACES_ANNOTATION
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    MACHINES,
    NODES,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads as wl
from gitops.sim.world.base import ACTOR, Key, Obj, key_of, with_status
from gitops.sim.world.disruption import Disruption

NODE_DOMAIN = "node.cluster.x-k8s.io"
DRAIN_RETRY_SECONDS = 20.0  # Cluster API's machine controller: drainRetryInterval
EXCLUDE_DRAIN_ANNOTATION = "machine.cluster.x-k8s.io/exclude-node-draining"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class Machines(Disruption):
    """Cluster API's machine controller and the infrastructure provider (drains evict)."""

    def _machine_seen(self, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        k = key_of(obj)
        if meta.get("deletionTimestamp"):
            if uid not in self._deprovisioning:
                self._deprovisioning.add(uid)
                self.scheduler.call_later(0.0, lambda: self._mark_deleting(k))
                self.scheduler.call_later(0.0, partial(self._drain_machine, k, uid))
            return
        if uid in self._started:
            return
        self._started.add(uid)
        self.audit.change(
            cluster=(obj.get("spec") or {}).get("clusterName", ""),
            event="machine-created",
            namespace=k[0],
            name=k[1],
            machine=k[1],
            pool=(meta.get("labels") or {}).get(POOL_LABEL, ""),
            # The node a controller made this machine to replace: invariant checkers pair them.
            replaces=(meta.get("annotations") or {}).get(REPLACES_ANNOTATION, ""),
        )
        self.scheduler.call_later(0.0, lambda: self._start_machine(k))

    def _machine(self, k: Key) -> Obj | None:
        try:
            return self.store.get(seed_.MANAGEMENT, MACHINES, k[0], k[1])
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def _start_machine(self, k: Key) -> None:
        """Bootstrap ready, infrastructure being provisioned: Provisioning (or Pending)."""
        machine = self._machine(k)
        if machine is None or machine["metadata"].get("deletionTimestamp"):
            return
        ref = machine["spec"].get("infrastructureRef") or {}
        infra_ns = ref.get("namespace") or k[0]
        infra_name = ref.get("name") or ""
        stamp = seed_.rfc3339(self.clock.now())
        if ref.get("kind") == seed_.SIM_TEMPLATE:
            template = self._get(seed_.MANAGEMENT, SIMMACHINETEMPLATES, infra_ns, infra_name)
            if template is None:
                self._machine_pending(k, f"SimMachineTemplate {infra_ns}/{infra_name} not found")
                self._waiting_infra[(infra_ns, infra_name)] = k
                return
            self._clone(machine, template)
        elif ref.get("kind") == seed_.SIM_MACHINE:
            if self._get(seed_.MANAGEMENT, SIMMACHINES, infra_ns, infra_name) is None:
                self._machine_pending(k, f"SimMachine {infra_ns}/{infra_name} not found")
                self._waiting_infra[(infra_ns, infra_name)] = k
                return
        else:
            self._machine_failed(
                k,
                "UnsupportedInfrastructure",
                f"the simulator provides SimMachine and SimMachineTemplate, not {ref.get('kind')!r}",
            )
            return

        def provisioning(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Provisioning",
                    "bootstrapReady": True,
                    "infrastructureReady": False,
                    "observedGeneration": int(o["metadata"].get("generation") or 1),
                    "lastUpdated": stamp,
                    "conditions": seed_.capi_conditions(stamp, ready=False, node_healthy=False),
                }
            )
            return o

        self._write(provisioning, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        self.scheduler.call_later(self.latencies.provision, lambda: self._provisioned(k))

    def _clone(self, machine: Obj, template: Obj) -> None:
        """What a MachineSet would have done: a SimMachine from the template, owned by the Machine."""
        name, ns = machine["metadata"]["name"], machine["metadata"]["namespace"]
        if (
            self._get(seed_.MANAGEMENT, SIMMACHINES, template["metadata"]["namespace"], name)
            is not None
        ):
            return
        infra = seed_.sim_machine(
            namespace=template["metadata"]["namespace"],
            name=name,
            cluster=machine["spec"].get("clusterName", ""),
            pool=(machine["metadata"].get("labels") or {}).get(POOL_LABEL, ""),
            spec=dict(((template.get("spec") or {}).get("template") or {}).get("spec") or {}),
            template=template["metadata"]["name"],
            contract=self.infra_contract,
        )
        infra["metadata"]["ownerReferences"] = [
            {
                "apiVersion": seed_.MACHINE_API_VERSION,
                "kind": "Machine",
                "name": name,
                "uid": machine["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        del ns
        self._create(seed_.MANAGEMENT, SIMMACHINES, infra)

    def _machine_pending(self, k: Key, why: str) -> None:
        stamp = seed_.rfc3339(self.clock.now())

        def pending(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update({"phase": "Pending", "bootstrapReady": True, "lastUpdated": stamp})
            status["conditions"] = [
                {
                    "type": "InfrastructureReady",
                    "status": "False",
                    "reason": "WaitingForInfrastructure",
                    "severity": "Info",
                    "message": why,
                    "lastTransitionTime": stamp,
                }
            ]
            return o

        self._write(pending, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _machine_failed(self, k: Key, reason: str, message: str) -> None:
        stamp = seed_.rfc3339(self.clock.now())

        def failed(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Failed",
                    "failureReason": reason,
                    "failureMessage": message,
                    "lastUpdated": stamp,
                }
            )
            return o

        self._write(failed, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _infra_of(self, machine: Obj) -> tuple[Key, Obj | None]:
        ref = machine["spec"].get("infrastructureRef") or {}
        ns = ref.get("namespace") or machine["metadata"]["namespace"]
        name = ref.get("name") or ""
        if ref.get("kind") == seed_.SIM_TEMPLATE:
            name = machine["metadata"]["name"]  # the clone is named after the Machine
        return (ns, name), self._get(seed_.MANAGEMENT, SIMMACHINES, ns, name)

    def _image_of(self, infra: Obj) -> str | None:
        spec = infra.get("spec") or {}
        source = spec.get("image") if isinstance(spec.get("image"), str) else ""
        if not source:
            sources = {img.source for img in self.fleet.images.values()}
            source = next((v for v in _strings(spec) if v in sources), "")
        return seed_.image_for(self.fleet, source, str(spec.get("imageName") or ""))

    def _provisioned(self, k: Key) -> None:
        """The infrastructure is up: Provisioned, then the kubelet registers the Node: Running."""
        machine = self._machine(k)
        if machine is None or machine["metadata"].get("deletionTimestamp"):
            return
        infra_key, infra = self._infra_of(machine)
        if infra is None:
            self._machine_failed(
                k, "InfrastructureNotFound", f"SimMachine {infra_key[0]}/{infra_key[1]} is gone"
            )
            return
        image_name = self._image_of(infra)
        if image_name is None:
            spec = infra.get("spec") or {}
            self._machine_failed(
                k,
                "InvalidConfiguration",
                f"SimMachine {infra_key[1]} boots {spec.get('image')!r}, which is the source of no "
                "image in the fleet's catalog",
            )
            return
        cluster = machine["spec"].get("clusterName", "")
        if cluster not in self._clusters and not self.store.has_cluster(cluster):
            self._machine_failed(
                k, "InvalidConfiguration", f"no workload cluster named {cluster!r}"
            )
            return
        self.cluster(cluster)
        name = machine["metadata"]["name"]
        pid = seed_.provider_id(cluster, name)
        ip = f"10.{128 + self.rng.randrange(64)}.{self.rng.randrange(256)}.{self.rng.randrange(2, 255)}"
        now = self.clock.now()
        stamp = seed_.rfc3339(now)
        addrs = seed_.addresses(name, ip)

        def infra_ready(o: Obj) -> Obj:
            o.setdefault("spec", {})["providerID"] = pid
            return o

        self._write(infra_ready, seed_.MANAGEMENT, SIMMACHINES, infra_key)
        self._write(
            lambda o: with_status(
                o, {**seed_.infra_status(True, self.infra_contract), "addresses": addrs}
            ),
            seed_.MANAGEMENT,
            SIMMACHINES,
            infra_key,
            subresource="status",
        )

        def set_pid(o: Obj) -> Obj:
            o["spec"]["providerID"] = pid
            return o

        self._write(set_pid, seed_.MANAGEMENT, MACHINES, k)

        def provisioned(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Provisioned",
                    "infrastructureReady": True,
                    "addresses": addrs,
                    "lastUpdated": stamp,
                    "conditions": seed_.capi_conditions(stamp, ready=False, node_healthy=False),
                }
            )
            status["conditions"][2] = {
                "type": "InfrastructureReady",
                "status": "True",
                "lastTransitionTime": stamp,
            }
            return o

        self._write(provisioned, seed_.MANAGEMENT, MACHINES, k, subresource="status")

        doc = self.fleet.cluster(cluster)
        labels = machine["metadata"].get("labels") or {}
        pool = doc.pool(labels.get(POOL_LABEL, "")) if doc is not None else None
        zone = machine["spec"].get("failureDomain") or (pool.zones[0] if pool is not None else "")
        synced = {key: v for key, v in labels.items() if key.split("/")[0].endswith(NODE_DOMAIN)}
        node = seed_.node_object(
            name=name,
            cluster=cluster,
            cluster_namespace=k[0],
            zone=zone,
            image=self.fleet.images[image_name],
            rng=self.rng,
            ip=ip,
            when=now,
            pool=pool,
            machine=name,
            extra_labels=synced,
            ready=False,
        )
        node["spec"]["providerID"] = pid
        if pool is None:
            node["metadata"]["labels"].pop(POOL_LABEL, None)
            node["metadata"]["labels"].update(synced)
        if self._get(cluster, NODES, "", name) is None:
            self._create(cluster, NODES, node)

        def running(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            status.update(
                {
                    "phase": "Running",
                    "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": name},
                    "nodeInfo": dict(node["status"]["nodeInfo"]),
                    "lastUpdated": stamp,
                }
            )
            return o

        self._write(running, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        failed = self.rng.random() < self.boot_failure_rate
        self.scheduler.call_later(
            self.latencies.boot, lambda: self._booted(cluster, name, k, failed)
        )

    def _booted(self, cluster: str, name: str, machine_key: Key, failed: bool) -> None:
        if self._get(cluster, NODES, "", name) is None:
            return
        if failed:
            self.audit.change(
                cluster=cluster, event="node-boot-failed", node=name, machine=machine_key[1]
            )
            return
        stamp = seed_.rfc3339(self.clock.now())

        def ready(o: Obj) -> Obj:
            conds = [c for c in o["status"].get("conditions") or [] if c.get("type") != "Ready"]
            conds.append(seed_.ready_condition(stamp, ready=True))
            o["status"]["conditions"] = conds
            return o

        def untaint(o: Obj) -> Obj:
            taints = [
                t
                for t in o["spec"].get("taints") or []
                if t.get("key") != seed_.NOT_READY_TAINT["key"]
            ]
            if taints:
                o["spec"]["taints"] = taints
            else:
                o["spec"].pop("taints", None)
            return o

        self._write(ready, cluster, NODES, ("", name), subresource="status")
        self._write(untaint, cluster, NODES, ("", name))

        def healthy(o: Obj) -> Obj:
            o.setdefault("status", {})["conditions"] = seed_.capi_conditions(
                stamp, ready=True, node_healthy=True
            )
            return o

        if self._machine(machine_key) is not None:
            self._write(healthy, seed_.MANAGEMENT, MACHINES, machine_key, subresource="status")

    def _mark_deleting(self, k: Key) -> None:
        if self._machine(k) is None:
            return
        stamp = seed_.rfc3339(self.clock.now())

        def deleting(o: Obj) -> Obj:
            o.setdefault("status", {}).update({"phase": "Deleting", "lastUpdated": stamp})
            return o

        self._write(deleting, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _drain_machine(self, k: Key, uid: str) -> None:
        """Cluster API's machine controller deleting a Machine (``reconcileDelete``): cordon
        its Node and evict its pods through their PodDisruptionBudgets, again every
        ``DRAIN_RETRY_SECONDS`` until none is left (DaemonSet, mirror and finished pods are
        skipped; evicted pods must be gone, not only Terminating), unless the Machine carries
        the exclude-node-draining annotation or its ``spec.nodeDrainTimeout`` has passed; then
        the infrastructure and the Node go after the deprovision latency."""
        machine = self._machine(k)
        if machine is None or machine["metadata"]["uid"] != uid:
            return
        cluster = machine["spec"].get("clusterName", "")
        node_name = ((machine.get("status") or {}).get("nodeRef") or {}).get("name") or ""
        c = self._clusters.get(cluster)
        node = c.nodes.get(node_name) if c is not None and node_name else None
        excluded = EXCLUDE_DRAIN_ANNOTATION in (machine["metadata"].get("annotations") or {})
        if node is None or excluded or c is None:
            self._drained(k, "DrainingSkipped" if excluded else "")
            return
        now = self.clock.now()
        deletion = (machine.get("status") or {}).get("deletion") or {}
        started = deletion.get("nodeDrainStartTime")
        if started is None:
            self._drain_condition(k, now, started_now=True)
        timeout = _go_duration(machine["spec"].get("nodeDrainTimeout"))
        began = seed_.parse_rfc3339(started) if started else now
        if timeout and now - began >= timeout * self.time_scale:
            self._drained(k, "DrainingTimedOut")
            return
        if not (node.get("spec") or {}).get("unschedulable"):
            self._write(_cordon, cluster, NODES, ("", node_name))
        waiting = 0
        for pk, pod in sorted(c.pods.items()):
            if pod["spec"].get("nodeName") != node_name or not _drainable(pod):
                continue
            waiting += 1  # evicted or not, it is there until its kubelet removes it
            if pod["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.evict(cluster, pk[0], pk[1], {}, ACTOR)
            except ApiError as err:
                if err.code == 404:
                    waiting -= 1
                elif err.code != 429:  # refused by a budget: tried again at the next pass
                    self.errors.append(f"drain of {node_name}: {err.code} {err.message}")
        if waiting:
            self.scheduler.call_later(
                DRAIN_RETRY_SECONDS * self.time_scale, partial(self._drain_machine, k, uid)
            )
            return
        self._drained(k, "")

    def _drain_condition(self, k: Key, now: float, *, started_now: bool = False) -> None:
        stamp = seed_.rfc3339(now)

        def draining(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            if started_now:
                status.setdefault("deletion", {})["nodeDrainStartTime"] = stamp
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "DrainingSucceeded"
            ] + [
                {
                    "type": "DrainingSucceeded",
                    "status": "False",
                    "reason": "Draining",
                    "severity": "Info",
                    "message": "Draining the node before deletion",
                    "lastTransitionTime": stamp,
                }
            ]
            return o

        self._write(draining, seed_.MANAGEMENT, MACHINES, k, subresource="status")

    def _drained(self, k: Key, skipped: str) -> None:
        """The drain is over (or skipped): the infrastructure and the Node go next."""
        stamp = seed_.rfc3339(self.clock.now())

        def drained(o: Obj) -> Obj:
            status = o.setdefault("status", {})
            cond: Obj = {"type": "DrainingSucceeded", "status": "True", "lastTransitionTime": stamp}
            if skipped:
                cond["reason"] = skipped
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "DrainingSucceeded"
            ] + [cond]
            return o

        self._write(drained, seed_.MANAGEMENT, MACHINES, k, subresource="status")
        self.scheduler.call_later(self.latencies.deprovision, lambda: self._deprovision(k))

    def _deprovision(self, k: Key) -> None:
        """A deleted Machine: its Node goes, its SimMachine goes, then its finalizer."""
        machine = self._machine(k)
        if machine is None:
            return
        self._teardown(machine)

        def release(o: Obj) -> Obj:
            o["metadata"]["finalizers"] = [
                f for f in o["metadata"].get("finalizers") or [] if f != seed_.MACHINE_FINALIZER
            ]
            return o

        self._write(release, seed_.MANAGEMENT, MACHINES, k)

    def _teardown(self, machine: Obj) -> None:
        """The Machine's Node (never another Machine's) and its SimMachine go."""
        cluster = machine["spec"].get("clusterName", "")
        name = machine["metadata"]["name"]
        node = ((machine.get("status") or {}).get("nodeRef") or {}).get("name") or name
        found = self._get(cluster, NODES, "", node) if self.store.has_cluster(cluster) else None
        if found is not None:
            owner = (found["metadata"].get("annotations") or {}).get(MACHINE_ANNOTATION)
            if owner in (None, name):
                self._delete(cluster, NODES, ("", node))
        infra_key, infra = self._infra_of(machine)
        if infra is not None:
            self._delete(seed_.MANAGEMENT, SIMMACHINES, infra_key)


def _cordon(obj: Obj) -> Obj:
    obj.setdefault("spec", {})["unschedulable"] = True
    return obj


def _drainable(pod: Obj) -> bool:
    """What a drain evicts: not DaemonSet pods, mirror pods, or pods already finished."""
    ref = wl.controller_of(pod)
    if ref is not None and ref.get("kind") == "DaemonSet":
        return False
    if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _go_duration(value: Any) -> float:
    """Seconds in a metav1.Duration such as ``10m0s`` (0 when unset or unreadable)."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError:
        return 0.0


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
