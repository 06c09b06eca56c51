"""Workloads: Deployments, ReplicaSets, a DaemonSet, their pods and PodDisruptionBudgets.

Tool layer (``gitops.sim.world``), one of the controllers ``physics.Physics`` combines. Most of
it is what the simulated workload controllers decide, as pure functions of plain wire dicts:

* the objects every workload cluster starts with (``seed``): in namespace ``shop`` a
  ``frontend`` Deployment (PDB ``minAvailable: 50%``, an emptyDir volume, as ``kubectl drain
  --delete-emptydir-data`` expects) and a ``checkout`` Deployment whose PDB (``maxUnavailable:
  1``) blocks a drain of a node holding two of its pods until the first one evicted runs again
  elsewhere; in ``kube-system`` a ``node-agent`` DaemonSet that tolerates every taint;
* the scheduler's choice (``fits``, ``pick_node``): a pod goes only to a Ready, schedulable node
  whose ``NoSchedule``/``NoExecute`` taints it tolerates and whose labels match its
  nodeSelector, spreading replicas of one owner first, then pods overall;
* the disruption controller's arithmetic (``pdb_status``), as upstream computes it.

The functions must never touch the store, read a clock, or draw randomness except from a given
``random.Random``. ``WorkloadControllers`` (at the end) is the Deployment, ReplicaSet and
DaemonSet controllers acting on them: missing replicas are recreated Pending at once (the
scheduler binds them), extra ones deleted, DaemonSet pods follow nodes, statuses are kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from gitops.sim.api import resources
from gitops.sim.api.selectors import selector_matches
from gitops.sim.world.base import ClusterCache, Key, PhysicsBase, node_ip, with_status
from gitops.sim.world.seed import (
    DAEMONSETS,
    DEPLOYMENTS,
    NAMESPACES,
    PDBS,
    PODS,
    REPLICASETS,
    Seeding,
    namespace,
    rfc3339,
    stream,
)

Obj = dict[str, Any]
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as the API server's generated names
HARD_EFFECTS = ("NoSchedule", "NoExecute")
MAX_PODS = 110
DEFAULT_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


SEEDED_POD_GRACE_SECONDS = 2  # terminationGracePeriodSeconds of the seeded Deployments' pods


@dataclass(frozen=True)
class DeploymentSpec:
    namespace: str
    name: str
    replicas: int
    image: str
    pdb: Mapping[str, int | str]  # {"minAvailable": ...} or {"maxUnavailable": ...}
    empty_dir: bool = False
    # Shorter than Kubernetes' 30 s default so that drains in tests and benches stay quick; the
    # kubelet physics honours it multiplied by the time scale.
    grace_seconds: int = SEEDED_POD_GRACE_SECONDS


DEPLOYMENTS_SEEDED = (
    DeploymentSpec("shop", "frontend", 4, "nginx:1.27", {"minAvailable": "50%"}, empty_dir=True),
    DeploymentSpec("shop", "checkout", 6, "ghcr.io/acme/checkout:2.4.1", {"maxUnavailable": 1}),
)
DAEMONSET_NAMESPACE, DAEMONSET_NAME = "kube-system", "node-agent"


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-shaped value."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


# -- names ----------------------------------------------------------------------------------


def suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(NAME_ALPHABET) for _ in range(length))


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:10])


# -- labels, taints, tolerations ------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Iterable[Obj], taints: Iterable[Obj]) -> bool:
    tols = list(tolerations)
    return all(
        any(tolerates(t, taint) for t in tols)
        for taint in taints
        if taint.get("effect") in HARD_EFFECTS
    )


def node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def fits(pod_spec: Obj, node: Obj, *, daemon: bool = False) -> bool:
    """Would the scheduler (or, with ``daemon``, the DaemonSet controller) put the pod here?

    DaemonSet pods ignore cordons and readiness, as the DaemonSet controller does.
    """
    if node["metadata"].get("deletionTimestamp"):
        return False
    if not daemon and ((node.get("spec") or {}).get("unschedulable") or not node_ready(node)):
        return False
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    return tolerated(
        pod_spec.get("tolerations") or [], (node.get("spec") or {}).get("taints") or []
    )


def pick_node(
    pod_spec: Obj,
    owner: str,
    nodes: Iterable[Obj],
    pods_on: Mapping[str, int],
    owner_on: Mapping[tuple[str, str], int],
    rng: random.Random,
) -> str | None:
    """The node the scheduler binds a pod to, or None when none fits (the pod stays Pending).

    Spreads replicas of one owner first, then pods overall; ties are broken by ``rng``.
    """
    best: list[str] = []
    best_key: tuple[int, int] | None = None
    for node in nodes:
        name = node["metadata"]["name"]
        if pods_on.get(name, 0) >= MAX_PODS or not fits(pod_spec, node):
            continue
        key = (owner_on.get((owner, name), 0), pods_on.get(name, 0))
        if best_key is None or key < best_key:
            best, best_key = [name], key
        elif key == best_key:
            best.append(name)
    if not best:
        return None
    best.sort()
    return best[rng.randrange(len(best))]


# -- object builders ------------------------------------------------------------------------


def owner_ref(obj_or_kind: Obj | str, name: str = "", uid: str = "") -> Obj:
    if isinstance(obj_or_kind, dict):
        meta = obj_or_kind["metadata"]
        kind, name, uid = obj_or_kind["kind"], meta["name"], meta.get("uid", "")
    else:
        kind = obj_or_kind
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_template(spec: DeploymentSpec) -> Obj:
    container: Obj = {
        "name": spec.name,
        "image": spec.image,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    pod_spec: Obj = {
        "containers": [container],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": spec.grace_seconds,
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "securityContext": {},
    }
    if spec.empty_dir:
        container["volumeMounts"] = [{"name": "cache", "mountPath": "/var/cache/app"}]
        pod_spec["volumes"] = [{"name": "cache", "emptyDir": {}}]
    return {"metadata": {"labels": {"app": spec.name}}, "spec": pod_spec}


def deployment(spec: DeploymentSpec) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": {"app": spec.name}},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {"app": spec.name}},
            "template": pod_template(spec),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
    }


def replicaset(deploy: Obj) -> Obj:
    template = copy_json(deploy["spec"]["template"])
    phash = template_hash(template)
    template["metadata"].setdefault("labels", {})["pod-template-hash"] = phash
    meta = deploy["metadata"]
    labels = {**(meta.get("labels") or {}), "pod-template-hash": phash}
    selector = copy_json(deploy["spec"]["selector"])
    selector.setdefault("matchLabels", {})["pod-template-hash"] = phash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{phash}",
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(deploy["spec"]["replicas"]),
                "deployment.kubernetes.io/max-replicas": str(deploy["spec"]["replicas"] + 1),
                "deployment.kubernetes.io/revision": "1",
            },
            "ownerReferences": [owner_ref(deploy)],
        },
        "spec": {
            "replicas": deploy["spec"]["replicas"],
            "selector": selector,
            "template": template,
        },
    }


def daemonset() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": DAEMONSET_NAME,
            "namespace": DAEMONSET_NAMESPACE,
            "labels": {"app": DAEMONSET_NAME},
        },
        "spec": {
            "selector": {"matchLabels": {"app": DAEMONSET_NAME}},
            "template": {
                "metadata": {"labels": {"app": DAEMONSET_NAME}},
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "image": "fluent/fluent-bit:3.2",
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                        }
                    ],
                    "tolerations": [{"operator": "Exists"}],
                    "priorityClassName": "system-node-critical",
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "schedulerName": "default-scheduler",
                },
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
    }


def pdb(spec: DeploymentSpec) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": {"app": spec.name}},
        "spec": {"selector": {"matchLabels": {"app": spec.name}}, **dict(spec.pdb)},
    }


def pod(
    owner: Obj,
    name: str,
    *,
    node: str | None,
    when: float,
    ip: str = "",
    host_ip: str = "",
    running: bool = True,
) -> Obj:
    """A pod stamped from ``owner``'s template (ReplicaSet or DaemonSet), bound or Pending."""
    template = copy_json(owner["spec"]["template"])
    spec = template["spec"]
    if owner["kind"] == "DaemonSet":
        spec.setdefault("tolerations", [])
        # The DaemonSet controller pins its pods with node affinity; nodeName is what results.
    else:
        spec["tolerations"] = [*spec.get("tolerations", []), *DEFAULT_TOLERATIONS]
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 2000001000 if spec.get("priorityClassName") else 0)
    meta = owner["metadata"]
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{meta['name']}-",
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"].get("labels") or {}),
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": spec,
        "status": pending_status(when),
    }
    if owner["kind"] == "DaemonSet":
        obj["metadata"]["labels"]["controller-revision-hash"] = _revision(owner)
    if node is not None:
        spec["nodeName"] = node
        obj["status"] = (
            running_status(spec, when, ip, host_ip) if running else bound_status(when, host_ip)
        )
    return obj


