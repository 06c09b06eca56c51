"""Image facts beyond nodeInfo, pool fingerprints and GPU driver upgrades, in the pure core.

A GPU image declares its driver, CUDA runtime, extension labels and schematic annotation; the
drift finder checks them (a missing one only after the grace period), the pool's fingerprints
show which nodes differ even in facts nobody declared, and a pool whose GPU driver the GPU
Operator is upgrading starts no replacement.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from gitops import drift, facts
from gitops import plan as planner
from gitops.fleet import Fleet
from gitops.inventory import Node
from gitops.plan import RolloutState, jsonout, text
from gitops.plan.model import Wait
from tests.unit.core.factories import IMAGES, T0, cluster, declared, fleet, pool

DRIVER = "nvidia.com/cuda.driver-version.full"
KERNEL_LABEL = "feature.node.kubernetes.io/kernel-version.full"
SCHEMATIC = "extensions.talos.dev/schematic"
UPGRADE = "nvidia.com/gpu-driver-upgrade-state"
GPU = {
    **IMAGES["img-2"],
    "family": "gpu",
    "source": "registry/gpu:v2",
    "facts": {
        "labels": {DRIVER: "550.127.08", "extensions.talos.dev/nvidia-container-toolkit": "1.17"},
        "annotations": {SCHEMATIC: "3765"},
    },
}
GPU_OLD = {**GPU, "source": "registry/gpu:v1", "facts": {"labels": {DRIVER: "550.127.05"}}}


def gpu_fleet(image: str = "gpu-2", **kw: Any) -> Fleet:
    images: dict[str, Any] = {**IMAGES, "gpu-1": GPU_OLD, "gpu-2": GPU}
    return fleet(
        [cluster("c1", ring="canary", pools=[pool("gpu", image=image, replicas=3)])],
        images=images,
        **kw,
    )


def with_labels(n: Node, **labels: str) -> Node:
    return replace(n, labels={**n.labels, **labels})


def test_a_changed_driver_is_image_drift_naming_the_fact_and_both_values() -> None:
    f = gpu_fleet()
    inv = declared(
        f, hook=lambda c, p, i, n: with_labels(n, **{DRIVER: "550.144.03"}) if i == 1 else n
    )
    found = [x for x in drift.find(f, inv, T0) if x.is_drift]
    assert [(x.kind, x.node, x.fact, x.expected, x.observed) for x in found] == [
        ("ImageMismatch", "c1-gpu-001", f"label {DRIVER}", "550.127.08", "550.144.03")
    ]
    assert found[0].remediation == "replace"
    assert "550.144.03" in found[0].message and "550.127.08" in found[0].message
    plan = planner.make(f, inv, RolloutState(), T0)
    (pool_plan,) = plan.waves[0].clusters[0].pools
    assert pool_plan.drifted == 1
    replaced = [a for a in plan.actions() if a.kind == "CreateReplacement"]
    assert [a.replaces for a in replaced] == ["c1-gpu-001"]  # type: ignore[attr-defined]


def test_the_report_policy_reports_fact_drift_without_replacing() -> None:
    f = gpu_fleet(remediate="report")
    inv = declared(f, hook=lambda c, p, i, n: with_labels(n, **{DRIVER: "1"}) if i == 0 else n)
    (finding,) = [x for x in drift.find(f, inv, T0) if x.is_drift]
    assert (finding.kind, finding.remediation) == ("ImageMismatch", "report")
    assert not list(planner.make(f, inv, RolloutState(), T0).actions())


def test_a_fact_not_reported_yet_is_unknown_until_the_grace_period_has_passed() -> None:
    f = gpu_fleet()

    def unlabelled(c: str, p: str, i: int, n: Node) -> Node:
        if i != 2:
            return n
        labels = {k: v for k, v in n.labels.items() if k != DRIVER}
        return replace(n, labels=labels, ready_since=T0 - 60)  # Ready a minute ago

    inv = declared(f, hook=unlabelled)
    assert [x for x in drift.find(f, inv, T0) if x.is_drift] == []  # 1 min < 10 min grace
    assert [x for x in drift.find(f, inv) if x.is_drift] == []  # without now: unknown
    later = [x for x in drift.find(f, inv, T0 + 600) if x.is_drift]
    assert [(x.kind, x.node, x.fact, x.observed) for x in later] == [
        ("ImageMismatch", "c1-gpu-002", f"label {DRIVER}", "(missing)")
    ]
    assert "grace period" in later[0].message
    # A node not Ready yet is never judged on a missing fact.
    not_ready = declared(
        f,
        hook=lambda c, p, i, n: replace(unlabelled(c, p, i, n), ready=False) if i == 2 else n,
    )
    assert not [x for x in drift.find(f, not_ready, T0 + 3600) if x.kind == "ImageMismatch"]


def test_a_missing_annotation_fact_counts_too() -> None:
    f = gpu_fleet()
    inv = declared(
        f,
        hook=lambda c, p, i, n: replace(n, annotations={}) if i == 0 else n,
    )
    (finding,) = [x for x in drift.find(f, inv, T0) if x.is_drift]
    assert (finding.fact, finding.expected, finding.observed) == (
        f"annotation {SCHEMATIC}",
        "3765",
        "(missing)",
    )


def test_nodes_are_checked_against_the_facts_of_the_image_they_run() -> None:
    """An outdated node (git moved) reports its own image's driver: pending, not drift."""
    f = gpu_fleet()
    inv = declared(f, image="gpu-1")
    kinds = {x.kind for x in drift.find(f, inv, T0)}
    assert kinds == {"Outdated"}


