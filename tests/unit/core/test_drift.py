"""drift.find: one table row per kind and per decision documented in gitops/drift.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gitops import drift
from gitops.drift import Finding
from gitops.fleet import Fleet
from gitops.fleet.wellknown import CORDONED_BY_ANNOTATION, QUARANTINE_LABEL
from gitops.inventory import ClusterInventory, Inventory, Node, NodeTaint
from tests.unit.core import factories as f

GPU = {"example.com/gpu": "true"}
GPU_TAINT = {"key": "example.com/gpu", "effect": "NoSchedule"}


def small(remediate: str = "replace") -> Fleet:
    return f.fleet(
        [
            f.cluster(
                "prod",
                pools=[f.pool(replicas=3, labels=GPU, taints=[GPU_TAINT])],
            )
        ],
        remediate=remediate,
    )


def observe(fleet: Fleet, change: dict[int, dict[str, Any]], *, count: int = 3) -> Inventory:
    """The declared inventory of ``small()``, with node i's fields overridden by change[i]."""

    def hook(cluster: str, pool: str, i: int, node: Node) -> Node | None:
        fields = change.get(i)
        return replace(node, **fields) if fields else node

    return f.declared(fleet, hook=hook, count=lambda c, p: count)


def kinds(findings: tuple[Finding, ...]) -> list[tuple[str, str, str, str, str]]:
    return [(x.kind, x.node, x.fact, x.expected, x.observed) for x in findings]


N0 = "prod-workers-000"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({}, [], id="as-declared"),
        pytest.param(
            {0: {"kernel_version": "6.12.1-patched"}},
            [("ImageMismatch", N0, "kernelVersion", "6.12.1", "6.12.1-patched")],
            id="kernel-patched-by-hand",
        ),
        pytest.param(
            {0: {"kubelet_version": "v1.31.9", "container_runtime_version": "containerd://9"}},
            [
                (
                    "ImageMismatch",
                    N0,
                    "containerRuntimeVersion",
                    "containerd://2.0.2",
                    "containerd://9",
                ),
                ("ImageMismatch", N0, "kubeletVersion", "v1.31.4", "v1.31.9"),
            ],
            id="one-finding-per-fact",
        ),
        pytest.param(
            {
                0: {
                    "os_image": "OS (v1)",
                    "kernel_version": "6.6.1",
                    "kubelet_version": "v1.31.0",
                    "container_runtime_version": "containerd://2.0.0",
                }
            },
            [("Outdated", N0, "image", "img-2", "img-1")],
            id="previous-image-is-outdated-not-drift",
        ),
        pytest.param(
            {
                0: {
                    "os_image": "OS (v1)",
                    "kernel_version": "6.6.99",
                    "kubelet_version": "v1.31.0",
                    "container_runtime_version": "containerd://2.0.0",
                }
            },
            [
                ("ImageMismatch", N0, "kernelVersion", "6.6.1", "6.6.99"),
                ("Outdated", N0, "image", "img-2", "img-1"),
            ],
            id="old-image-patched-compares-with-the-old-image",
        ),
        pytest.param(
            {0: {"labels": {"node.cluster.x-k8s.io/pool": "workers"}}},
            [("ConfigMismatch", N0, "label example.com/gpu", "true", "(missing)")],
            id="declared-label-missing",
        ),
        pytest.param(
            {0: {"labels": {"node.cluster.x-k8s.io/pool": "workers", "example.com/gpu": "no"}}},
            [("ConfigMismatch", N0, "label example.com/gpu", "true", "no")],
            id="declared-label-changed",
        ),
        pytest.param(
            {
                0: {
                    "labels": {
                        "node.cluster.x-k8s.io/pool": "workers",
                        "example.com/gpu": "true",
                        "team": "ml",
                    }
                }
            },
            [],
            id="extra-label-ignored",
        ),
        pytest.param(
            {0: {"taints": ()}},
            [
                (
                    "ConfigMismatch",
                    N0,
                    "taint example.com/gpu:NoSchedule",
                    "example.com/gpu:NoSchedule",
                    "(missing)",
                )
            ],
            id="declared-taint-missing",
        ),
        pytest.param(
            {0: {"taints": (NodeTaint("example.com/gpu", "NoSchedule", "x"),)}},
            [
                (
                    "ConfigMismatch",
                    N0,
                    "taint example.com/gpu:NoSchedule",
                    "example.com/gpu:NoSchedule",
                    "example.com/gpu=x:NoSchedule",
                )
            ],
            id="declared-taint-with-another-value",
        ),
        pytest.param(
            {
                0: {
                    "taints": (
                        NodeTaint("example.com/gpu", "NoSchedule"),
                        NodeTaint("hand/made", "NoExecute", "1"),
                    )
                }
            },
            [
                (
                    "ConfigMismatch",
                    N0,
                    "taint hand/made:NoExecute",
                    "(absent)",
                    "hand/made=1:NoExecute",
                )
            ],
            id="extra-hard-taint-counts",
        ),
        pytest.param(
            {
                0: {
                    "taints": (
                        NodeTaint("example.com/gpu", "NoSchedule"),
                        NodeTaint("hand/made", "PreferNoSchedule"),
                        NodeTaint("node.kubernetes.io/unschedulable", "NoSchedule"),
                        NodeTaint("node.cluster.x-k8s.io/uninitialized", "NoSchedule"),
                        NodeTaint("ToBeDeletedByClusterAutoscaler", "NoSchedule"),
                    )
                }
            },
            [],
            id="soft-and-system-taints-ignored",
        ),
        pytest.param(
            {0: {"unschedulable": True}},
            [("StuckCordoned", N0, "unschedulable", "false", "true")],
            id="cordoned-by-a-human",
        ),
        pytest.param(
            {0: {"unschedulable": True, "annotations": {CORDONED_BY_ANNOTATION: "p-1"}}},
            [],
            id="cordoned-by-the-controller",
        ),
        pytest.param(
            {
                0: {
                    "unschedulable": True,
                    "labels": {
                        "node.cluster.x-k8s.io/pool": "workers",
                        "example.com/gpu": "true",
                        QUARANTINE_LABEL: "drain-timeout",
                    },
                }
            },
            [],
            id="quarantined-is-not-stuck",
        ),
    ],
)
def test_node_findings(change: dict[int, dict[str, Any]], expected: list[tuple[str, ...]]) -> None:
    fleet = small()
    assert kinds(drift.find(fleet, observe(fleet, change))) == expected