_REVISIONS: dict[str, str] = {}


def _revision(owner: Obj) -> str:
    """A DaemonSet's controller-revision-hash (memoised: one per template, not per pod)."""
    text = json.dumps(owner["spec"]["template"], sort_keys=True)
    found = _REVISIONS.get(text)
    if found is None:
        found = _REVISIONS[text] = template_hash(owner["spec"]["template"])
        if len(_REVISIONS) > 1024:
            _REVISIONS.clear()
    return found


def pending_status(when: float, message: str = "") -> Obj:
    status: Obj = {"phase": "Pending", "qosClass": "Burstable"}
    if message:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(when),
            }
        ]
    return status


def bound_status(when: float, host_ip: str) -> Obj:
    stamp = rfc3339(when)
    return {
        "phase": "Pending",
        "qosClass": "Burstable",
        "hostIP": host_ip,
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": stamp,
            }
        ],
    }


def running_status(spec: Obj, when: float, ip: str, host_ip: str) -> Obj:
    stamp = rfc3339(when)
    conds = [
        {"type": cond, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
        for cond in (
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        )
    ]
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": f"{c['image']}@sha256:{hashlib.sha256(c['image'].encode()).hexdigest()}",
            "containerID": "containerd://"
            + hashlib.sha256(f"{ip}/{c['name']}/{stamp}".encode()).hexdigest(),
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": stamp}},
        }
        for c in spec.get("containers") or []
    ]
    return {
        "phase": "Running",
        "qosClass": "Burstable",
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}] if host_ip else [],
        "podIP": ip,
        "podIPs": [{"ip": ip}] if ip else [],
        "startTime": stamp,
        "containerStatuses": statuses,
    }


