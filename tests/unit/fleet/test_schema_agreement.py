"""``gitops validate`` and the exported JSON Schema give the same verdict on any repository.

Property-based: hypothesis builds valid fleet repositories (a Fleet document and its Cluster
documents), then mutates one document zero to three times: a value of another YAML type (a
boolean for an integer, a string for a number, a float for an integer, a number for a duration,
null, a list, a mapping), a near miss of a patterned string (a duration or a percentage without
its unit, padding, a sign, a non-ASCII digit, a final newline), an unknown key (snake_case
spellings of real keys among them) or a missing required key. The loader (``load``, which is
what ``gitops validate`` runs) judges the repository, the schema judges each document
(``tests/unit/fleet/judge.py``: jsonschema as an editor applies it); the verdicts must agree, and
every document the schema rejects must have a problem reported in its file.

What is compared: the verdict on the whole repository, with generated repositories kept within
what both can judge. The loader also checks across documents what no per-document schema can
express (image references, waves covering each cluster once, version skew, unique pool names,
surge and unavailability not both resolving to 0), so the generator satisfies those by
construction and no mutation can break one while leaving its document valid: a retyped value
is valid only where another type is (a percentage for a number of nodes, null for an optional
field) and no cross-document check depends on it, every near miss breaks its pattern, keys are
never added to free-form maps (labels, images), and only required keys are deleted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gitops.fleet import FleetError, load
from tests.unit.fleet.judge import JUDGE, SCHEMA, schema_errors, yaml_integer

AGREE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- valid repositories ------------------------------------------------------------------------

RINGS = ("canary", "staging", "prod")
# Plain strategies over small alphabets: regular-expression strategies cost more to draw than
# the loader and the schema take to judge.
names = st.sampled_from(["a0", "web", "gpu-h100", "x", "eu-west-1", "n" * 63])
# Free text of the kind people write (no control characters, which YAML refuses to read).
free_text = st.text("abcXYZ 09-_.:/()\u00e9\u4e2d", min_size=1, max_size=16)
durations = st.one_of(
    st.just("0"),
    st.builds(
        "".join,
        st.lists(
            st.builds(
                lambda n, frac, unit: f"{n}{frac}{unit}",
                st.integers(0, 999),
                st.sampled_from(["", ".5", ".25"]),
                st.sampled_from(["ms", "s", "m", "h"]),
            ),
            min_size=1,
            max_size=3,
        ),
    ),
)
percents = st.integers(0, 100).map(lambda n: f"{n}%")
label_values = st.sampled_from(["", "a", "true", "v1.2", "Gold_9", "x" * 63])


def _optional(
    draw: st.DrawFn, out: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


@st.composite
def images(draw: st.DrawFn) -> dict[str, Any]:
    image: dict[str, Any] = {
        "osImage": draw(free_text),
        "kernelVersion": draw(free_text),
        # Minor 31 is within the skew policy of every control plane the clusters get (31 to 34).
        "kubeletVersion": f"v1.31.{draw(st.integers(0, 20))}",
        "containerRuntimeVersion": "containerd://2.0.1",
        "source": draw(free_text),
    }
    _optional(draw, image, "family", st.sampled_from(["", "talos", "flatcar"]))
    return image


@st.composite
def fleet_document(draw: st.DrawFn, rings: list[str], catalog: list[str]) -> dict[str, Any]:
    waves = []
    for ring in rings:
        wave: dict[str, Any] = {"name": ring}
        if draw(st.booleans()):
            wave["clusters"] = {"matchLabels": {"ring": ring}}
        else:
            expression = {"key": "ring", "operator": "In", "values": [ring]}
            wave["clusters"] = {"matchExpressions": [expression]}
        _optional(draw, wave, "soak", durations)
        _optional(draw, wave, "maxClustersInParallel", st.integers(1, 5))
        waves.append(wave)
    rollout: dict[str, Any] = {"waves": waves}
    _optional(draw, rollout, "maxFailedNodes", st.integers(0, 10))
    _optional(
        draw,
        rollout,
        "maxDriftedFraction",
        st.one_of(st.floats(0, 1), st.sampled_from([0, 1])),
    )
    spec: dict[str, Any] = {
        "images": {name: draw(images()) for name in catalog},
        "rollout": rollout,
    }
    _optional(
        draw,
        spec,
        "drift",
        st.builds(lambda r: {"remediate": r}, st.sampled_from(["replace", "report"])),
    )
    _optional(
        draw,
        spec,
        "status",
        st.builds(lambda b: {"branch": b}, free_text),
    )
    metadata: dict[str, Any] = {"name": draw(names)}
    _optional(
        draw,
        metadata,
        "annotations",
        st.dictionaries(free_text, free_text, max_size=2),
    )
    return {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Fleet",
        "metadata": metadata,
        "spec": spec,
    }


@st.composite
def node_pool(draw: st.DrawFn, name: str, catalog: list[str]) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "name": name,
        "image": draw(st.sampled_from(catalog)),
        # At least one node and a surge of at least one, so that surge and unavailability never
        # both resolve to 0, whatever maxUnavailable says.
        "replicas": draw(st.integers(1, 60)),
        "zones": draw(
            st.lists(
                st.sampled_from(["a", "b", "c", "eu-west-1a"]), min_size=1, max_size=3, unique=True
            )
        ),
    }
    _optional(
        draw,
        pool,
        "labels",
        st.dictionaries(
            st.sampled_from(["tier", "example.com/gpu", "pool"]), label_values, max_size=2
        ),
    )
    taint = st.fixed_dictionaries(
        {
            "key": st.sampled_from(["example.com/gpu", "dedicated"]),
            "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        },
        optional={"value": st.one_of(st.none(), label_values)},
    )
    _optional(draw, pool, "taints", st.lists(taint, max_size=2))
    ref = st.fixed_dictionaries(
        {
            "apiVersion": st.just("infrastructure.cluster.x-k8s.io/v1beta1"),
            "kind": st.just("SimMachineTemplate"),
            "name": names,
        },
        optional={"namespace": st.one_of(st.none(), names)},
    )
    template = st.fixed_dictionaries(
        {"infrastructureRef": ref},
        optional={
            "bootstrapRef": st.one_of(st.none(), ref),
            "imageField": st.sampled_from(["spec.template.spec.image", "spec.ami.id"]),
        },
    )
    _optional(draw, pool, "machineTemplate", template)
    # Named after the pool: two pools rolling one MachineDeployment is a cross-pool check.
    deployment = st.one_of(
        st.fixed_dictionaries({"name": st.just(name)}),
        st.fixed_dictionaries(
            {"topology": st.just(name)},
            optional={"imageVariable": st.sampled_from(["image", "os"])},
        ),
    )
    _optional(draw, pool, "machineDeployment", deployment)
    update: dict[str, Any] = {}
    _optional(
        draw,
        update,
        "maxSurge",
        st.one_of(st.integers(1, 5), st.integers(1, 100).map(lambda n: f"{n}%")),
    )
    _optional(draw, update, "maxUnavailable", st.one_of(st.integers(0, 5), percents))
    for key in ("nodeStartupTimeout", "drainTimeout", "soak"):
        _optional(draw, update, key, durations)
    _optional(draw, update, "onDrainTimeout", st.sampled_from(["fail", "quarantine", "force"]))
    _optional(draw, pool, "update", st.just(update))
    return pool


@st.composite
def cluster_document(draw: st.DrawFn, name: str, ring: str, catalog: list[str]) -> dict[str, Any]:
    labels = {"ring": ring}
    _optional(draw, labels, "region", st.sampled_from(["eu", "us"]))
    spec: dict[str, Any] = {
        "kubernetesVersion": f"v1.{draw(st.integers(31, 34))}.{draw(st.integers(0, 9))}",
        "nodePools": [
            draw(node_pool(f"pool-{i}", catalog)) for i in range(draw(st.integers(1, 3)))
        ],
    }
    _optional(draw, spec, "paused", st.booleans())
    machines = st.fixed_dictionaries(
        {}, optional={"provider": st.just("clusterapi"), "namespace": st.one_of(st.none(), names)}
    )
    _optional(draw, spec, "machines", machines)
    return {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


@st.composite
def repositories(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """File name → document of a valid repository: every wave selects at least one cluster."""
    rings = draw(st.lists(st.sampled_from(RINGS), min_size=1, max_size=3, unique=True))
    catalog = draw(
        st.lists(st.sampled_from(["img-a", "img-b", "img-c"]), min_size=1, max_size=3, unique=True)
    )
    homes = rings + draw(st.lists(st.sampled_from(rings), max_size=2))
    files = {"fleet.yaml": draw(fleet_document(rings, catalog))}
    for i, ring in enumerate(homes):
        files[f"clusters/c{i}.yaml"] = draw(cluster_document(f"c{i}", ring, catalog))
    return files


# --- mutations -----------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """The schema that applies to a value: ``$ref`` followed, a nullable ``anyOf`` unwrapped."""
    while True:
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in node:
            node = next(n for n in node["anyOf"] if n.get("type") != "null")
        else:
            return node


def sites(value: Any, node: dict[str, Any], loc: Loc = ()) -> Iterator[tuple[Loc, dict[str, Any]]]:
    """Every value of a valid document with the schema that applies to it."""
    if not loc:
        node = _resolve({"$ref": SCHEMA["discriminator"]["mapping"][value["kind"]]})
    node = _resolve(node)
    yield loc, node
    if isinstance(value, dict):
        for key, item in value.items():
            child = node.get("properties", {}).get(key) or node.get("additionalProperties")
            yield from sites(item, child, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from sites(item, node["items"], (*loc, index))


def _yaml_type(value: object) -> str:
    return "integer" if yaml_integer(None, value) else type(value).__name__


OTHER_TYPED = [
    True,
    False,
    7,
    -1,
    3.0,
    0.5,
    "3",
    "10",
    "true",
    "text",
    "25%",
    "10m",
    None,
    [],
    ["x"],
    {},
    {"x": 1},
]


def _patterns(node: dict[str, Any]) -> list[str]:
    return [n["pattern"] for n in (node, *node.get("oneOf", ())) if "pattern" in n]


def _near_misses(value: str) -> list[str]:
    """Strings one edit away from a patterned value: a duration or percentage without its unit,
    padding, a sign, a non-ASCII digit, a stray newline.

    Each either breaks the pattern or (``bare`` of a name ending in s, m or h) is another valid
    name of a field no cross-document check reads: generated cluster, pool and wave names and
    ring labels never end in those letters.
    """
    bare = value.rstrip("smh%").rstrip("m")
    return [
        value + "\n",
        " " + value,
        value + " ",
        "-" + value,
        value + "\u0661",
        bare,
        bare + " m",
        value.replace(".", ",") + "%%",
    ]


def _eligible(kind: str, value: Any, node: dict[str, Any], loc: Loc) -> bool:
    """Whether a mutation of ``kind`` applies to ``value`` (at ``loc``, judged by ``node``)."""
    model = node.get("additionalProperties") is False and isinstance(value, dict)
    if kind == "retype":
        return bool(loc)
    if kind == "near-miss":
        return bool(loc) and isinstance(value, str) and bool(_patterns(node))
    if kind == "unknown-key":
        return model
    return model and any(k in value for k in node.get("required", ()))


def _shape(node: dict[str, Any]) -> str:
    """The kind of field a schema describes: its type, and whether a pattern or a choice binds it."""
    if "oneOf" in node:
        return "one-of"
    if "const" in node or "enum" in node:
        return "choice"
    return str(node.get("type", "any")) + ("+pattern" if "pattern" in node else "")


MUTATIONS = ("retype", "near-miss", "unknown-key", "missing-key")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, dict[str, Any]], str | None, list[str]]:
    """A valid repository with one document mutated 0 to 3 times; (files, target, mutations)."""
    files = copy.deepcopy(draw(repositories()))
    count = draw(st.integers(0, 3))
    if count == 0:
        return files, None, []
    target = draw(st.sampled_from(sorted(files)))
    doc = files[target]
    candidates = list(sites(doc, SCHEMA))
    done = []
    for _ in range(count):
        kind = draw(st.sampled_from(MUTATIONS))
        eligible = [
            (loc, node) for loc, node in candidates if _eligible(kind, _value(doc, loc), node, loc)
        ]
        # Choose the kind of field first, then a field of that kind: the few integers, numbers,
        # booleans, durations and percentages of a document would drown among its strings.
        shape = draw(st.sampled_from(sorted({_shape(node) for _, node in eligible})))
        loc, node = draw(st.sampled_from([e for e in eligible if _shape(e[1]) == shape]))
        parent, key = _locate(doc, loc)
        if parent is None:
            continue  # an earlier mutation removed or replaced this value
        current = doc if key is None else parent[key]
        if not _eligible(kind, current, node, loc):
            continue  # an earlier mutation changed it
        if kind == "retype":
            others = [v for v in OTHER_TYPED if _yaml_type(v) != _yaml_type(current)]
            parent[key] = copy.deepcopy(draw(st.sampled_from(others)))
        elif kind == "near-miss":
            parent[key] = draw(st.sampled_from(_near_misses(current)))
        elif kind == "unknown-key":
            known = node.get("properties", {})
            snake = [re.sub(r"([A-Z])", r"_\1", k).lower() for k in known]
            word = draw(
                st.one_of(st.sampled_from(snake), st.text("abcdefXYZ_", min_size=1, max_size=12))
            )
            if word in known:
                continue
            current[word] = copy.deepcopy(draw(st.sampled_from(OTHER_TYPED)))
        else:
            del current[draw(st.sampled_from([k for k in node["required"] if k in current]))]
        done.append(kind)
    return files, target, done


def _value(doc: Any, loc: Loc) -> Any:
    parent, key = _locate(doc, loc)
    return doc if key is None else parent[key]


def _locate(doc: Any, loc: Loc) -> tuple[Any, str | int | None]:
    """The container of the value at ``loc`` and its key there (None, None when gone)."""
    if not loc:
        return doc, None
    parent = doc
    for part in loc[:-1]:
        if (isinstance(part, int) and isinstance(parent, list) and part < len(parent)) or (
            isinstance(part, str) and isinstance(parent, dict) and part in parent
        ):
            parent = parent[part]
        else:
            return None, None
    last = loc[-1]
    present = (isinstance(parent, dict) and last in parent) or (
        isinstance(parent, list) and isinstance(last, int) and last < len(parent)
    )
    return (parent, last) if present else (None, None)


# --- the property --------------------------------------------------------------------------------


def _write(root: Path, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write the documents as YAML; return what a YAML reader reads back from each file."""
    read = {}
    for rel, doc in files.items():
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
        read[rel] = yaml.safe_load(text)
    return read