def test_node_joined_by_hand_is_unmanaged() -> None:
    fleet = small()
    cluster = observe(fleet, {}).clusters[0]
    stray = f.node(fleet, "stray", image="img-2")  # no pool label, no machine
    inventory = Inventory(
        (ClusterInventory.build("prod", (*cluster.nodes, stray), cluster.machines),)
    )
    found = drift.find(fleet, inventory)
    assert kinds(found) == [("UnmanagedNode", "stray", "pool", "workers", "(none)")]
    assert found[0].message == "node stray belongs to no pool (declared pools: workers)"


def test_undeclared_pool_is_unmanaged() -> None:
    fleet = small()
    inventory = observe(
        fleet, {2: {"pool": "legacy", "labels": {"node.cluster.x-k8s.io/pool": "legacy"}}}
    )
    found = drift.find(fleet, inventory)
    assert ("UnmanagedNode", "prod-workers-002", "pool", "workers", "legacy") in kinds(found)
    # The node left the pool, so the pool is one short.
    assert ("CapacityMismatch", "", "replicas", "3", "2") in kinds(found)


def test_same_facts_but_booted_from_another_family_is_outdated() -> None:
    fleet = f.example()  # talos-1.9.2 and talos-1.9.2-nvidia report identical facts
    gpu = ("prod-eu-1", "gpu-h100")

    def image(cluster: str, pool: str) -> str:
        return "talos-1.9.2" if (cluster, pool) == gpu else fleet.cluster(cluster).pool(pool).image  # type: ignore[union-attr]

    found = drift.find(fleet, f.declared(fleet, image=image))
    outdated = [x for x in found if x.kind == "Outdated"]
    assert len(outdated) == 8
    assert {(x.pool, x.expected, x.observed) for x in outdated} == {
        ("gpu-h100", "talos-1.9.2-nvidia", "talos-1.9.2")
    }
    assert not [x for x in found if x.kind != "Outdated"]