def pod_ready(pod_obj: Obj) -> bool:
    for cond in (pod_obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


# -- the disruption controller --------------------------------------------------------------


def scaled(value: int | str, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if text.isdigit():
        return int(text)
    raise ValueError(f"invalid value for IntOrString: {value!r}")


def pdb_status(
    budget: Obj,
    pods: Iterable[Obj],
    scale_of: Mapping[str, tuple[str, int]],
    when: float,
) -> Obj:
    """The status the disruption controller writes for ``budget`` over the pods it selects.

    ``scale_of`` maps the uid of a pod's controller (a ReplicaSet) to the controller whose scale
    counts (the ReplicaSet's Deployment, else the ReplicaSet itself) and its replicas. As upstream: with ``maxUnavailable``
    or a percentage ``minAvailable`` the expected count is the sum of the controllers' scales;
    with an integer ``minAvailable`` it is the number of pods. A pod is healthy when it is Ready
    and not being deleted; ``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)``.
    """
    spec = budget.get("spec") or {}
    selector = spec.get("selector")
    matched = [p for p in pods if selector_matches(selector, p["metadata"].get("labels") or {})]
    healthy = sum(1 for p in matched if pod_ready(p) and not p["metadata"].get("deletionTimestamp"))
    fail_safe = False
    expected = 0
    desired = 0
    if "maxUnavailable" in spec or isinstance(spec.get("minAvailable"), str):
        owners: dict[str, int] = {}
        for p in matched:
            ref = controller_of(p)
            uid = ref.get("uid", "") if ref else ""
            if uid not in scale_of:
                fail_safe = True  # a pod with no controller we can scale: upstream gives up
                break
            top, replicas = scale_of[uid]
            owners[top] = replicas
        expected = sum(owners.values())
        if not fail_safe:
            if "maxUnavailable" in spec:
                unavailable = scaled(spec["maxUnavailable"], expected, round_up=True)
                desired = max(0, expected - unavailable)
            else:
                desired = scaled(spec["minAvailable"], expected, round_up=True)
    else:
        expected = len(matched)
        desired = int(spec.get("minAvailable") or 0)
    allowed = healthy - desired
    if fail_safe or expected <= 0 or allowed <= 0:
        allowed = 0
    generation = int(budget["metadata"].get("generation") or 1)
    ok = allowed > 0
    old_conds = (budget.get("status") or {}).get("conditions") or []
    old = next((c for c in old_conds if c.get("type") == "DisruptionAllowed"), None)
    status_text = "True" if ok else "False"
    transition = (
        old["lastTransitionTime"]
        if old is not None and old.get("status") == status_text
        else rfc3339(when)
    )
    return {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": status_text,
                "reason": "SufficientPods" if ok else "InsufficientPods",
                "message": "",
                "observedGeneration": generation,
                "lastTransitionTime": transition,
            }
        ],
    }


