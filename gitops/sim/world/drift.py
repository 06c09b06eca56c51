"""Drift injection: nodes changed "by hand" in a seeded fleet (``gitops sim serve --drift``).

Tool layer (``gitops.sim.world``). ``parse(spec)`` reads a spec such as
``kernel:3,label:2,taint:1,unmanaged:1,cordoned:1``; ``inject(seeding, fleet, counts, seed)``
changes the seeded objects in place, before they are created:

``kernel``     a node's ``status.nodeInfo.kernelVersion`` patched to a kernel no image has;
``label``      a declared pool label changed or removed (or, for a pool that declares none,
               an undeclared label added);
``taint``      an undeclared ``NoSchedule`` taint added;
``unmanaged``  a Node joined by hand: no Machine, no pool label;
``cordoned``   ``spec.unschedulable: true`` without the controller's cordoned-by annotation;
``driver``     on a GPU node (one whose image declares ``nvidia.com/cuda.driver-version.full``)
               the driver labels changed as a hand-installed driver reports them;
``extension``  a Talos system extension label (``extensions.talos.dev/<name>``) changed;
``schematic``  the ``extensions.talos.dev/schematic`` annotation changed;
``driver-upgrade`` a GPU node seeded in the middle of a GPU Operator driver upgrade
               (``nvidia.com/gpu-driver-upgrade-state: upgrade-required``): not drift, but it
               holds its pool's replacements back.

The fact kinds pick only nodes whose image declares the fact they change.

Injections are spread over the workload clusters round-robin from a seeded starting point and
land on distinct nodes, so the same seed gives the same drift and another seed another one.

It must never touch the store, read a clock, or draw randomness other than from the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from gitops.fleet import Fleet
from gitops.fleet.wellknown import POOL_LABEL
from gitops.sim.world import seed as seeding_
from gitops.sim.world.seed import NODES, UNSCHEDULABLE_TAINT, SeededNode, Seeding

KINDS = (
    "kernel",
    "label",
    "taint",
    "unmanaged",
    "cordoned",
    "driver",
    "extension",
    "schematic",
    "driver-upgrade",
)
DRIVER_LABEL = "nvidia.com/cuda.driver-version.full"
DRIVER_LABELS = (
    DRIVER_LABEL,
    "nvidia.com/cuda.driver.major",
    "nvidia.com/cuda.driver.minor",
    "nvidia.com/cuda.driver.rev",
)
EXTENSION_PREFIX = "extensions.talos.dev/"
SCHEMATIC_ANNOTATION = "extensions.talos.dev/schematic"
UPGRADE_STATE_LABEL = "nvidia.com/gpu-driver-upgrade-state"
HAND_TAINT_KEY = "ops.example.com/hand-patched"
HAND_LABEL_KEY = "ops.example.com/hand-edited"
_ITEM = re.compile(r"^\s*([a-z-]+)\s*(?::\s*(\S+)\s*)?$")


@dataclass(frozen=True)
class Injected:
    """One drift injected: its kind, where, and what changed (for logs and tests)."""

    kind: str
    cluster: str
    node: str
    detail: str


def parse(spec: str) -> dict[str, int]:
    """``kernel:3,label:2`` -> {"kernel": 3, "label": 2}; ValueError naming what is wrong."""
    counts: dict[str, int] = {}
    if not spec or not spec.strip():
        return counts
    for item in spec.split(","):
        if not item.strip():
            continue
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(
                f"--drift: cannot read {item.strip()!r}; write KIND:COUNT pairs separated by "
                f"commas, e.g. kernel:3,label:2 (kinds: {', '.join(KINDS)})"
            )
        kind, raw = m.group(1), m.group(2)
        if kind not in KINDS:
            raise ValueError(
                f"--drift: unknown kind {kind!r}; use one of {', '.join(KINDS)}, e.g. kernel:3"
            )
        if raw is None:
            count = 1
        elif raw.isdigit():
            count = int(raw)
        else:
            raise ValueError(
                f"--drift: the count of {kind!r} must be a whole number of nodes, not {raw!r}"
            )
        if kind in counts:
            raise ValueError(f"--drift: {kind!r} is given twice; give each kind once")
        counts[kind] = count
    return counts


def inject(
    seeding: Seeding, fleet: Fleet, counts: dict[str, int], seed: int, *, now: float
) -> list[Injected]:
    """Apply ``counts`` to the seeded nodes (in place); returns what was done, in order."""
    rng = seeding_.stream(seed, "drift")
    clusters = list(seeding.clusters)
    if not clusters:
        if any(counts.values()):
            raise ValueError("--drift: the fleet has no clusters to drift")
        return []
    managed = sum(1 for n in seeding.nodes if n.pool)
    wanted = sum(c for k, c in counts.items() if k != "unmanaged")
    if wanted > managed:
        raise ValueError(
            f"--drift asks for {wanted} drifted nodes but the fleet has only {managed}; "
            "ask for fewer"
        )
    kernels = {img.kernel_version for img in fleet.images.values()}
    offset = rng.randrange(len(clusters))
    touched: set[str] = set()
    done: list[Injected] = []
    turn = 0
    for kind in KINDS:
        for _ in range(counts.get(kind, 0)):
            if kind == "unmanaged":
                cluster = clusters[(offset + turn) % len(clusters)]
                turn += 1
                done.append(_unmanaged(seeding, fleet, cluster, rng, now))
                continue
            target = None
            for step in range(len(clusters)):
                cluster = clusters[(offset + turn + step) % len(clusters)]
                free = [
                    n
                    for n in seeding.nodes_of(cluster)
                    if n.pool
                    and n.node["metadata"]["name"] not in touched
                    and _fits(kind, n, fleet)
                ]
                if free:
                    target = free[rng.randrange(len(free))]
                    turn += step + 1
                    break
            if target is None:  # every node drifted already: pile on, still reproducibly
                pool = [n for n in seeding.nodes if n.pool and _fits(kind, n, fleet)]
                if not pool:
                    raise ValueError(
                        f"--drift {kind}: no node's image declares the fact it changes "
                        f"({_FITS_HINT[kind]})"
                    )
                target = pool[rng.randrange(len(pool))]
            touched.add(target.node["metadata"]["name"])
            done.append(_apply(kind, target, fleet, kernels, rng))
    return done


def _apply(
    kind: str, target: SeededNode, fleet: Fleet, kernels: set[str], rng: random.Random
) -> Injected:
    node = target.node
    name = node["metadata"]["name"]
    if kind == "kernel":
        info = node["status"]["nodeInfo"]
        old = info["kernelVersion"]
        new = old
        while new in kernels or new == old:
            new = _patched_kernel(old, rng)
        info["kernelVersion"] = new
        return Injected(kind, target.cluster, name, f"kernelVersion {old} -> {new}")
    if kind == "label":
        labels = node["metadata"]["labels"]
        cluster = fleet.cluster(target.cluster)
        pool = cluster.pool(target.pool) if cluster is not None else None
        declared = sorted(pool.labels) if pool is not None else []
        if declared:
            key = declared[rng.randrange(len(declared))]
            if rng.random() < 0.5:
                del labels[key]
                return Injected(kind, target.cluster, name, f"label {key} removed")
            labels[key] = "hand-edited"
            return Injected(kind, target.cluster, name, f"label {key} changed to hand-edited")
        labels[HAND_LABEL_KEY] = "true"
        return Injected(kind, target.cluster, name, f"label {HAND_LABEL_KEY}=true added")
    if kind == "taint":
        taints = node["spec"].setdefault("taints", [])
        taints.append({"key": HAND_TAINT_KEY, "value": "true", "effect": "NoSchedule"})
        return Injected(kind, target.cluster, name, f"taint {HAND_TAINT_KEY}=true:NoSchedule added")
    if kind in _FACT_KINDS:
        return _fact(kind, target, rng)
    if kind == "cordoned":
        node["spec"]["unschedulable"] = True
        node["spec"].setdefault("taints", []).append(dict(UNSCHEDULABLE_TAINT))
        return Injected(kind, target.cluster, name, "cordoned by hand")
    raise AssertionError(kind)


_FACT_KINDS = ("driver", "extension", "schematic", "driver-upgrade")
_FITS_HINT = {
    "driver": f"declare {DRIVER_LABEL} in an image's facts.labels",
    "extension": f"declare an {EXTENSION_PREFIX}<name> label in an image's facts.labels",
    "schematic": f"declare {SCHEMATIC_ANNOTATION} in an image's facts.annotations",
    "driver-upgrade": f"declare {DRIVER_LABEL} in an image's facts.labels",
}


def _fits(kind: str, target: SeededNode, fleet: Fleet) -> bool:
    """Whether ``kind`` can land on ``target``: the fact kinds need a node that carries it."""
    node = target.node
    labels = node["metadata"]["labels"]
    if kind in ("driver", "driver-upgrade"):
        return DRIVER_LABEL in labels
    if kind == "extension":
        return any(k.startswith(EXTENSION_PREFIX) for k in labels)
    if kind == "schematic":
        return SCHEMATIC_ANNOTATION in node["metadata"].get("annotations", {})
    return True


def _fact(kind: str, target: SeededNode, rng: random.Random) -> Injected:
    """A GPU driver, a system extension or the schematic changed by hand (or an upgrade begun)."""
    node = target.node
    name = node["metadata"]["name"]
    labels = node["metadata"]["labels"]
    if kind == "driver":
        old = labels[DRIVER_LABEL]
        new = _bumped(old, rng)
        labels[DRIVER_LABEL] = new
        major, _, rest = new.partition(".")
        minor, _, rev = rest.partition(".")
        for key, value in zip(DRIVER_LABELS[1:], (major, minor, rev), strict=True):
            if key in labels:
                labels[key] = value
        return Injected(kind, target.cluster, name, f"{DRIVER_LABEL} {old} -> {new}")
    if kind == "extension":
        key = sorted(k for k in labels if k.startswith(EXTENSION_PREFIX))[0]
        old = labels[key]
        labels[key] = new = _bumped(old, rng)
        return Injected(kind, target.cluster, name, f"{key} {old} -> {new}")
    if kind == "schematic":
        annotations = node["metadata"]["annotations"]
        old = annotations[SCHEMATIC_ANNOTATION]
        annotations[SCHEMATIC_ANNOTATION] = new = f"{rng.getrandbits(256):064x}"
        return Injected(kind, target.cluster, name, f"{SCHEMATIC_ANNOTATION} {old} -> {new}")
    labels[UPGRADE_STATE_LABEL] = "upgrade-required"
    return Injected(kind, target.cluster, name, f"{UPGRADE_STATE_LABEL}=upgrade-required")


def _bumped(old: str, rng: random.Random) -> str:
    """``550.127.08`` -> ``550.127.13``: the last number moved, as a hand-installed build reads."""
    m = re.match(r"^(.*?)(\d+)(\D*)$", old)
    if m is None:
        return f"{old}-hand{rng.randrange(1, 100)}"
    head, number, tail = m.groups()
    return f"{head}{int(number) + rng.randrange(1, 20):0{len(number)}d}{tail}"


def _patched_kernel(old: str, rng: random.Random) -> str:
    """``6.12.9-talos`` -> ``6.12.14-talos``: the patch level bumped, the suffix kept."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(.*)$", old)
    if m is None:
        return f"{old}-hotfix{rng.randrange(1, 100)}"
    major, minor, patch, rest = m.groups()
    return f"{major}.{minor}.{int(patch) + rng.randrange(1, 20)}{rest}"


def _unmanaged(
    seeding: Seeding, fleet: Fleet, cluster: str, rng: random.Random, now: float
) -> Injected:
    doc = fleet.cluster(cluster)
    assert doc is not None
    pool = doc.spec.node_pools[0]
    image = fleet.images[pool.image]
    taken = {n.node["metadata"]["name"] for n in seeding.nodes}
    name = seeding_.node_name(cluster, "manual", rng, taken)
    zone = pool.zones[rng.randrange(len(pool.zones))]
    index = seeding.clusters.index(cluster)
    node = seeding_.node_object(
        name=name,
        cluster=cluster,
        cluster_namespace=doc.namespace,
        zone=zone,
        image=image,
        rng=rng,
        ip=seeding_.node_ip(index, 240 * 250 + len(seeding.nodes_of(cluster))),
        when=now - 86400.0,
        pool=None,
        machine=None,
    )
    node["metadata"]["labels"].pop(POOL_LABEL, None)
    seeding.add(cluster, NODES, node, now - 86400.0)
    seeding.nodes.append(SeededNode(cluster, "", pool.image, node, None))
    return Injected("unmanaged", cluster, name, f"joined by hand in {zone}, no Machine")