@pytest.mark.parametrize(
    ("count", "observed"),
    [(2, "2"), (5, "5")],
    ids=["fewer", "more"],
)
def test_capacity_mismatch(count: int, observed: str) -> None:
    fleet = small()
    found = drift.find(fleet, observe(fleet, {}, count=count))
    assert kinds(found) == [("CapacityMismatch", "", "replicas", "3", observed)]
    assert found[0].remediation == "scale"


def test_replacement_in_flight_fills_the_slot_of_the_node_it_replaces() -> None:
    fleet = small()
    inventory = observe(fleet, {0: {"unschedulable": True}})
    cluster = inventory.clusters[0]
    replacement = f.machine("new-1", "workers", replaces=N0, created=f.T0)
    inventory = Inventory(
        (ClusterInventory.build("prod", cluster.nodes, (*cluster.machines, replacement)),)
    )
    # 4 machines for 3 replicas, but no capacity finding; and the cordoned node being
    # replaced is not StuckCordoned.
    assert kinds(drift.find(fleet, inventory)) == []


def test_unreachable_and_unobserved_clusters_are_unknown() -> None:
    fleet = f.fleet([f.cluster("a"), f.cluster("b"), f.cluster("c")])
    inventory = f.declared(fleet, unreachable={"a": "connection refused"})
    inventory = Inventory(tuple(c for c in inventory.clusters if c.name != "b"))
    found = drift.find(fleet, inventory)
    assert [(x.kind, x.cluster, x.observed) for x in found] == [
        ("Unknown", "a", "connection refused"),
        ("Unknown", "b", "not observed"),
    ]
    assert all(x.severity == "error" and not x.is_drift for x in found)


@pytest.mark.parametrize("policy", ["replace", "report"])
def test_remediation_follows_the_policy_and_severity_the_kind(policy: str) -> None:
    fleet = small(policy)
    inventory = observe(
        fleet,
        {
            0: {"kernel_version": "x"},
            1: {"taints": ()},
            2: {
                "os_image": "OS (v1)",
                "kernel_version": "6.6.1",
                "kubelet_version": "v1.31.0",
                "container_runtime_version": "containerd://2.0.0",
            },
        },
    )
    by_kind = {x.kind: x for x in drift.find(fleet, inventory)}
    assert by_kind["ImageMismatch"].remediation == policy
    assert by_kind["ConfigMismatch"].remediation == policy
    assert by_kind["Outdated"].remediation == "replace"
    assert [by_kind[k].severity for k in ("ImageMismatch", "ConfigMismatch", "Outdated")] == [
        "error",
        "warning",
        "info",
    ]
    assert by_kind["ImageMismatch"].is_drift and not by_kind["Outdated"].is_drift


def test_fingerprint_is_stable_and_names_what_differs() -> None:
    fleet = small()
    one = drift.find(fleet, observe(fleet, {0: {"kernel_version": "x"}}))[0]
    again = drift.find(fleet, observe(fleet, {0: {"kernel_version": "x"}}))[0]
    other = drift.find(fleet, observe(fleet, {0: {"kernel_version": "y"}}))[0]
    assert one.fingerprint == again.fingerprint
    assert one.fingerprint != other.fingerprint
    assert len(one.fingerprint) == 16
    # Fixed forever: reports deduplicate on it across versions.
    assert (
        one.fingerprint
        == Finding(
            kind="ImageMismatch",
            cluster="prod",
            pool="workers",
            node=N0,
            fact="kernelVersion",
            expected="6.12.1",
            observed="x",
            severity="error",
            remediation="replace",
        ).fingerprint
    )


def test_findings_are_sorted_and_messages_explain() -> None:
    fleet = small()
    inventory = observe(fleet, {2: {"kernel_version": "x"}, 0: {"unschedulable": True}})
    found = drift.find(fleet, inventory)
    assert [x.node for x in found] == ["prod-workers-000", "prod-workers-002"]
    assert found[1].message == (
        "node prod-workers-002 reports kernelVersion x where image img-2 has 6.12.1: "
        "the host was changed in place"
    )
    assert "cordoned" in found[0].message
    assert drift.drifted_nodes(found) == frozenset({("prod", "prod-workers-002")})