# -- seeding --------------------------------------------------------------------------------


def seed(
    seeding: Seeding, *, seed_value: int, now: float, pod_grace_seconds: int | None = None
) -> None:
    """Add every workload cluster's workloads to ``seeding``, pods placed by the scheduler.

    ``pod_grace_seconds`` overrides the Deployments' pods' ``terminationGracePeriodSeconds``.

    Owner references carry no uid yet (the store assigns uids): the world fills them in from
    the owners it created just before.
    """
    rng = stream(seed_value, "workloads")
    for cluster in seeding.clusters:
        nodes = [n.node for n in seeding.nodes_of(cluster)]
        ips = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in nodes}
        pods_on: dict[str, int] = {}
        owner_on: dict[tuple[str, str], int] = {}
        pod_count = 0

        def pod_ip(index: int) -> str:
            return f"10.{200 + (index // 65536) % 50}.{(index // 256) % 256}.{index % 256}"

        seeding.add(cluster, NAMESPACES, namespace("shop"), now - 40 * 86400.0)
        ds = seeding.add(cluster, DAEMONSETS, daemonset(), now - 40 * 86400.0)
        for node in nodes:
            if fits(ds["spec"]["template"]["spec"], node, daemon=True):
                name = node["metadata"]["name"]
                pod_count += 1
                agent = pod(
                    ds,
                    f"{DAEMONSET_NAME}-{suffix(rng)}",
                    node=name,
                    when=now - 3600.0,
                    ip=pod_ip(pod_count),
                    host_ip=ips[name],
                    running=node_ready(node),
                )
                seeding.add(cluster, PODS, agent, now - 3600.0)
                pods_on[name] = pods_on.get(name, 0) + 1
        for seeded in DEPLOYMENTS_SEEDED:
            spec = (
                seeded
                if pod_grace_seconds is None
                else replace(seeded, grace_seconds=pod_grace_seconds)
            )
            deploy = seeding.add(cluster, DEPLOYMENTS, deployment(spec), now - 40 * 86400.0)
            rs = seeding.add(cluster, REPLICASETS, replicaset(deploy), now - 40 * 86400.0)
            key = f"{spec.namespace}/{rs['metadata']['name']}"
            for _ in range(spec.replicas):
                target = pick_node(
                    rs["spec"]["template"]["spec"], key, nodes, pods_on, owner_on, rng
                )
                pod_count += 1
                replica = pod(
                    rs,
                    f"{rs['metadata']['name']}-{suffix(rng)}",
                    node=target,
                    when=now - 3600.0,
                    ip=pod_ip(pod_count),
                    host_ip=ips.get(target or "", ""),
                )
                if target is None:
                    replica["status"] = pending_status(
                        now - 3600.0, unschedulable_message(len(nodes))
                    )
                else:
                    pods_on[target] = pods_on.get(target, 0) + 1
                    owner_on[(key, target)] = owner_on.get((key, target), 0) + 1
                seeding.add(cluster, PODS, replica, now - 3600.0)
            seeding.add(cluster, PDBS, pdb(spec), now - 40 * 86400.0)


