"""No value changes type on its way into the fleet: every wrong type is a problem, exactly worded.

A coercion here is a production incident: ``replicas: true`` read as 1 plans a 40-node pool
down to one node. Each case writes one wrong value over the valid base repository and expects
exactly one problem, rendered as ``gitops validate`` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops.cli import main
from gitops.fleet import FleetError, load
from tests.unit.fleet.conftest import FLEET, cluster

POOL = "    - name: workers\n      image: img-2\n      replicas: 3\n      zones: [a, b]\n"
PROD = "clusters/prod.yaml"


def _pool(text: str) -> dict[str, str]:
    return {PROD: cluster("prod", pools=text)}


def _cluster_spec(line: str) -> dict[str, str]:
    spec = "  kubernetesVersion: v1.31.4\n"
    return {PROD: cluster("prod").replace(spec, spec + line)}


def _wave(line: str) -> dict[str, str]:
    return {"fleet.yaml": FLEET.replace("      - name: prod\n", line + "      - name: prod\n")}


_UPDATE = f"{PROD}:13"
CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "replicas-boolean",
        _pool(POOL.replace("replicas: 3", "replicas: true")),
        f"{PROD}:11:17: spec.nodePools[0].replicas must be an integer, got boolean true"
        " (write a whole number like 3)",
    ),
    (
        "replicas-quoted",
        _pool(POOL.replace("replicas: 3", 'replicas: "3"')),
        f"{PROD}:11:17: spec.nodePools[0].replicas must be an integer, got string '3'"
        " (write 3 without quotes)",
    ),
    (
        "replicas-float",
        _pool(POOL.replace("replicas: 3", "replicas: 3.0")),
        f"{PROD}:11:17: spec.nodePools[0].replicas must be an integer, got number 3.0"
        " (write 3, without a fraction)",
    ),
    (
        "surge-float",
        _pool(POOL + "      update: {maxSurge: 1.0}\n"),
        f"{_UPDATE}:26: spec.nodePools[0].update.maxSurge must be an integer or a percentage, got"
        " number 1.0 (write 1, without a fraction, or a percentage like 25%)",
    ),
    (
        "surge-boolean",
        _pool(POOL + "      update: {maxSurge: true}\n"),
        f"{_UPDATE}:26: spec.nodePools[0].update.maxSurge must be an integer or a percentage, got"
        " boolean true (write a whole number like 1 or a percentage like 25%)",
    ),
    (
        "surge-quoted-number",
        _pool(POOL + "      update: {maxSurge: '2'}\n"),
        f"{_UPDATE}:26: spec.nodePools[0].update.maxSurge: '2' is a string, not a number"
        " (write 2 without quotes for a number of nodes or 2% for a percentage)",
    ),
    (
        "percent-over-100",
        _pool(POOL + "      update: {maxUnavailable: 101%}\n"),
        f"{_UPDATE}:32: spec.nodePools[0].update.maxUnavailable: '101%' is not a percentage"
        " (write an integer or a percent like 25%)",
    ),
    (
        "percent-leading-zero",
        _pool(POOL + "      update: {maxSurge: 007%}\n"),
        f"{_UPDATE}:26: spec.nodePools[0].update.maxSurge: '007%' is not a percentage"
        " (write an integer or a percent like 25%)",
    ),
    (
        "duration-without-unit",
        _pool(POOL + "      update: {soak: 10}\n"),
        f"{_UPDATE}:22: spec.nodePools[0].update.soak must be a duration with a unit, got integer"
        " 10 (write it with its unit, like 10s or 10m)",
    ),
    (
        "duration-zero-number",
        _pool(POOL + "      update: {nodeStartupTimeout: 0}\n"),
        f"{_UPDATE}:36: spec.nodePools[0].update.nodeStartupTimeout must be a duration with a"
        " unit, got integer 0 (write 0s)",
    ),
    (
        "duration-boolean",
        _pool(POOL + "      update: {drainTimeout: true}\n"),
        f"{_UPDATE}:30: spec.nodePools[0].update.drainTimeout must be a duration with a unit, got"
        " boolean true (write a duration like 90s, 10m or 1h30m)",
    ),
    (
        "duration-quoted-without-unit",
        _pool(POOL + "      update: {soak: '10'}\n"),
        f"{_UPDATE}:22: spec.nodePools[0].update.soak: '10' has no unit (write 10s or 10m)",
    ),
    (
        "duration-non-ascii-digits",
        _pool(POOL + "      update: {soak: \u0661\u0660m}\n"),
        f"{_UPDATE}:22: spec.nodePools[0].update.soak: '\u0661\u0660m' is not a duration"
        " (write a number with a unit, e.g. 90s, 10m, 1h30m)",
    ),
    (
        "duration-trailing-newline",
        _pool(POOL + "      update:\n        soak: |\n          10m\n"),
        f"{PROD}:14:15: spec.nodePools[0].update.soak: '10m\\n' is not a duration"
        " (write a number with a unit, e.g. 90s, 10m, 1h30m)",
    ),
    (
        "duration-list",
        _pool(POOL + "      update: {soak: []}\n"),
        f"{_UPDATE}:22: spec.nodePools[0].update.soak must be a duration with a unit, got a list"
        " (write a duration like 90s, 10m or 1h30m)",
    ),
    (
        "wave-duration-without-unit",
        _wave("        soak: 10\n"),
        "fleet.yaml:25:15: spec.rollout.waves[0].soak must be a duration with a unit, got integer"
        " 10 (write it with its unit, like 10s or 10m)",
    ),
    (
        "zones-not-a-list",
        _pool(POOL.replace("zones: [a, b]", "zones: a")),
        f"{PROD}:12:14: spec.nodePools[0].zones must be a list, got string 'a'",
    ),
    (
        "name-number",
        _pool(POOL.replace("name: workers", "name: 123")),
        f'{PROD}:9:13: spec.nodePools[0].name must be a string, got integer 123 (quote it: "123")',
    ),
    (
        "version-float",
        {PROD: cluster("prod").replace("v1.31.4", "1.31")},
        f'{PROD}:7:22: spec.kubernetesVersion must be a string, got number 1.31 (quote it: "1.31")',
    ),
    (
        "version-non-ascii-digits",
        {PROD: cluster("prod").replace("v1.31.4", "v1.\u0663\u0661.4")},
        f"{PROD}:7:22: spec.kubernetesVersion: 'v1.\u0663\u0661.4' does not have the required form"
        " (write a version such as v1.31.4)",
    ),
    (
        "paused-quoted",
        _cluster_spec("  paused: 'false'\n"),
        f"{PROD}:8:11: spec.paused must be true or false, got string 'false'"
        " (write false without quotes)",
    ),
    (
        "paused-number",
        _cluster_spec("  paused: 0\n"),
        f"{PROD}:8:11: spec.paused must be true or false, got integer 0 (write true or false)",
    ),
    (
        "fraction-quoted",
        {"fleet.yaml": FLEET + "    maxDriftedFraction: '0.3'\n"},
        "fleet.yaml:27:25: spec.rollout.maxDriftedFraction must be a number, got string '0.3'"
        " (write 0.3 without quotes)",
    ),
    (
        "fraction-boolean",
        {"fleet.yaml": FLEET + "    maxDriftedFraction: true\n"},
        "fleet.yaml:27:25: spec.rollout.maxDriftedFraction must be a number, got boolean true"
        " (write a number like 0.3)",
    ),
    (
        "failed-nodes-float",
        {"fleet.yaml": FLEET + "    maxFailedNodes: 2.0\n"},
        "fleet.yaml:27:21: spec.rollout.maxFailedNodes must be an integer, got number 2.0"
        " (write 2, without a fraction)",
    ),
    (
        "parallel-boolean",
        _wave("        maxClustersInParallel: true\n"),
        "fleet.yaml:25:32: spec.rollout.waves[0].maxClustersInParallel must be an integer, got"
        " boolean true (write a whole number like 3)",
    ),
    (
        "snake-case-key",
        _pool(POOL + "      update: {max_surge: 2}\n"),
        f"{_UPDATE}:16: unknown key 'max_surge' in spec.nodePools[0].update"
        " (did you mean 'maxSurge'?)",
    ),
    (
        "label-key-trailing-newline",
        {"fleet.yaml": FLEET.replace("{ring: canary}", '{"ring\\n": canary}')},
        "fleet.yaml:24:33: spec.rollout.waves[0].clusters.matchLabels: 'ring\\n' is not a valid"
        " label key (use an optional DNS prefix and a name of at most 63 characters of letters,"
        " digits, '-', '_' and '.', e.g. example.com/tier)",
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_type_is_one_exact_problem(
    make_repo: Callable[..., Path], files: dict[str, str], expected: str
) -> None:
    with pytest.raises(FleetError) as caught:
        load(make_repo(files))
    assert [str(p) for p in caught.value.problems] == [expected]


def test_validate_command_refuses_a_boolean_replica_count(
    make_repo: Callable[..., Path],
) -> None:
    root = make_repo(_pool(POOL.replace("replicas: 3", "replicas: true")))
    result = CliRunner().invoke(main, ["validate", str(root)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{PROD}:11:17: spec.nodePools[0].replicas must be an integer, got boolean true"
        " (write a whole number like 3)"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("update", "seconds"),
    [("{soak: '0'}", 0.0), ("{soak: 0s}", 0.0), ("{soak: 1h30m}", 5400.0), ("{soak: 500ms}", 0.5)],
)
def test_durations_with_units_and_a_bare_zero_string_are_read(
    make_repo: Callable[..., Path], update: str, seconds: float
) -> None:
    fleet = load(make_repo(_pool(POOL + f"      update: {update}\n")))
    assert fleet.cluster("prod").spec.node_pools[0].update.soak == seconds  # type: ignore[union-attr]


@pytest.mark.parametrize(("surge", "resolved"), [("0%", 0), ("100%", 3), ("34%", 2), ("2", 2)])
def test_surge_is_an_integer_or_a_percentage(
    make_repo: Callable[..., Path], surge: str, resolved: int
) -> None:
    text = POOL + f"      update: {{maxSurge: {surge}, maxUnavailable: 1}}\n"
    pool = load(make_repo(_pool(text))).cluster("prod").spec.node_pools[0]  # type: ignore[union-attr]
    assert pool.surge == resolved