@AGREE
@given(case=mutated())
def test_validate_and_the_schema_agree(
    tmp_path_factory: Any, case: tuple[dict[str, dict[str, Any]], str | None, list[str]]
) -> None:
    files, target, mutations = case
    for kind in mutations:
        event(kind)
    root = tmp_path_factory.mktemp("repo")
    read = _write(root, files)
    rejected = {rel for rel, doc in read.items() if not JUDGE.is_valid(doc)}
    try:
        load(root)
        problems: list[str] = []
    except FleetError as err:
        problems = [str(p) for p in err.problems]
    event("invalid" if problems else "valid")
    said = {rel: schema_errors(read[rel]) for rel in rejected}
    assert bool(problems) == bool(rejected), (
        f"mutated {target} by {mutations}; the loader says {problems or 'valid'}, "
        f"the schema says {said or 'valid'}"
    )
    assert rejected <= {p.split(":", 1)[0] for p in problems}
    assert rejected <= {target}, "only the mutated document may be invalid"


def test_generated_valid_repositories_are_not_trivial(tmp_path: Path) -> None:
    """The generator reaches the shapes the mutations work on (a floor, not an exact count)."""
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(files=repositories())
    def collect(files: dict[str, dict[str, Any]]) -> None:
        for doc in files.values():
            for loc, _ in sites(doc, SCHEMA):
                if loc:
                    seen.add(str(loc[-1]) if isinstance(loc[-1], str) else "[]")

    collect()
    assert {
        "replicas",
        "maxSurge",
        "soak",
        "matchExpressions",
        "machineTemplate",
        "taints",
        "machineDeployment",
    } <= seen


def test_schema_patterns_are_portable() -> None:
    """Every pattern reads alike in Python and in an editor (ECMA-262): anchored, ASCII classes."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern":
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(SCHEMA)
    assert len(found) >= 10
    for pattern in found:
        assert pattern.startswith("^") and pattern.endswith("$") and pattern.count("$") == 1, (
            pattern
        )
        assert not re.search(r"\\[dDwWsSbB]", pattern), (
            f"{pattern} has a class Python reads as Unicode"
        )


def test_judge_reads_yaml_integers_and_ecma_anchors() -> None:
    """The two corrections of the judge, checked against the schema itself."""
    pool = {"name": "p", "image": "i", "replicas": 3.0, "zones": ["a"]}
    cluster = {
        "apiVersion": "fleet.gitops.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c"},
        "spec": {"kubernetesVersion": "v1.31.4", "nodePools": [pool]},
    }
    assert not JUDGE.is_valid(cluster)
    pool["replicas"] = 3
    assert JUDGE.is_valid(cluster)
    cluster["spec"]["kubernetesVersion"] = "v1.31.4\n"
    assert not JUDGE.is_valid(cluster)
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(cluster), "python-jsonschema's own $"
