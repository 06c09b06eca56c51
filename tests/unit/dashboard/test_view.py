"""The dashboard's view model: plan and fleet state in, what the page shows out (pure, fast).

Each story builds a real plan with ``plan.make`` from in-memory fleets and inventories (the
core tests' factories) and checks the page's matrix cell, wave strip, drift list and halt box.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gitops.dashboard import view
from gitops.dashboard.view import Forge, Inputs, Link
from gitops.fleet import Fleet
from gitops.inventory import ClusterInventory, Inventory
from gitops.plan import Plan, RolloutState, WaveProgress, make
from tests.unit.core.factories import T0, cluster, declared, fleet, machine, pool


def three_clusters(**kw: object) -> Fleet:
    return fleet(
        [
            cluster("c1", ring="canary"),
            cluster("p1", ring="prod", pools=[pool("workers"), pool("gpu", replicas=2)]),
            cluster("p2", ring="prod", paused=bool(kw.get("paused"))),
        ],
        waves=[
            {"name": "canary", "clusters": {"matchLabels": {"ring": "canary"}}, "soak": "10m"},
            {"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}},
        ],
    )


def page(
    f: Fleet, inventory: Inventory, state: RolloutState | None = None, **kw: object
) -> view.FleetView:
    plan = make(f, inventory, state or RolloutState(revision=f.revision), T0)
    return view.build(Inputs(now=T0, fleet=f, plan=plan, **kw))  # type: ignore[arg-type]


def cell(p: view.FleetView, cluster_name: str, pool_name: str) -> view.PoolView:
    c = next(c for c in p.clusters if c.name == cluster_name)
    return next(x for x in c.pools if x.name == pool_name)


def test_a_converged_fleet_shows_every_pool_on_target_in_wave_order() -> None:
    f = three_clusters()
    p = page(f, declared(f))
    assert p.status == "converged" and p.halt is None
    assert [c.name for c in p.clusters] == ["c1", "p1", "p2"]
    assert [(c.name, c.wave) for c in p.clusters] == [
        ("c1", "canary"),
        ("p1", "prod"),
        ("p2", "prod"),
    ]
    pools = [
        (c.name, x.name, x.image, x.on_target, x.replicas, x.state)
        for c in p.clusters
        for x in c.pools
    ]
    assert pools == [
        ("c1", "workers", "img-2", 3, 3, "converged"),
        ("p1", "workers", "img-2", 3, 3, "converged"),
        ("p1", "gpu", "img-2", 2, 2, "converged"),
        ("p2", "workers", "img-2", 3, 3, "converged"),
    ]
    assert [(w.name, w.label, w.on_target, w.replicas) for w in p.waves] == [
        ("canary", "complete", 3, 3),
        ("prod", "complete", 8, 8),
    ]
    assert p.nodes == (11, 11)
    assert not any(w.active for w in p.waves)


def test_a_rollout_in_the_canary_rolls_there_and_holds_prod_at_the_gate() -> None:
    f = three_clusters()
    p = page(f, declared(f, image="img-1"))
    assert cell(p, "c1", "workers").state == "rolling"
    assert cell(p, "c1", "workers").on_target == 0
    gated = cell(p, "p1", "gpu")
    assert (gated.state, gated.label) == ("waiting", "waiting for gate")
    assert "wave canary" in gated.detail
    canary, prod = p.waves
    assert canary.active and not prod.active
    assert (canary.label, canary.on_target, canary.replicas) == ("rolling", 0, 3)
    assert prod.label == "waiting for gate" and prod.waiting_for == ()  # only the active says why


def test_a_soaking_wave_says_how_long_is_left() -> None:
    f = three_clusters()
    # The canary converged two minutes ago; its wave soaks 10m before prod may start.
    state = RolloutState(revision=f.revision).with_wave(
        WaveProgress(wave="canary", converged_at=T0 - 120)
    )
    p = page(f, declared(f, image=lambda c, _p: "img-2" if c == "c1" else "img-1"), state)
    canary = p.waves[0]
    assert canary.active and canary.status == "soaking"
    assert "soak: 8m left before the next wave" in canary.waiting_for
    c1 = cell(p, "c1", "workers")
    assert (c1.state, c1.label) == ("converged", "converged, soaking")


def test_a_pool_at_its_surge_budget_says_so_in_the_wave_strip() -> None:
    f = three_clusters()
    observed = declared(f, image="img-1")
    seen = observed.cluster("c1")
    assert seen is not None
    # A replacement is being made for c1-workers-000: 4 machines for 3 replicas + maxSurge 1.
    new = machine(
        "c1-workers-new",
        "workers",
        replaces="c1-workers-000",
        namespace="c1",
        image="img-2",
        created=T0 - 5,  # provisioning, well within nodeStartupTimeout
    )
    rebuilt = ClusterInventory.build(seen.name, seen.nodes, (*seen.machines, new), seen.pdbs)
    observed = Inventory(tuple(rebuilt if c.name == "c1" else c for c in observed.clusters))
    canary = page(f, observed).waves[0]
    assert canary.active and canary.waiting_for == (
        "budget: c1/workers uses its whole surge (4 machines for 3 replicas + maxSurge 1)",
        "1 step(s) wait for a new node to become Ready",
    )
    assert page(f, declared(f, image="img-1")).waves[0].waiting_for == ()  # room to start


def test_a_halt_marks_unfinished_pools_halted_with_the_reason_and_links_the_revert() -> None:
    f = three_clusters()
    state = RolloutState(revision=f.revision).halt("2 nodes failed in wave canary", T0 - 5)
    revert = Link("#9 Revert rev-1", "https://forge.example/acme/fleet/pull/9")
    p = page(f, declared(f, image="img-1"), state, pulls={"gitops/revert/rev-1": revert})
    assert p.halt is not None and p.halt.status == "halted"
    assert p.halt.reason == "rollout halted: 2 nodes failed in wave canary"
    assert p.halt.revert_pull == revert
    halted = cell(p, "c1", "workers")
    assert (halted.state, halted.label) == ("halted", "halted")
    assert "2 nodes failed in wave canary" in halted.detail
    assert {x.state for c in p.clusters for x in c.pools} == {"halted"}


def test_a_paused_cluster_and_an_unreachable_one() -> None:
    f = three_clusters(paused=True)
    # The canary converged and soaked long ago: prod is the wave at work.
    state = RolloutState(revision=f.revision).with_wave(
        WaveProgress(wave="canary", converged_at=T0 - 3600, soaked_at=T0 - 3000)
    )
    inventory = declared(
        f,
        image=lambda c, _p: "img-2" if c == "c1" else "img-1",
        unreachable={"p1": "connection refused"},
    )
    p = page(f, inventory, state)
    paused = cell(p, "p2", "workers")
    assert (paused.state, paused.label) == ("paused", "paused")
    assert "paused" in paused.detail
    lost = next(c for c in p.clusters if c.name == "p1")
    assert lost.state == "unreachable" and "connection refused" in lost.detail
    assert [(x.name, x.on_target, x.replicas, x.state) for x in lost.pools] == [
        ("workers", None, 3, "unreachable"),
        ("gpu", None, 2, "unreachable"),
    ]
    # The unknown numbers count nowhere: the prod wave sums only what was observed.
    assert (p.waves[1].on_target, p.waves[1].replicas) == (0, 3)


def test_drift_is_listed_per_cluster_with_its_pull_request() -> None:
    f = three_clusters()
    hand_patched = declared(
        f,
        hook=lambda c, p, i, n: (
            replace(n, kernel_version="6.12.1-hotfix") if (c, p, i) == ("p1", "gpu", 0) else n
        ),
    )
    pr = Link("#4 Drift in cluster p1", "https://forge.example/acme/fleet/pull/4")
    p = page(f, hand_patched, pulls={"gitops/drift/p1": pr})
    drifted = [c for c in p.clusters if c.findings]
    assert [c.name for c in drifted] == ["p1"]
    (finding,) = drifted[0].findings
    assert (finding.kind, finding.fact, finding.expected, finding.observed) == (
        "ImageMismatch",
        "kernelVersion",
        "6.12.1",
        "6.12.1-hotfix",
    )
    assert (finding.pool, finding.node) == ("gpu", "p1-gpu-000")
    assert drifted[0].drift_pull == pr
    assert all(c.drift_pull is None for c in p.clusters if not c.findings)


def test_outdated_nodes_are_a_pending_change_not_drift() -> None:
    f = three_clusters()
    p = page(f, declared(f, image="img-1"))
    assert all(not c.findings for c in p.clusters)


@pytest.mark.parametrize(
    ("kind", "commit", "status"),
    [
        (
            "github",
            "https://gh.example/acme/fleet/commit/abc",
            "https://gh.example/acme/fleet/blob/s1/README.md",
        ),
        (
            "gitlab",
            "https://gl.example/acme/fleet/-/commit/abc",
            "https://gl.example/acme/fleet/-/blob/s1/README.md",
        ),
        (
            "gitea",
            "https://gt.example/acme/fleet/commit/abc",
            "https://gt.example/acme/fleet/src/commit/s1/README.md",
        ),
        ("", "", ""),
    ],
)
def test_the_revision_and_plan_link_to_the_forge_when_it_is_known(
    kind: str, commit: str, status: str
) -> None:
    f = replace(three_clusters(), revision="abc")
    host = {"github": "gh", "gitlab": "gl", "gitea": "gt"}.get(kind, "x")
    forge = Forge(kind, f"https://{host}.example/acme/fleet" if kind else "", "s1")
    p = page(f, declared(f), forge=forge)
    assert p.revision == Link("abc", commit)
    assert p.plan.text == p.plan_id != "" and p.plan.url == status


def test_before_the_first_plan_the_page_says_it_is_loading() -> None:
    p = view.build(Inputs(now=T0, stalled="revision abc is invalid: fleet.yaml:3:1: bad"))
    assert p.status == "loading" and p.clusters == () and p.waves == ()
    assert p.stalled.startswith("revision abc is invalid")


def test_the_json_document_has_every_section_and_holds_values_as_text() -> None:
    f = three_clusters()
    plan: Plan = make(f, declared(f, image="img-1"), RolloutState(revision=f.revision), T0)
    phases = (view.Phase("fetch", "ok", "main is at <b>abc</b>"),)
    doc = view.to_dict(view.build(Inputs(now=T0, fleet=f, plan=plan, phases=phases)))
    assert doc["schemaVersion"] == "gitops.dashboard/v1"
    assert list(doc) == [
        "schemaVersion",
        "fleet",
        "status",
        "reason",
        "revision",
        "fetchedRevision",
        "plan",
        "stalled",
        "updated",
        "nodes",
        "halt",
        "waves",
        "clusters",
        "phases",
        "timeline",
    ]
    assert doc["clusters"][0]["pools"][0] == {
        "name": "workers",
        "image": "img-2",
        "onTarget": 0,
        "replicas": 3,
        "state": "rolling",
        "label": "rolling",
        "detail": doc["clusters"][0]["pools"][0]["detail"],
    }
    assert doc["clusters"][0]["labels"] == {"ring": "canary"}
    assert doc["phases"] == [{"name": "fetch", "kind": "ok", "message": "main is at <b>abc</b>"}]
    json.dumps(doc)  # plain JSON all the way down