def unschedulable_message(nodes: int) -> str:
    return (
        f"0/{nodes} nodes are available: {nodes} node(s) were unschedulable, not ready or had "
        "untolerated taint. preemption: 0/{nodes} nodes are available: "
        f"{nodes} Preemption is not helpful for scheduling."
    ).replace("{nodes}", str(nodes))


# ---------------------------------------------------------------------- the controllers


class WorkloadControllers(PhysicsBase):
    """The Deployment, ReplicaSet and DaemonSet controllers (replicas, pods, status)."""

    def _owned(self, c: ClusterCache, uid: str) -> list[tuple[Key, Obj]]:
        # Filter, then sort the few owned pods: sorting every pod of the cluster on each
        # ReplicaSet reconcile was most of its cost in a burst (keys are unique, same order).
        owned = [
            (k, p)
            for k, p in c.pods.items()
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]
        return sorted(owned, key=lambda kp: kp[0])

    def _reconcile_deployment(self, cluster: str, k: Key) -> None:
        c = self.cluster(cluster)
        deploy = c.deployments.get(k)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return
        uid = deploy["metadata"]["uid"]
        wanted = replicaset(deploy)
        wanted["metadata"]["ownerReferences"][0]["uid"] = uid
        replicas = int(deploy["spec"].get("replicas", 1))
        found = False
        for rk, rs in sorted(c.replicasets.items()):
            if not any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or []):
                continue
            target = replicas if rs["metadata"]["name"] == wanted["metadata"]["name"] else 0
            found = found or (
                target == replicas and rs["metadata"]["name"] == wanted["metadata"]["name"]
            )
            if int(rs["spec"].get("replicas", 0)) != target:
                self._write(
                    partial(_set_replicas, replicas=target), cluster, resources.REPLICASETS, rk
                )
        if not found:
            self._create(cluster, resources.REPLICASETS, wanted)

    def _reconcile_replicaset(self, cluster: str, k: Key) -> None:
        c = self.cluster(cluster)
        rs = c.replicasets.get(k)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        live = [
            (pk, p)
            for pk, p in self._owned(c, rs["metadata"]["uid"])
            if not p["metadata"].get("deletionTimestamp")
        ]
        want = int(rs["spec"].get("replicas", 1))
        for _ in range(want - len(live)):
            name = self._pod_name(c, rs["metadata"]["name"], k[0])
            new = pod(rs, name, node=None, when=self.clock.now())
            self._create(cluster, resources.PODS, new)
        if len(live) > want:
            # Scale down as the ReplicaSet controller does: unscheduled, then not ready first.
            ranked = sorted(
                live,
                key=lambda kp: (bool(kp[1]["spec"].get("nodeName")), pod_ready(kp[1]), kp[0]),
            )
            for pk, _ in ranked[: len(live) - want]:
                self._delete(cluster, resources.PODS, pk)

    def _reconcile_daemonsets(self, cluster: str) -> None:
        c = self.cluster(cluster)
        for dk, ds in sorted(c.daemonsets.items()):
            if ds["metadata"].get("deletionTimestamp"):
                continue
            pods = self._owned(c, ds["metadata"]["uid"])
            on: dict[str, Key] = {}
            for pk, p in pods:
                node = p["spec"].get("nodeName") or ""
                if node not in c.nodes and not p["metadata"].get("deletionTimestamp"):
                    self._delete(cluster, resources.PODS, pk, grace=0)
                    continue
                on[node] = pk
            template_spec = ds["spec"]["template"]["spec"]
            for name, node in sorted(c.nodes.items()):
                if name in on or not fits(template_spec, node, daemon=True):
                    continue
                pod_name = self._pod_name(c, ds["metadata"]["name"], dk[0])
                c.pod_counter += 1
                new = pod(
                    ds,
                    pod_name,
                    node=name,
                    when=self.clock.now(),
                    ip=self._pod_ip(cluster, c),
                    host_ip=node_ip(node),
                    running=node_ready(node),
                )
                self._create(cluster, resources.PODS, new)

    def _update_workload_status(self, cluster: str, rkey: str, k: Key) -> None:
        c = self.cluster(cluster)
        obj = c.table(rkey).get(k)
        if obj is None:
            return
        gen = int(obj["metadata"].get("generation") or 1)
        if rkey == resources.DEPLOYMENTS.key:
            uid = obj["metadata"]["uid"]
            rsets = [
                rs
                for rs in c.replicasets.values()
                if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])
            ]
            pods = [p for rs in rsets for _, p in self._owned(c, rs["metadata"]["uid"])]
            newest = max(
                (rs for rs in rsets if int(rs["spec"].get("replicas", 0)) > 0),
                key=lambda rs: rs["metadata"]["name"],
                default={"metadata": {"name": obj["metadata"]["name"]}},
            )["metadata"]["name"]
            status = _replica_status(pods, gen)
            want = int(obj["spec"].get("replicas", 1))
            available = status["availableReplicas"] >= want - scaled(
                ((obj["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get(
                    "maxUnavailable", "25%"
                ),
                want,
                round_up=False,
            )
            stamp = rfc3339(self.clock.now())
            old_conds = {cd["type"]: cd for cd in (obj.get("status") or {}).get("conditions") or []}
            conds = []
            for kind, ok, reason, message in (
                (
                    "Available",
                    available,
                    "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                ),
                (
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{newest}" has successfully progressed.',
                ),
            ):
                prev = old_conds.get(kind)
                text = "True" if ok else "False"
                same = prev is not None and prev.get("status") == text
                conds.append(
                    {
                        "type": kind,
                        "status": text,
                        "reason": reason,
                        "message": message,
                        "lastUpdateTime": prev["lastUpdateTime"] if same and prev else stamp,
                        "lastTransitionTime": prev["lastTransitionTime"]
                        if same and prev
                        else stamp,
                    }
                )
            status["updatedReplicas"] = status["replicas"]
            status["conditions"] = conds
        elif rkey == resources.REPLICASETS.key:
            pods = [p for _, p in self._owned(c, obj["metadata"]["uid"])]
            status = _replica_status(pods, gen)
            status["fullyLabeledReplicas"] = status["replicas"]
        else:
            pods = [
                p
                for _, p in self._owned(c, obj["metadata"]["uid"])
                if not p["metadata"].get("deletionTimestamp")
            ]
            desired = sum(
                1 for n in c.nodes.values() if fits(obj["spec"]["template"]["spec"], n, daemon=True)
            )
            ready = sum(1 for p in pods if pod_ready(p))
            status = {
                "currentNumberScheduled": len(pods),
                "desiredNumberScheduled": desired,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "numberReady": ready,
                "observedGeneration": gen,
                "updatedNumberScheduled": len(pods),
            }
            if desired - ready:
                status["numberUnavailable"] = desired - ready
        if status != obj.get("status"):
            rtype = {
                resources.DEPLOYMENTS.key: resources.DEPLOYMENTS,
                resources.REPLICASETS.key: resources.REPLICASETS,
                resources.DAEMONSETS.key: resources.DAEMONSETS,
            }[rkey]
            self._write(lambda o: with_status(o, status), cluster, rtype, k, subresource="status")

    def _pod_name(self, c: ClusterCache, base: str, namespace: str) -> str:
        while True:
            name = f"{base}-{suffix(self.rng)}"
            if (namespace, name) not in c.pods:
                return name


def _set_replicas(obj: Obj, replicas: int) -> Obj:
    obj["spec"]["replicas"] = replicas
    return obj


def _replica_status(pods: list[Obj], generation: int) -> Obj:
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = sum(1 for p in live if pod_ready(p))
    return {
        "observedGeneration": generation,
        "replicas": len(live),
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