def test_an_undeclared_fact_that_differs_in_a_pool_is_a_warning_never_remediated() -> None:
    f = gpu_fleet()

    def kernel_label(c: str, p: str, i: int, n: Node) -> Node:
        return with_labels(n, **{KERNEL_LABEL: "6.12.1" if i != 1 else "6.12.9"})

    inv = declared(f, hook=kernel_label)
    (finding,) = [x for x in drift.find(f, inv, T0) if x.is_drift]
    assert (finding.kind, finding.severity, finding.remediation) == (
        "FactDivergence",
        "warning",
        "report",
    )
    assert (finding.node, finding.fact, finding.expected, finding.observed) == (
        "c1-gpu-001",
        f"label {KERNEL_LABEL}",
        "6.12.1",
        "6.12.9",
    )
    assert drift.drifted_nodes([finding]) == frozenset()  # never a replacement candidate
    assert not list(planner.make(f, inv, RolloutState(), T0).actions())


def test_each_pool_gets_a_fingerprint_and_names_its_odd_nodes_out() -> None:
    f = gpu_fleet()
    uniform = declared(f)
    (prints,) = facts.fleet_fingerprints(f, uniform)
    assert (prints.nodes, prints.distinct, prints.odd) == (3, 1, ())
    assert len(prints.common) == 12
    odd = declared(f, hook=lambda c, p, i, n: with_labels(n, **{KERNEL_LABEL: "x"}) if i else n)
    (prints,) = facts.fleet_fingerprints(f, odd)
    assert prints.distinct == 2 and prints.counts[0][1] == 2
    assert [(o.node, o.differs) for o in prints.odd] == [
        ("c1-gpu-000", ((f"label {KERNEL_LABEL}", "x", "(missing)"),))
    ]
    # The same nodes give the same fingerprints, run after run.
    assert facts.fleet_fingerprints(f, odd) == (prints,)
    # The plan carries them, in every format.
    plan = planner.make(f, odd, RolloutState(), T0)
    (pool_plan,) = plan.waves[0].clusters[0].pools
    assert (pool_plan.fingerprints, pool_plan.odd_nodes) == (2, ("c1-gpu-000",))
    (pool_json,) = json.loads(jsonout.render(plan))["waves"][0]["clusters"][0]["pools"]
    assert (pool_json["fingerprints"], pool_json["oddNodes"]) == (2, ["c1-gpu-000"])
    assert "2 fingerprints (odd: c1-gpu-000)" in text.render(plan)
    uniform_plan = planner.make(f, uniform, RolloutState(), T0)
    assert "fingerprints" not in text.render(uniform_plan)
    table = text.render_fingerprints(facts.fleet_fingerprints(f, odd))
    assert "c1-gpu-000" in table and f"label {KERNEL_LABEL}: (missing) (most nodes: x)" in table


