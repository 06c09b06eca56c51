"""What a valid fleet repository loads into: defaults, resolution, discovery rules, immutability."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from gitops.fleet import FleetError, load
from gitops.fleet.quantities import format_duration, parse_duration, resolve_int_or_percent
from tests.unit.fleet.conftest import FLEET, cluster

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"


def test_example_fleet_loads_with_its_waves() -> None:
    fleet = load(EXAMPLE)
    assert fleet.name == "acme"
    assert [(w.wave.name, w.clusters) for w in fleet.waves] == [
        ("canary", ("canary-eu-1",)),
        ("staging", ("staging-eu-1",)),
        ("prod", ("prod-eu-1", "prod-us-1")),
    ]
    pools = fleet.pools()
    assert len(fleet.clusters) >= 4 and len(pools) >= 8
    sizes = [p.replicas for _, p in pools]
    assert min(sizes) == 2 or min(sizes) >= 2
    assert max(sizes) == 40
    assert len(fleet.images) >= 3


def test_example_catalog_lists_each_family_oldest_first() -> None:
    fleet = load(EXAMPLE)
    assert fleet.previous_image("talos-1.9.2") == "talos-1.8.4"
    assert fleet.previous_image("talos-1.9.2-nvidia") == "talos-1.8.4-nvidia"
    assert fleet.previous_image("talos-1.8.4") == "talos-1.8.4"


def test_defaults_follow_the_design(make_repo: Callable[..., Path]) -> None:
    fleet = load(make_repo())
    prod = fleet.cluster("prod")
    assert prod is not None
    pool = prod.spec.node_pools[0]
    assert (pool.surge, pool.unavailable) == (1, 0)
    assert pool.update.on_drain_timeout == "fail"
    assert pool.update.node_startup_timeout == 600.0
    assert prod.spec.paused is False
    assert prod.namespace == "prod"
    assert fleet.document.spec.status.branch == "gitops/status"
    assert fleet.document.spec.drift.remediate == "replace"
    assert fleet.document.spec.rollout.max_failed_nodes == 1


def test_pools_name_a_machine_deployment_or_a_topology_worker(
    make_repo: Callable[..., Path],
) -> None:
    pool = "    - name: {name}\n      image: img-2\n      replicas: 3\n      zones: [a]\n"
    pools = (
        pool.format(name="plain")
        + pool.format(name="by-name")
        + "      machineDeployment: {name: workers}\n"
        + pool.format(name="by-topology")
        + "      machineDeployment: {topology: md-0}\n"
        + pool.format(name="own-variable")
        + "      machineDeployment: {topology: md-1, imageVariable: workerImage}\n"
    )
    prod = load(make_repo({"clusters/prod.yaml": cluster("prod", pools=pools)})).cluster("prod")
    assert prod is not None
    refs = {p.name: p.machine_deployment for p in prod.spec.node_pools}
    assert refs["plain"] is None
    by_name, by_topology, own = refs["by-name"], refs["by-topology"], refs["own-variable"]
    assert by_name is not None and (by_name.name, by_name.topology) == ("workers", None)
    assert by_name.image_variable is None
    assert by_topology is not None and (by_topology.name, by_topology.topology) == (None, "md-0")
    assert by_topology.image_variable == "image"
    assert own is not None and own.image_variable == "workerImage"


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailable rounds down
        (3, "10%", "10%", (1, 0)),
        (40, "25%", "10%", (10, 4)),
        (7, 2, "50%", (2, 3)),
    ],
)
def test_percentages_resolve_with_kubernetes_rounding(
    make_repo: Callable[..., Path],
    replicas: int,
    surge: object,
    unavailable: object,
    expected: tuple[int, int],
) -> None:
    pools = (
        f"    - name: workers\n      image: img-2\n      replicas: {replicas}\n      zones: [a]\n"
        f"      update: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}\n"
    )
    fleet = load(make_repo({"clusters/prod.yaml": cluster("prod", pools=pools)}))
    pool = fleet.clusters[1].spec.node_pools[0]
    assert (pool.surge, pool.unavailable) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0", 0.0),
    ],
)
def test_durations_become_seconds(
    make_repo: Callable[..., Path], text: str, seconds: float
) -> None:
    pools = (
        "    - name: workers\n      image: img-2\n      replicas: 3\n      zones: [a]\n"
        f"      update: {{soak: '{text}'}}\n"
    )
    fleet = load(make_repo({"clusters/prod.yaml": cluster("prod", pools=pools)}))
    assert fleet.clusters[1].spec.node_pools[0].update.soak == seconds


def test_duration_helpers_round_trip() -> None:
    for text in ("90s", "10m", "1h30m", "500ms", "2h"):
        assert format_duration(parse_duration(text)) == format_duration(
            parse_duration(format_duration(parse_duration(text)))
        )
    assert format_duration(5400) == "1h30m"
    assert resolve_int_or_percent("33%", 10, round_up=True) == 4


def test_model_is_immutable(make_repo: Callable[..., Path]) -> None:
    fleet = load(make_repo())
    pool = fleet.clusters[0].spec.node_pools[0]
    with pytest.raises(ValidationError):
        pool.replicas = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        fleet.clusters[0].metadata.labels["ring"] = "prod"  # type: ignore[index]
    with pytest.raises(TypeError):
        fleet.images["img-9"] = fleet.images["img-1"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fleet.revision = "abc"  # type: ignore[misc]
    assert fleet.with_revision("abc").revision == "abc" and fleet.revision == ""


def test_multi_document_files_and_yml_suffix(make_repo: Callable[..., Path]) -> None:
    both = cluster("prod") + "---\n" + cluster("prod-2") + "---\n"
    fleet = load(make_repo({"clusters/prod.yaml": None, "clusters/all.yml": both}))
    assert [c.name for c in fleet.clusters] == ["canary", "prod", "prod-2"]
    assert fleet.sources["prod-2"] == "clusters/all.yml"


def test_status_drift_hidden_and_ignored_files_are_skipped(make_repo: Callable[..., Path]) -> None:
    junk = "this: is: not: yaml: ["
    root = make_repo(
        {
            "status/prod.yaml": junk,
            "drift/prod.yaml": junk,
            ".github/workflows/ci.yaml": junk,
            "kustomize/kustomization.yaml": junk,
            "notes/a.yaml": junk,
            "notes/keep.txt": junk,
            ".gitopsignore": "# not fleet documents\nkustomize/\nnotes/*.yaml\n",
        }
    )
    assert len(load(root).clusters) == 2


def test_ignored_patterns_apply_only_where_listed(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"other/x.yaml": "kind: Kustomization\n", ".gitopsignore": "nothing-here/\n"})
    with pytest.raises(FleetError) as caught:
        load(root)
    assert [p.path for p in caught.value.problems] == ["other/x.yaml"]
    assert "list the file in .gitopsignore" in caught.value.problems[0].hint


def test_anchors_and_merge_keys_are_allowed(make_repo: Callable[..., Path]) -> None:
    pools = (
        "    - &base\n      name: a\n      image: img-2\n      replicas: 3\n      zones: [z1]\n"
        "    - <<: *base\n      name: b\n      replicas: 5\n"
    )
    fleet = load(make_repo({"clusters/prod.yaml": cluster("prod", pools=pools)}))
    a, b = fleet.clusters[1].spec.node_pools
    assert (a.name, a.replicas, b.name, b.replicas, b.zones) == ("a", 3, "b", 5, ("z1",))


def test_fleet_document_needs_waves(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"fleet.yaml": FLEET.split("  rollout:")[0] + "  rollout: {waves: []}\n"})
    with pytest.raises(FleetError) as caught:
        load(root)
    assert any("spec.rollout.waves: must not be empty" in str(p) for p in caught.value.problems)
