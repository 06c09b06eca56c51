"""Property-based fuzzing of the loader: no input makes it raise anything but FleetError, and
whatever it accepts, the JSON Schema accepts too (a loader laxer than its schema coerces types).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.fleet import Fleet, FleetError, load
from tests.examples import examples
from tests.unit.fleet.conftest import FLEET, cluster
from tests.unit.fleet.judge import JUDGE, schema_errors

FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _load_one(tmp: Path, name: str, data: bytes) -> Fleet | FleetError:
    (tmp / "fleet.yaml").write_text(FLEET)
    # The canary wave's cluster, so that a valid fuzzed prod cluster makes a valid repository.
    (tmp / "canary.yaml").write_text(cluster("canary", "canary"))
    (tmp / name).write_bytes(data)
    try:
        fleet = load(tmp)
    except FleetError as err:
        assert err.problems, "a FleetError always names at least one problem"
        for problem in err.problems:
            assert problem.line >= 1 and problem.col >= 1 and problem.message
        return err
    for path in (tmp / "fleet.yaml", tmp / "canary.yaml", tmp / name):
        for doc in filter(None, yaml.safe_load_all(path.read_text())):
            assert JUDGE.is_valid(doc), (
                f"the loader accepted what the schema refuses: {schema_errors(doc)}"
            )
    return fleet


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_fleet_error(tmp_path_factory, data: bytes) -> None:
    _load_one(tmp_path_factory.mktemp("bytes"), "c.yaml", data)


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), children, max_size=4),
    ),
    max_leaves=30,
)


@FUZZ
@given(value=yaml_values)
def test_arbitrary_yaml_only_raises_fleet_error(tmp_path_factory, value: object) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    _load_one(tmp_path_factory.mktemp("yaml"), "c.yaml", text.encode())


KEYS = [
    "name",
    "image",
    "replicas",
    "zones",
    "labels",
    "taints",
    "update",
    "maxSurge",
    "soak",
    "machineTemplate",
    "spec",
    "metadata",
    "kind",
    "nodePools",
]


@FUZZ
@given(
    key=st.sampled_from(KEYS),
    value=yaml_values,
    where=st.integers(min_value=0, max_value=11),
)
def test_mutated_cluster_documents_only_raise_fleet_error(
    tmp_path_factory, key: str, value: object, where: int
) -> None:
    lines = cluster("prod").splitlines()
    indent = len(lines[where]) - len(lines[where].lstrip())
    dumped = yaml.safe_dump({key: value}, default_flow_style=True, width=10_000).strip()
    lines.insert(where + 1, " " * indent + dumped)
    _load_one(tmp_path_factory.mktemp("mutated"), "c.yaml", "\n".join(lines).encode())


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("&*[]{}:-?|>!%@`'\"#,\n ab01")), max_size=300))
def test_yaml_punctuation_soup_only_raises_fleet_error(tmp_path_factory, text: str) -> None:
    _load_one(tmp_path_factory.mktemp("soup"), "c.yaml", text.encode())


BASE = cluster(
    "prod",
    pools="    - name: workers\n      image: img-2\n      replicas: 3\n      zones: [a, b]\n"
    "      update:\n        maxSurge: 25%\n        maxUnavailable: 1\n        soak: 1m\n",
).splitlines()
VALUE_LINES = [i for i, line in enumerate(BASE) if re.match(r"^ *(- )?[A-Za-z]+: \S", line)]


# Values one type away from what fields hold, which arbitrary values seldom hit.
CONFUSABLE = st.sampled_from([True, False, 0, 1, 3, 3.0, 0.5, -1, "3", "10", "10m", "25%", None])


@FUZZ
@given(where=st.sampled_from(VALUE_LINES), value=st.one_of(CONFUSABLE, yaml_values))
def test_replaced_values_are_accepted_only_when_the_schema_accepts_them(
    tmp_path_factory, where: int, value: object
) -> None:
    """Any value in place of a written one: a typed field never takes another type silently."""
    lines = list(BASE)
    key, _, _ = lines[where].partition(": ")
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    lines[where] = f"{key}: {dumped.removesuffix('...').strip()}"
    _load_one(tmp_path_factory.mktemp("replaced"), "c.yaml", "\n".join(lines).encode())


def test_the_base_of_replaced_values_is_valid(tmp_path: Path) -> None:
    """Without this, every replacement could fail for another reason and check nothing."""
    assert isinstance(_load_one(tmp_path, "c.yaml", "\n".join(BASE).encode()), Fleet)