def test_a_clusters_node_facts_are_read_once_per_observation_by_drift_and_plan() -> None:
    """The drift finder and the plan's fingerprints share one reading of every node's facts,
    remembered on the observed cluster for the fleet's fact keys (equal keys: one object)."""
    f = gpu_fleet()
    inv = declared(f, hook=lambda c, p, i, n: with_labels(n, **{KERNEL_LABEL: "x"}) if i else n)
    (seen,) = inv.clusters
    keys = facts.Keys.of(f)
    assert facts.Keys.of(gpu_fleet()) is keys
    calls: list[str] = []
    real = facts.node_facts

    def counted(node: Node, k: facts.Keys) -> facts.Facts:
        calls.append(node.name)
        return real(node, k)

    facts.node_facts = counted  # type: ignore[assignment]
    try:
        plan = planner.make(f, inv, RolloutState(), T0)
        assert facts.fleet_fingerprints(f, inv)[0].distinct == 2
    finally:
        facts.node_facts = real  # type: ignore[assignment]
    assert sorted(calls) == sorted(n.name for n in seen.nodes)  # each node once, in all
    assert facts.cluster_facts(seen, keys) is facts.cluster_facts(seen, keys)
    assert plan.waves[0].clusters[0].pools[0].odd_nodes == ("c1-gpu-000",)


def test_nodes_reporting_the_same_facts_share_one_facts_tuple() -> None:
    f = gpu_fleet()
    inv = declared(f, hook=lambda c, p, i, n: with_labels(n, **{KERNEL_LABEL: "x"}) if i else n)
    keys = facts.Keys.of(f)
    first, second, third = inv.clusters[0].nodes
    assert facts.node_facts(second, keys) is facts.node_facts(third, keys)
    assert facts.node_facts(first, keys) != facts.node_facts(second, keys)
    assert (f"label {KERNEL_LABEL}", "x") in facts.node_facts(second, keys)


def test_the_fingerprint_covers_the_facts_only() -> None:
    """A label no labeller publishes (a team label) does not split the fingerprint."""
    f = gpu_fleet()
    inv = declared(f, hook=lambda c, p, i, n: with_labels(n, team=f"t{i}"))
    (prints,) = facts.fleet_fingerprints(f, inv)
    assert prints.distinct == 1


def test_a_gpu_driver_upgrade_in_flight_holds_the_pools_replacements() -> None:
    f = gpu_fleet()

    def upgrading(state: str) -> Any:
        return lambda c, p, i, n: with_labels(n, **{UPGRADE: state}) if i == 2 else n

    held = planner.make(
        f, declared(f, image="gpu-1", hook=upgrading("upgrade-required")), RolloutState(), T0
    )
    (pool_plan,) = held.waves[0].clusters[0].pools
    assert pool_plan.status == "waiting"
    (wait,) = [a for a in pool_plan.batches[0].actions if isinstance(a, Wait)]
    assert (wait.on, wait.what) == ("gpu-driver-upgrade", "c1-gpu-002")
    assert f"{UPGRADE}=upgrade-required" in wait.reason
    assert not [a for a in held.actions() if a.kind == "CreateReplacement" and a.ready]
    assert "GPU Operator is upgrading the driver on c1-gpu-002" in text.render(held)
    done = planner.make(
        f, declared(f, image="gpu-1", hook=upgrading("upgrade-done")), RolloutState(), T0
    )
    assert [a for a in done.actions() if a.kind == "CreateReplacement" and a.ready]
