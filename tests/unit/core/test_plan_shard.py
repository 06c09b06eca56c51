"""plan.make for one replica of a sharded controller (``gitops.plan.shard``).

Each replica observes only the clusters it owns; the others come from their owners'
summaries, and new work starts only where the coordinator admitted it. The fleet-wide rules
(wave gates, maxClustersInParallel, the failure budget, the drift limit) must come out the same
as if one replica observed everything.
"""

from __future__ import annotations

import json

import jsonschema

from gitops.fleet import Fleet
from gitops.inventory import Inventory
from gitops.plan import Plan, RolloutState, jsonout, make
from gitops.plan.schema import PLAN_SCHEMA
from gitops.plan.shard import ClusterRecord, ClusterSummary, Shard, compose, split
from gitops.plan.state import ClusterProgress
from tests.unit.core import factories as f

T0 = f.T0
REV = "rev-1"


def fleet(parallel: int | None = None, max_failed: int = 1, drift: float = 1.0) -> Fleet:
    prod: dict[str, object] = {"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}
    if parallel:
        prod["maxClustersInParallel"] = parallel
    return f.fleet(
        [f.cluster("canary", ring="canary"), f.cluster("prod-a"), f.cluster("prod-b")],
        waves=[{"name": "canary", "clusters": {"matchLabels": {"ring": "canary"}}}, prod],
        max_failed_nodes=max_failed,
        max_drifted_fraction=drift,
    )


def only(inv: Inventory, *names: str) -> Inventory:
    return Inventory(tuple(c for c in inv.clusters if c.name in names))


def summary(cluster: str, **kw: object) -> ClusterSummary:
    return ClusterSummary(cluster=cluster, revision=REV, owner="replica-2", **kw)  # type: ignore[arg-type]


def ready_clusters(plan: Plan) -> set[str]:
    return {a.cluster for a in plan.actions() if a.ready}


def test_a_remote_canary_with_work_holds_the_next_wave_where_this_replica_owns_prod() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "prod-a", "prod-b")
    shard = Shard(remote={"canary": summary("canary", has_work=True, nodes=3)}, admitted=None)
    plan = make(fl, inv, RolloutState(revision=REV), T0, shard=shard)
    canary = plan.waves[0].clusters[0]
    assert (canary.status, canary.owner, canary.pools) == ("active", "replica-2", ())
    assert "owned by replica replica-2" in canary.reason
    assert [w.status for w in plan.waves] == ["active", "pending"]
    assert ready_clusters(plan) == set()
    assert plan.status == "in-progress"  # nothing to do here, yet not converged


def test_once_the_remote_canary_reports_done_the_next_wave_starts_here() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "prod-a", "prod-b")
    shard = Shard(remote={"canary": summary("canary", nodes=3)}, admitted=None)
    plan = make(fl, inv, RolloutState(revision=REV), T0, shard=shard)
    assert [w.status for w in plan.waves] == ["complete", "active"]
    assert ready_clusters(plan) == {"prod-a", "prod-b"}


def test_a_summary_of_another_revision_counts_as_not_observed() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "prod-a", "prod-b")
    old = ClusterSummary(cluster="canary", revision="rev-0", owner="replica-2")
    plan = make(fl, inv, RolloutState(revision=REV), T0, shard=Shard(remote={"canary": old}))
    assert plan.waves[0].clusters[0].status == "unknown"
    assert plan.waves[0].status == "blocked" and ready_clusters(plan) == set()


def test_a_replica_starts_new_work_only_where_the_coordinator_admitted_it() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "prod-a", "prod-b")
    remote = {"canary": summary("canary")}
    waiting = make(fl, inv, RolloutState(), T0, shard=Shard(remote=remote, admitted=frozenset()))
    assert ready_clusters(waiting) == set()
    assert {c.status for c in waiting.waves[1].clusters} == {"queued"}
    assert "coordinator" in waiting.waves[1].clusters[0].reason
    admitted = Shard(remote=remote, admitted=frozenset({"prod-b"}))
    assert ready_clusters(make(fl, inv, RolloutState(), T0, shard=admitted)) == {"prod-b"}


