"""Drift injected in the simulator (``--drift``) is found, kind by kind, through the kube adapter.

Adapter tier: the simulator seeds the example fleet and changes nodes "by hand"; the
``Observer`` reads them over HTTP and ``drift.find`` judges them. What the simulator says it
injected (``world.injected``) is the truth each finding is checked against, node by node, so
that a finding of the wrong kind, on the wrong node, or one too many fails the test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops import drift
from gitops.fleet import Fleet, load
from gitops.inventory import Inventory
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.sim import Simulator
from gitops.sim.api.resources import NODES
from gitops.sim.world.drift import HAND_TAINT_KEY

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"
SPEC = "kernel:3,label:2,taint:1,unmanaged:1,cordoned:1"


def observe(sim: Simulator, fleet: Fleet) -> Inventory:
    """One observation of the whole fleet over HTTP, as ``gitops drift`` makes it."""
    management = connect(sim.kubeconfig_path)
    observer = Observer(management)
    try:
        observer.track((c.name, c.namespace) for c in fleet.clusters)
        assert observer.wait_synced(20)
        return observer.inventory()
    finally:
        observer.stop()
        management.close()


@pytest.fixture
def fleet() -> Fleet:
    return load(EXAMPLE)


def serve(tmp_path: Path, **options: object) -> Simulator:
    return Simulator(EXAMPLE, time_scale=0.01, kubeconfig_out=tmp_path / "kubeconfig", **options)  # type: ignore[arg-type]


@pytest.fixture(params=[3, 11], ids=["seed-3", "seed-11"])
def drifted(
    request: pytest.FixtureRequest, tmp_path: Path, fleet: Fleet
) -> Iterator[tuple[Simulator, tuple[drift.Finding, ...]]]:
    with serve(tmp_path, seed=request.param, drift=SPEC) as sim:
        yield sim, drift.find(fleet, observe(sim, fleet))


def test_each_injected_kind_is_found_as_its_finding_kind(
    drifted: tuple[Simulator, tuple[drift.Finding, ...]],
) -> None:
    sim, findings = drifted
    assert sim.world is not None
    injected = sim.world.injected
    assert Counter(i.kind for i in injected) == {
        "kernel": 3,
        "label": 2,
        "taint": 1,
        "unmanaged": 1,
        "cordoned": 1,
    }
    by_node: dict[tuple[str, str], list[drift.Finding]] = {}
    for finding in findings:
        by_node.setdefault((finding.cluster, finding.node), []).append(finding)
    # Every finding is on a node the simulator drifted, and nowhere else.
    assert set(by_node) == {(i.cluster, i.node) for i in injected}
    assert injected, "the simulator injected no drift"
    for change in injected:
        found = by_node[(change.cluster, change.node)]
        assert len(found) == 1, (change, found)
        finding = found[0]
        assert finding.is_drift
        if change.kind == "kernel":
            stored = sim.store.get(change.cluster, NODES, None, change.node)
            assert finding.kind == "ImageMismatch"
            assert finding.fact == "kernelVersion"
            assert finding.observed == stored["status"]["nodeInfo"]["kernelVersion"]
            assert finding.expected == sim.fleet.images[finding.image].kernel_version  # type: ignore[union-attr]
            assert f"-> {finding.observed}" in change.detail
            assert finding.severity == "error" and finding.remediation == "replace"
        elif change.kind == "label":
            assert finding.kind == "ConfigMismatch"
            assert finding.fact.startswith("label ")
            assert finding.fact.removeprefix("label ") in change.detail
            assert finding.observed in ("(missing)", "hand-edited")
        elif change.kind == "taint":
            assert finding.kind == "ConfigMismatch"
            assert finding.fact == f"taint {HAND_TAINT_KEY}:NoSchedule"
            assert finding.expected == "(absent)"
        elif change.kind == "unmanaged":
            assert finding.kind == "UnmanagedNode"
            assert finding.remediation == "report" and finding.pool == ""
        else:
            assert change.kind == "cordoned"
            assert finding.kind == "StuckCordoned"
            assert finding.remediation == "report"


def test_the_counts_match_the_spec(drifted: tuple[Simulator, tuple[drift.Finding, ...]]) -> None:
    _, findings = drifted
    assert Counter(f.kind for f in findings) == {
        "ImageMismatch": 3,
        "ConfigMismatch": 3,
        "UnmanagedNode": 1,
        "StuckCordoned": 1,
    }
    assert len({f.fingerprint for f in findings}) == len(findings)
    assert list(findings) == sorted(findings, key=drift.Finding.sort_key)


def test_a_fleet_as_declared_has_no_findings(tmp_path: Path, fleet: Fleet) -> None:
    with serve(tmp_path, seed=3) as sim:
        inventory = observe(sim, fleet)
    assert inventory.nodes == 122
    assert drift.find(fleet, inventory) == ()


def test_the_previous_image_everywhere_gives_outdated_findings_only(
    tmp_path: Path, fleet: Fleet
) -> None:
    with serve(tmp_path, seed=3, initial="previous") as sim:
        inventory = observe(sim, fleet)
    findings = drift.find(fleet, inventory)
    assert {f.kind for f in findings} == {"Outdated"}
    assert not any(f.is_drift for f in findings)
    # One per node, each naming the image it runs and the one git declares.
    assert sorted(f.node for f in findings) == sorted(
        n.name for c in inventory.clusters for n in c.nodes
    )
    declared = {(c.name, p.name): p.image for c in fleet.clusters for p in c.spec.node_pools}
    assert findings, "no Outdated finding at all"
    for finding in findings:
        assert finding.expected == declared[(finding.cluster, finding.pool)]
        assert fleet.previous_image(finding.expected) == finding.observed
