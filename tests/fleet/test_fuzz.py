"""Property-based fuzzing of the loader: no input makes it raise anything but FleetError."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.fleet import Fleet, FleetError, load
from tests.fleet.conftest import FLEET, cluster

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _load_one(tmp: Path, name: str, data: bytes) -> Fleet | FleetError:
    (tmp / "fleet.yaml").write_text(FLEET)
    (tmp / name).write_bytes(data)
    try:
        return load(tmp)
    except FleetError as err:
        assert err.problems, "a FleetError always names at least one problem"
        for problem in err.problems:
            assert problem.line >= 1 and problem.col >= 1 and problem.message
        return err


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
