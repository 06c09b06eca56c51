"""Loads a fleet repository from disk into a validated, immutable ``Fleet``.

Part of the model layer: it reads local files and nothing else. It finds every ``*.yaml`` and
``*.yml`` under the root (skipping ``status/``, ``drift/``, hidden folders and what
``.gitopsignore`` lists), reads them with the C YAML parser keeping marks, validates each
document against ``gitops.fleet.spec`` and then the repository as a whole, and reports every
problem at once as ``path:line:col: message (hint)`` through ``FleetError``. It never lets a
parser's or validator's own exception escape.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pathspec
import pydantic

from gitops.fleet.messages import did_you_mean, problem_from_error
from gitops.fleet.model import Fleet, FreezeMark, WaveMembers
from gitops.fleet.problems import FleetError, Problem
from gitops.fleet.spec import API_VERSION, KINDS, ClusterDocument, FleetDocument, Maintenance
from gitops.fleet.yamlread import Document, read_documents
from gitops.gcpause import collector_paused

MAX_FILE_BYTES = 1024 * 1024
SKIPPED_DIRS = frozenset({"status", "drift"})
IGNORE_FILE = ".gitopsignore"
_SUFFIXES = (".yaml", ".yml")
_MODELS: dict[str, type[pydantic.BaseModel]] = {"Fleet": FleetDocument, "Cluster": ClusterDocument}


def load(root: str | os.PathLike[str]) -> Fleet:
    """Load and validate the fleet repository at ``root``; raise FleetError listing every problem."""
    base = Path(root)
    if not base.is_dir():
        raise FleetError(
            [Problem(str(root), 1, 1, "not a directory", "give the fleet repository's root")]
        )
    with collector_paused():
        return _load(base)


def _load(base: Path) -> Fleet:
    problems: list[Problem] = []
    fleets: list[tuple[FleetDocument, Document]] = []
    clusters: list[tuple[ClusterDocument | None, Document]] = []
    for rel in discover(base, problems):
        text = _read_text(base, rel, problems)
        if text is None:
            continue
        for doc in read_documents(rel, text, problems):
            model = _validate(doc, problems)
            if isinstance(model, FleetDocument):
                fleets.append((model, doc))
            elif isinstance(model, ClusterDocument) or _is_cluster(doc):
                # An invalid Cluster still takes part in the repository-wide checks, so that
                # one typo does not also make its wave look empty.
                clusters.append((model if isinstance(model, ClusterDocument) else None, doc))
    fleet = _assemble(fleets, clusters, problems)
    if problems or fleet is None:
        raise FleetError(problems or [Problem(".", 1, 1, "no fleet found")])
    return fleet


def discover(base: Path, problems: list[Problem]) -> list[str]:
    """Relative POSIX paths of the YAML files that make up the fleet, sorted."""
    ignore = _ignore_spec(base, problems)
    found: list[str] = []
    real_base = base.resolve()
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        rel_dir = here.relative_to(base).as_posix()
        keep = []
        for name in sorted(dirnames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = here / name
            if name.startswith(".") or (rel_dir == "." and name in SKIPPED_DIRS):
                continue
            if ignore.match_file(rel + "/"):
                continue
            if full.is_symlink():
                if not _inside(full, real_base):
                    problems.append(_symlink_problem(rel))
                continue  # a link inside the repository names files we read at their real place
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not name.endswith(_SUFFIXES) or name.startswith("."):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if ignore.match_file(rel):
                continue
            if (here / name).is_symlink():
                # A link inside the repository names a file read at its real place; reading it
                # twice would declare its clusters twice.
                if not _inside(here / name, real_base):
                    problems.append(_symlink_problem(rel))
                continue
            found.append(rel)
    return sorted(found)


def _ignore_spec(base: Path, problems: list[Problem]) -> pathspec.GitIgnoreSpec:
    """The patterns of ``.gitopsignore``, with .gitignore semantics."""
    path = base / IGNORE_FILE
    if not path.is_file():
        return pathspec.GitIgnoreSpec([])
    try:
        return pathspec.GitIgnoreSpec.from_lines(path.read_text("utf-8").splitlines())
    except (UnicodeDecodeError, ValueError, OSError) as err:
        problems.append(
            Problem(IGNORE_FILE, 1, 1, f"cannot use {IGNORE_FILE}: {err}", "fix the pattern")
        )
        return pathspec.GitIgnoreSpec([])


def _inside(path: Path, real_base: Path) -> bool:
    try:
        path.resolve().relative_to(real_base)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _symlink_problem(rel: str) -> Problem:
    return Problem(
        rel,
        1,
        1,
        "symlink points outside the repository",
        "copy the file into the repository or list the link in .gitopsignore",
    )


def _read_text(base: Path, rel: str, problems: list[Problem]) -> str | None:
    path = base / rel
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(
                Problem(
                    rel,
                    1,
                    1,
                    f"file is {size} bytes, over the limit of {MAX_FILE_BYTES}",
                    "split it into several files",
                )
            )
            return None
        data = path.read_bytes()
    except OSError as err:
        problems.append(Problem(rel, 1, 1, f"cannot read file: {err.strerror or err}"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        problems.append(
            Problem(
                rel,
                line,
                col,
                f"file is not UTF-8 (byte 0x{data[err.start]:02x})",
                "save it as UTF-8",
            )
        )
        return None


def _validate(doc: Document, problems: list[Problem]) -> pydantic.BaseModel | None:
    value = doc.value
    if not isinstance(value, dict):
        line, col = doc.start
        problems.append(
            Problem(
                doc.file,
                line,
                col,
                "a document must be a mapping with apiVersion, kind, metadata and spec",
            )
        )
        return None
    api_version, kind = value.get("apiVersion"), value.get("kind")
    if api_version != API_VERSION:
        line, col = doc.where(("apiVersion",))
        shown = "missing" if api_version is None else repr(api_version)
        problems.append(
            Problem(
                doc.file,
                line,
                col,
                f"unknown apiVersion {shown}",
                f"use {API_VERSION}, or list the file in {IGNORE_FILE} if it is not a fleet document",
            )
        )
        return None
    if not isinstance(kind, str) or kind not in _MODELS:  # a list or a mapping is unhashable
        line, col = doc.where(("kind",))
        problems.append(
            Problem(
                doc.file,
                line,
                col,
                f"unknown kind {kind!r}",
                did_you_mean(str(kind), KINDS, "use one of Fleet, Cluster"),
            )
        )
        return None
    model = _MODELS[kind]
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as err:
        errors = err.errors()
        for error in errors:
            if error["type"] == "too_short" and _has_nested(error["loc"], errors):
                continue  # pydantic also calls a list "too short" once an invalid item is dropped
            problems.append(problem_from_error(doc, model, error))
        return None


def _has_nested(loc: tuple[Any, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _is_cluster(doc: Document) -> bool:
    value = doc.value
    return (
        isinstance(value, dict)
        and value.get("apiVersion") == API_VERSION
        and value.get("kind") == "Cluster"
    )


@dataclass(frozen=True)
class _ClusterFacts:
    """What the repository-wide checks need of a Cluster document, read even when it is invalid."""

    name: str
    labels: Mapping[str, str]
    pools: tuple[tuple[int, str, str], ...]  # (index, name, image)
    model: ClusterDocument | None
    doc: Document


def _facts(model: ClusterDocument | None, doc: Document) -> _ClusterFacts | None:
    if model is not None:
        pools = tuple((i, p.name, p.image) for i, p in enumerate(model.spec.node_pools))
        return _ClusterFacts(model.name, model.metadata.labels, pools, model, doc)
    value = doc.value
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return None
    labels = metadata.get("labels")
    labels = (
        {k: v for k, v in labels.items() if isinstance(v, str)} if isinstance(labels, dict) else {}
    )
    spec = value.get("spec")
    raw_pools = spec.get("nodePools") if isinstance(spec, dict) else None
    pools = tuple(
        (i, p["name"], p["image"])
        for i, p in enumerate(raw_pools if isinstance(raw_pools, list) else [])
        if isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and isinstance(p.get("image"), str)
    )
    return _ClusterFacts(name, labels, pools, None, doc)


def _assemble(
    fleets: list[tuple[FleetDocument, Document]],
    clusters: list[tuple[ClusterDocument | None, Document]],
    problems: list[Problem],
) -> Fleet | None:
    if not fleets:
        if not problems:
            problems.append(
                Problem(
                    ".",
                    1,
                    1,
                    "no Fleet document found",
                    "add fleet.yaml with kind: Fleet (see fleet-repo-example/)",
                )
            )
        return None
    fleet_doc, fleet_src = fleets[0]
    for _, extra in fleets[1:]:
        line, col = extra.where(("kind",))
        first = f"{fleet_src.file}:{fleet_src.where(('kind',))[0]}"
        problems.append(
            Problem(
                extra.file,
                line,
                col,
                f"a second Fleet document (the first is at {first})",
                "keep one",
            )
        )

    by_name: dict[str, _ClusterFacts] = {}
    for model, src in clusters:
        facts = _facts(model, src)
        if facts is None:
            continue
        if facts.name in by_name:
            other = by_name[facts.name].doc
            line, col = src.where(("metadata", "name"))
            oline, _ = other.where(("metadata", "name"))
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"duplicate cluster {facts.name!r} (also at {other.file}:{oline})",
                    "rename one of them",
                )
            )
            continue
        by_name[facts.name] = facts
        _check_pools(facts, fleet_doc, problems)
        if facts.model is not None:
            _check_cluster(facts.model, src, fleet_doc, problems)

    waves = _assign_waves(fleet_doc, fleet_src, by_name, problems)
    if problems:
        return None
    ordered = tuple(by_name[name].model for name in sorted(by_name))
    sources = MappingProxyType({name: by_name[name].doc.file for name in sorted(by_name)})
    return Fleet(
        document=fleet_doc,
        clusters=tuple(c for c in ordered if c is not None),
        waves=waves,
        sources=sources,
        freezes=_freeze_marks(fleet_doc, fleet_src, [(f.model, f.doc) for f in by_name.values()]),
    )


def _freeze_marks(
    fleet: FleetDocument,
    src: Document,
    clusters: list[tuple[ClusterDocument | None, Document]],
) -> tuple[FreezeMark, ...]:
    """Every one-off freeze with the place of its ``end``, fleet first, then clusters by name."""
    rollout = fleet.spec.rollout
    blocks: list[tuple[Maintenance | None, Document, tuple[str | int, ...]]] = [
        (rollout.maintenance, src, ("spec", "rollout", "maintenance"))
    ]
    blocks += [
        (w.maintenance, src, ("spec", "rollout", "waves", i, "maintenance"))
        for i, w in enumerate(rollout.waves)
    ]
    blocks += [
        (c.spec.maintenance, doc, ("spec", "maintenance"))
        for c, doc in sorted(clusters, key=lambda pair: pair[1].file)
        if c is not None
    ]
    marks = []
    for block, doc, here in blocks:
        for i, freeze in enumerate(block.freezes if block is not None else ()):
            if freeze.end is not None:
                line, col = doc.where((*here, "freezes", i, "end"))
                marks.append(FreezeMark(freeze.name, freeze.ends_at, doc.file, line, col))
    return tuple(marks)


def _check_pools(facts: _ClusterFacts, fleet: FleetDocument, problems: list[Problem]) -> None:
    images = fleet.spec.images
    src = facts.doc
    seen_pools: dict[str, int] = {}
    for index, name, image in facts.pools:
        here = ("spec", "nodePools", index)
        if name in seen_pools:
            line, col = src.where((*here, "name"))
            first_line, _ = src.where(("spec", "nodePools", seen_pools[name], "name"))
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"duplicate pool {name!r} in cluster {facts.name!r} "
                    f"(also at {src.file}:{first_line})",
                    "rename one of them",
                )
            )
        else:
            seen_pools[name] = index
        if image not in images:
            line, col = src.where((*here, "image"))
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"pool {name!r}: unknown image {image!r}",
                    did_you_mean(
                        image, images, "declare it under spec.images in the Fleet document"
                    ),
                )
            )


def _check_cluster(
    cluster: ClusterDocument, src: Document, fleet: FleetDocument, problems: list[Problem]
) -> None:
    images = fleet.spec.images
    cp_minor = _minor(cluster.spec.kubernetes_version)
    for index, pool in enumerate(cluster.spec.node_pools):
        here = ("spec", "nodePools", index)
        image = images.get(pool.image)
        if image is not None and cp_minor is not None:
            kubelet = _minor(image.kubelet_version)
            if kubelet is not None and not (
                cp_minor[0] == kubelet[0] and cp_minor[1] - 3 <= kubelet[1] <= cp_minor[1]
            ):
                line, col = src.where((*here, "image"))
                problems.append(
                    Problem(
                        src.file,
                        line,
                        col,
                        f"pool {pool.name!r}: image {pool.image!r} has kubelet {image.kubelet_version}, "
                        f"outside the skew policy for control plane {cluster.spec.kubernetes_version}",
                        "the kubelet may be at most three minor versions older and never newer",
                    )
                )
        if pool.surge == 0 and pool.unavailable == 0:
            line, col = (
                src.where((*here, "update"), key=True)
                if ("spec", "nodePools", index, "update") in src.keys
                else src.where((*here, "name"))
            )
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"pool {pool.name!r}: maxSurge and maxUnavailable both resolve to 0 for "
                    f"{pool.replicas} replicas, so no node could ever be replaced",
                    "set maxSurge to at least 1",
                )
            )
        _check_machine_deployment(cluster, index, src, problems)
        if len(set(pool.zones)) != len(pool.zones):
            line, col = src.where((*here, "zones"))
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"pool {pool.name!r}: a zone is listed twice",
                    "list each zone once",
                )
            )


def _check_machine_deployment(
    cluster: ClusterDocument, index: int, src: Document, problems: list[Problem]
) -> None:
    """Two pools cannot roll through one MachineDeployment or one topology worker."""
    ref = cluster.spec.node_pools[index].machine_deployment
    if ref is None:
        return
    for earlier in range(index):
        other = cluster.spec.node_pools[earlier]
        theirs = other.machine_deployment
        if theirs is None or (theirs.name, theirs.topology) != (ref.name, ref.topology):
            continue
        target = (
            f"MachineDeployment {ref.name!r}" if ref.name else f"topology worker {ref.topology!r}"
        )
        line, col = src.where(("spec", "nodePools", index, "machineDeployment"))
        first, _ = src.where(("spec", "nodePools", earlier, "machineDeployment"))
        problems.append(
            Problem(
                src.file,
                line,
                col,
                f"pool {cluster.spec.node_pools[index].name!r}: {target} is already rolled by "
                f"pool {other.name!r} (at {src.file}:{first})",
                "give each pool its own MachineDeployment or topology worker",
            )
        )
        return


def _minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"^v(\d+)\.(\d+)\.", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _assign_waves(
    fleet: FleetDocument,
    src: Document,
    clusters: dict[str, _ClusterFacts],
    problems: list[Problem],
) -> tuple[WaveMembers, ...]:
    waves = fleet.spec.rollout.waves
    members: list[list[str]] = [[] for _ in waves]
    seen_names: dict[str, int] = {}
    for index, wave in enumerate(waves):
        if wave.name in seen_names:
            line, col = src.where(("spec", "rollout", "waves", index, "name"))
            problems.append(
                Problem(src.file, line, col, f"duplicate wave {wave.name!r}", "rename one of them")
            )
        seen_names.setdefault(wave.name, index)
    for name in sorted(clusters):
        facts = clusters[name]
        csrc = facts.doc
        hits = [i for i, wave in enumerate(waves) if wave.clusters.matches(facts.labels)]
        for i in hits:
            members[i].append(name)
        if not hits:
            line, col = (
                csrc.where(("metadata", "labels"), key=True)
                if ("metadata", "labels") in csrc.keys
                else csrc.where(("metadata", "name"))
            )
            problems.append(
                Problem(
                    csrc.file,
                    line,
                    col,
                    f"cluster {name!r} is in no wave",
                    "give it labels that one wave's selector matches (e.g. ring: prod)",
                )
            )
        elif len(hits) > 1:
            line, col = csrc.where(("metadata", "labels"), key=True)
            names = " and ".join(repr(waves[i].name) for i in hits)
            problems.append(
                Problem(
                    csrc.file,
                    line,
                    col,
                    f"cluster {name!r} is in waves {names}",
                    "make the wave selectors disjoint so each cluster is in exactly one wave",
                )
            )
    for index, wave in enumerate(waves):
        if not members[index]:
            line, col = src.where(("spec", "rollout", "waves", index, "clusters"))
            problems.append(
                Problem(
                    src.file,
                    line,
                    col,
                    f"wave {wave.name!r} selects no cluster",
                    "fix its selector or remove the wave",
                )
            )
    return tuple(WaveMembers(wave, tuple(m)) for wave, m in zip(waves, members, strict=True))


def content_digest(root: str | os.PathLike[str]) -> str:
    """A revision for a fleet directory that is not a git checkout: a hash of its YAML files."""
    base = Path(root)
    digest = hashlib.sha256()
    for rel in discover(base, []):
        digest.update(rel.encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update((base / rel).read_bytes())
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()[:16]
