"""Revert pull requests after a rollout halts on its failure budget: what to pin, and the edit.

Part of the bot's pure core (``gitops.bot.service`` reads the files and opens the pull request).

**When.** The plan's status is ``halted`` and its reason names the failure budget
(``maxFailedNodes``): more replacement nodes failed in a wave than the fleet allows. Other
halts (a drain that timed out with ``onDrainTimeout: fail``) are not about an image and get no
revert pull request.

**Which pools, and back to what.** The image a pool ran before the failing revision:

1. from the previous fleet revision in force (the controller remembers the one before the
   current one): every pool whose image the failing revision changed is pinned back to its
   image in that revision, in every wave (a pool of a later wave that has not started yet
   would otherwise take the bad image as soon as the halt is cleared);
2. when that revision is not known (the controller restarted since), from what the pool's
   healthy nodes run now (Ready, schedulable, not leaving, facts matching a catalog image): the
   most common such image, when it is not the declared one. Pools the rollout had not reached
   still run their old image on every node, so they are found the same way.

A pool whose earlier image is gone from the catalog cannot be pinned (the result would not
validate); it is listed in the body instead.

**The edit** (:func:`edit_image`) locates each pool's ``image`` value with ruamel.yaml's
round-trip parser (which keeps the position of every key and value) and replaces exactly that
scalar in the text, then parses the result again to check that the pool now names the target
and nothing else changed. Comments, key order, quoting, flow mappings and indentation all stay
as the engineer wrote them: ``git diff`` shows one changed line per pinned pool.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitops.drift import image_facts
from gitops.fleet import Fleet
from gitops.inventory import Inventory
from gitops.plan import AbandonMachine, Plan

BUDGET_WORD = "maxFailedNodes"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")


def branch(revision: str) -> str:
    return f"gitops/revert/{revision[:12]}"


def is_budget_halt(plan: Plan) -> bool:
    """Whether the rollout halted because too many replacement nodes failed."""
    return plan.status == "halted" and BUDGET_WORD in plan.reason


@dataclass(frozen=True, order=True)
class Pin:
    """Pool ``pool`` of ``cluster`` goes back from ``current`` to ``target``; ``basis`` says why."""

    cluster: str
    pool: str
    current: str
    target: str
    basis: str


@dataclass(frozen=True, order=True)
class Failure:
    """A replacement machine that failed: where, which node it was for, and why."""

    cluster: str
    pool: str
    machine: str
    replaces: str
    reason: str


def failures(plan: Plan | None, inventory: Inventory | None) -> tuple[Failure, ...]:
    """Failed machines in a plan (AbandonMachine) and in the inventory (marked failed)."""
    found: dict[tuple[str, str], Failure] = {}
    if plan is not None:
        for action in plan.actions():
            if isinstance(action, AbandonMachine):
                key = (action.cluster, action.machine)
                reason = action.reason.removeprefix(f"abandon {action.machine}: ")
                found[key] = Failure(
                    action.cluster, action.pool, action.machine, action.replaces, reason
                )
    if inventory is not None:
        for cluster in inventory.clusters:
            for machine in cluster.machines:
                if machine.failed and (cluster.name, machine.name) not in found:
                    found[(cluster.name, machine.name)] = Failure(
                        cluster.name, machine.pool, machine.name, machine.replaces, machine.failed
                    )
    return tuple(sorted(found.values()))


def _observed_image(
    fleet: Fleet, declared: str, inventory: Inventory, cluster: str, pool: str
) -> str:
    """The catalog image most healthy nodes of the pool run ("" when none or unclear)."""
    seen = inventory.cluster(cluster)
    if seen is None or not seen.reachable:
        return ""
    family = fleet.images[declared].family if declared in fleet.images else ""
    by_facts: dict[tuple[str, str, str, str], list[str]] = {}
    for name, entry in fleet.images.items():
        by_facts.setdefault(image_facts(entry), []).append(name)
    counts: Counter[str] = Counter()
    for member in seen.members(pool):
        node = member.node
        if node is None or not member.available or member.leaving:
            continue
        names = by_facts.get(node.facts, [])
        same = [n for n in names if fleet.images[n].family == family]
        chosen = (same or names or [""])[0]
        if chosen:
            counts[chosen] += 1
    if not counts:
        return ""
    best, _ = min(counts.items(), key=lambda item: (-item[1], item[0]))
    return best


def pins(
    current: Fleet, previous: Fleet | None, inventory: Inventory | None
) -> tuple[tuple[Pin, ...], tuple[str, ...]]:
    """(pools to pin back, notes on pools that cannot be), in cluster and pool order."""
    out: list[Pin] = []
    notes: list[str] = []
    for doc, pool in current.pools():
        target, basis = "", ""
        if previous is not None:
            before = previous.cluster(doc.name)
            old = before.pool(pool.name) if before is not None else None
            if old is not None and old.image != pool.image:
                target = old.image
                basis = f"its image at the previous revision {previous.revision[:12]}"
        elif inventory is not None:
            observed = _observed_image(current, pool.image, inventory, doc.name, pool.name)
            if observed and observed != pool.image:
                target = observed
                basis = "the image its healthy nodes run"
        if not target:
            continue
        if target not in current.images:
            notes.append(
                f"{doc.name}/{pool.name}: its earlier image {target} is no longer in the "
                "catalog; pin it by hand"
            )
            continue
        out.append(Pin(doc.name, pool.name, pool.image, target, basis))
    return tuple(out), tuple(notes)


# -- the edit ----------------------------------------------------------------------------------


def _documents(text: str) -> list[Any]:
    return [d for d in YAML().load_all(text) if d is not None]


def _pool_node(doc: Any, cluster: str, pool: str) -> Any:
    if not isinstance(doc, dict) or doc.get("kind") != "Cluster":
        return None
    if (doc.get("metadata") or {}).get("name") != cluster:
        return None
    for item in (doc.get("spec") or {}).get("nodePools") or []:
        if isinstance(item, dict) and item.get("name") == pool:
            return item
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _scalar_end(line: str, col: int) -> int:
    quote = line[col : col + 1]
    if quote == '"':
        i = col + 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1
            i += 1
        raise ValueError("a double-quoted image name continues past its line")
    if quote == "'":
        i = col + 1
        while i < len(line):
            if line[i] == "'":
                if line[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        raise ValueError("a single-quoted image name continues past its line")
    match = re.match(r"[^,\]}\n]*?(?=\s+#|\s*[,\]}]|\s*$)", line[col:])
    if match is None or not match.group(0):
        raise ValueError("the image value is not a plain scalar on one line")
    return col + len(match.group(0))


def _quoted(image: str, style: str) -> str:
    if _PLAIN.fullmatch(image) and style not in ('"', "'"):
        return image
    if style == "'" and "'" not in image:
        return f"'{image}'"
    return '"' + image.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edit_image(text: str, cluster: str, pool: str, image: str) -> str:
    """``text`` with pool ``pool`` of cluster ``cluster`` naming ``image``; only that scalar changes.

    ValueError when the pool is not in ``text`` or its image is not a one-line scalar.
    """
    try:
        docs = _documents(text)
    except YAMLError as err:
        raise ValueError(f"cannot parse the file: {err}") from err
    node = next((n for n in (_pool_node(d, cluster, pool) for d in docs) if n is not None), None)
    if node is None or "image" not in node:
        raise ValueError(f"pool {pool} of cluster {cluster} has no image in this file")
    line_no, col = node.lc.value("image")
    lines = text.splitlines(keepends=True)
    line = lines[line_no]
    end = _scalar_end(line, col)
    lines[line_no] = line[:col] + _quoted(image, line[col : col + 1]) + line[end:]
    edited = "".join(lines)
    # Check the edit: the pool names the image now and nothing else changed.
    before = [_plain(d) for d in docs]
    after = [_plain(d) for d in _documents(edited)]
    for doc in before:
        target = _pool_node(doc, cluster, pool)
        if target is not None:
            target["image"] = image
    if before != after:
        raise ValueError(f"editing the image of {cluster}/{pool} changed more than the image")
    return edited


def edit_files(
    files: Mapping[str, str], sources: Mapping[str, str], chosen: Iterable[Pin]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """(path → edited text for every file that changes, notes on pins that could not be made)."""
    edited = dict(files)
    notes: list[str] = []
    changed: set[str] = set()
    for pin in sorted(chosen):
        source = sources.get(pin.cluster, "")
        if source not in edited:
            notes.append(f"{pin.cluster}/{pin.pool}: its cluster file was not found")
            continue
        try:
            edited[source] = edit_image(edited[source], pin.cluster, pin.pool, pin.target)
        except ValueError as err:
            notes.append(f"{pin.cluster}/{pin.pool}: {err}; pin it by hand")
            continue
        changed.add(source)
    return {p: edited[p] for p in sorted(changed)}, tuple(notes)


# -- the body ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or "—"


def render_body(
    revision: str,
    reason: str,
    made: Sequence[Pin],
    failed: Sequence[Failure],
    notes: Sequence[str],
    limit: int,
) -> str:
    """Why this pull request exists: the halt, the failed machines, what it pins back."""
    lines = [
        f"### Revert: the rollout of `{revision[:12]}` halted on its failure budget",
        "",
        f"**Halt:** {reason}",
        "",
        "This pull request pins the affected pools back to the image they ran before that "
        "revision. Merging it makes a new revision, which clears the halt and rolls the pools "
        "back through the usual waves and budgets. Close it to keep the halt and decide by hand "
        "(`gitops apply --resume` carries the failing rollout on).",
        "",
        "#### Pools pinned back",
        "",
        "| Cluster | Pool | From | To | Because it is |",
        "|---|---|---|---|---|",
        *(
            f"| {p.cluster} | {p.pool} | `{p.current}` | `{p.target}` | {_cell(p.basis)} |"
            for p in made
        ),
        "",
        "#### Machines that failed",
        "",
    ]
    if failed:
        lines += ["| Cluster | Pool | Machine | Replacing | Why |", "|---|---|---|---|---|"]
        lines += [
            f"| {f.cluster} | {f.pool} | {f.machine} | {f.replaces or '—'} | {_cell(f.reason)} |"
            for f in failed
        ]
    else:
        lines.append(
            "The failed machines are gone and were not seen by this controller process (it "
            "started after they were abandoned); the halt reason above counts them."
        )
    if notes:
        lines += ["", "#### Not pinned", "", *(f"- {n}" for n in notes)]
    text = "\n".join(lines) + "\n"
    if len(text) > limit:
        cut = text[: max(0, limit - 80)].rsplit("\n", 1)[0]
        text = cut + "\n\n… the rest is cut at the platform's size limit.\n"
    return text


def summary(made: Sequence[Pin]) -> str:
    pools = ", ".join(f"{p.cluster}/{p.pool}" for p in made)
    return f"Revert {pools} to their last good images"