def test_the_coordinator_keeps_an_admitted_clusters_slot_while_its_summary_lags() -> None:
    fl = fleet(parallel=1)
    done = f.declared(fl, image="img-2")
    inv = Inventory(
        (*only(done, "canary").clusters, *only(f.declared(fl, image="img-1"), "prod-b").clusters)
    )
    # prod-b was admitted when prod-a had nothing to do; prod-a's owner now reports work,
    # and prod-a comes first by name
    remote = {"prod-a": summary("prod-a", has_work=True)}
    held = make(fl, inv, RolloutState(), T0, shard=Shard(remote=remote, held=frozenset({"prod-b"})))
    assert {c.name: c.status for c in held.waves[1].clusters} == {
        "prod-a": "queued",
        "prod-b": "active",
    }
    assert ready_clusters(held) == {"prod-b"}
    fresh = make(fl, inv, RolloutState(), T0, shard=Shard(remote=remote))
    assert {c.name: c.status for c in fresh.waves[1].clusters}["prod-a"] == "active"
    assert ready_clusters(fresh) == set()


def test_owned_clusters_are_summarised_for_the_others() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "canary")
    plan = make(fl, inv, RolloutState(), T0, shard=Shard(remote={}, admitted=None))
    (mine,) = plan.summaries
    assert (mine.cluster, mine.revision, mine.has_work, mine.nodes) == ("canary", REV, True, 3)
    assert make(fl, inv, RolloutState(), T0).summaries == ()  # not sharded: nothing published


def test_the_drift_limit_counts_the_nodes_other_replicas_observe() -> None:
    fl = fleet(drift=0.5)
    inv = only(f.declared(fl, image="img-2"), "canary")
    remote = {
        name: summary(name, nodes=3, drifted=3, has_work=True) for name in ("prod-a", "prod-b")
    }
    plan = make(fl, inv, RolloutState(), T0, shard=Shard(remote=remote, admitted=None))
    assert plan.status == "refused"
    assert (plan.drifted_nodes, plan.observed_nodes) == (6, 9)


def test_compose_sums_a_waves_failures_over_its_clusters_whoever_owns_them() -> None:
    fl = fleet(max_failed=1)
    wave_of = {c: m.wave.name for m in fl.waves for c in m.clusters}
    records = [
        ClusterRecord(cluster=n, revision=REV, progress=ClusterProgress(cluster=n, failures=1))
        for n in ("prod-a", "prod-b")
    ]
    stale = ClusterRecord(
        cluster="canary", revision="rev-0", progress=ClusterProgress(cluster="canary", failures=5)
    )
    state = compose(RolloutState(revision=REV), [*records, stale], REV, wave_of)
    assert (state.wave("prod").failures, state.wave("canary").failures) == (2, 0)
    plan = make(fl, only(f.declared(fl, image="img-2"), "canary"), state, T0, shard=Shard())
    assert plan.status == "halted" and "2 nodes failed in wave prod" in plan.reason


def test_a_halt_recorded_by_any_owner_halts_every_replica() -> None:
    record = ClusterRecord(
        cluster="prod-a",
        revision=REV,
        progress=ClusterProgress(cluster="prod-a"),
        halt="drain of n1 timed out",
    )
    state = compose(RolloutState(revision=REV), [record], REV, {"prod-a": "prod"})
    assert state.halted and state.halt_reason == "drain of n1 timed out (cluster prod-a)"


def test_a_new_revision_starts_from_a_clean_record() -> None:
    old = RolloutState(revision="rev-0", halted=True, halt_reason="x", admitted=("prod-a",))
    state = compose(old, [], REV, {})
    assert (state.revision, state.halted, state.admitted) == (REV, False, ())


def test_records_round_trip_and_split_gives_each_cluster_its_share() -> None:
    state = RolloutState(revision=REV).record_failure("prod", "prod-a")
    records = split(state, ["prod-a", "prod-b"], {"prod-a": summary("prod-a")}, {})
    assert records["prod-a"].progress.failures == 1 and records["prod-b"].progress.failures == 0
    for record in records.values():
        assert ClusterRecord.from_dict(record.to_dict()) == record
    assert RolloutState.from_dict(
        RolloutState(revision=REV, admitted=("b", "a")).to_dict()
    ).admitted == ("b", "a")


def test_the_json_plan_names_the_owner_of_a_cluster_planned_from_its_summary() -> None:
    fl = fleet()
    inv = only(f.declared(fl, image="img-1"), "prod-a", "prod-b")
    shard = Shard(remote={"canary": summary("canary", has_work=True)})
    doc = json.loads(jsonout.render(make(fl, inv, RolloutState(), T0, shard=shard)))
    jsonschema.validate(doc, PLAN_SCHEMA)
    clusters = {c["name"]: c for w in doc["waves"] for c in w["clusters"]}
    assert clusters["canary"]["owner"] == "replica-2" and "owner" not in clusters["prod-a"]
