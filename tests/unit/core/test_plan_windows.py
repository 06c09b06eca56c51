"""The planner under maintenance windows and freezes: a batch starts only when its window is
open and it can finish before the window closes; work in flight carries on; the plan says why
it waits and when it can start, and wakes the controller when the window opens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gitops.inventory import ClusterInventory, Inventory
from gitops.plan import CreateReplacement, RetireNode, RolloutState, Wait, make, next_wakeup
from gitops.plan.model import Plan
from gitops.plan.timing import MAX_JITTER, jitter
from tests.unit.core.factories import cluster, declared, fleet, machine, node, pool

# 2026-12-05 is a Saturday; the weeknights window opens Monday 2026-12-07 at 22:00 in Berlin.
SATURDAY_NOON = datetime(2026, 12, 5, 11, tzinfo=UTC).timestamp()
MONDAY_2230 = datetime(2026, 12, 7, 21, 30, tzinfo=UTC).timestamp()
MONDAY_2200 = datetime(2026, 12, 7, 21, tzinfo=UTC).timestamp()
TUESDAY_0150 = datetime(2026, 12, 8, 0, 50, tzinfo=UTC).timestamp()  # 10 min before close

WEEKNIGHTS = {
    "name": "weeknights",
    "schedule": "0 22 * * Mon-Fri",
    "duration": "4h",
    "timeZone": "Europe/Berlin",
}
PEAK = {
    "name": "peak",
    "reason": "peak season",
    "owner": "sre",
    "start": "2026-12-07T00:00:00+01:00",
    "end": "2026-12-08T00:00:00+01:00",
}


def windowed(*, freezes: tuple[dict[str, Any], ...] = (), **rollout: Any) -> Any:
    maintenance = {"windows": [WEEKNIGHTS], "freezes": list(freezes)}
    return fleet(
        [cluster("prod-1", pools=[pool(replicas=4)])],
        waves=[{"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}],
        rollout={"maintenance": maintenance, **rollout},
    )


def planned(fleet_: Any, now: float, inventory: Inventory | None = None, **kw: Any) -> Plan:
    seen = inventory if inventory is not None else declared(fleet_, image="img-1")
    return make(fleet_, seen, RolloutState(), now, **kw)


def creates(plan: Plan) -> list[CreateReplacement]:
    return [a for a in plan.actions() if isinstance(a, CreateReplacement) and a.ready]


def waits(plan: Plan, on: str) -> list[Wait]:
    return [a for a in plan.actions() if isinstance(a, Wait) and a.on == on]


def test_a_closed_window_starts_nothing_and_says_when_it_opens() -> None:
    plan = planned(windowed(), SATURDAY_NOON)
    assert creates(plan) == []
    (wait,) = waits(plan, "window")
    opens = MONDAY_2200 + jitter("prod-1")  # each cluster a few seconds after the opening
    assert wait.until == opens
    assert (
        "waits for window weeknights (Europe/Berlin), opens 2026-12-07T22:00+01:00" in wait.reason
    )
    assert "worst case: nodeStartupTimeout 10m + drainTimeout 10m" in wait.reason
    (prod,) = plan.waves
    assert prod.next_start == opens
    assert prod.clusters[0].window.startswith("waits for window weeknights")
    assert next_wakeup(plan) == opens  # the controller wakes itself when it opens


def test_an_open_window_starts_the_batch() -> None:
    plan = planned(windowed(), MONDAY_2230)
    assert len(creates(plan)) == 1
    assert waits(plan, "window") == []
    assert plan.waves[0].next_start is None


def test_a_batch_that_cannot_finish_before_the_window_closes_does_not_start() -> None:
    plan = planned(windowed(), TUESDAY_0150)
    assert creates(plan) == []
    (wait,) = waits(plan, "window")
    assert "too soon for a batch that may take 20m" in wait.reason
    assert wait.until == datetime(2026, 12, 8, 21, tzinfo=UTC).timestamp() + jitter("prod-1")


def test_a_freeze_wins_over_the_open_window() -> None:
    plan = planned(windowed(freezes=(PEAK,)), MONDAY_2230)
    assert creates(plan) == []
    (wait,) = waits(plan, "freeze")
    assert (
        "frozen until 2026-12-07T23:00+00:00: freeze peak: peak season (owner sre)" in wait.reason
    )


def test_work_in_flight_carries_on_after_the_window_closes() -> None:
    f = windowed()
    p = f.clusters[0].spec.node_pools[0]
    old = declared(f, image="img-1").cluster("prod-1")
    assert old is not None and old.nodes
    target = old.nodes[0]
    new = node(f, "prod-1-new-0", pool_=p, created=SATURDAY_NOON - 600, machine="m-new-0")
    repl = machine(
        "m-new-0",
        p.name,
        node_name=new.name,
        image="img-2",
        created=SATURDAY_NOON - 900,
        replaces=target.name,
    )
    inventory = Inventory(
        (ClusterInventory.build("prod-1", [*old.nodes, new], [*old.machines, repl]),)
    )
    plan = planned(f, SATURDAY_NOON, inventory)
    retires = [a for a in plan.actions() if isinstance(a, RetireNode) and a.ready]
    assert [r.node for r in retires] == [target.name]  # the pair started is finished
    assert creates(plan) == []  # and nothing new starts
    assert len(waits(plan, "window")) == 1


def test_an_override_in_the_fleet_lifts_windows_until_it_lapses_and_is_recorded() -> None:
    override = {"reason": "CVE-2026-0001", "until": "2026-12-06T00:00:00Z"}
    f = windowed(override=override)
    plan = planned(f, SATURDAY_NOON)
    assert len(creates(plan)) == 1
    assert plan.override == "override lifts windows until 2026-12-06T00:00+00:00: CVE-2026-0001"
    lapsed = planned(f, SATURDAY_NOON + 86400)
    assert creates(lapsed) == []
    assert lapsed.override == ""


def test_an_override_lifts_freezes_only_when_it_says_so() -> None:
    sunday_noon = SATURDAY_NOON + 86400 + 86400  # Monday noon: frozen, window closed
    override = {"reason": "outage", "until": "2026-12-09T00:00:00Z"}
    held = planned(windowed(freezes=(PEAK,), override=override), sunday_noon)
    assert creates(held) == []
    assert len(waits(held, "freeze")) == 1
    lifted = {**override, "liftFreezes": True}
    plan = planned(windowed(freezes=(PEAK,), override=lifted), sunday_noon)
    assert len(creates(plan)) == 1
    assert "windows and freezes" in plan.override


def test_ignore_windows_at_the_terminal_lifts_windows_not_freezes() -> None:
    assert len(creates(planned(windowed(), SATURDAY_NOON, ignore_windows=True))) == 1
    monday = SATURDAY_NOON + 2 * 86400
    assert creates(planned(windowed(freezes=(PEAK,)), monday, ignore_windows=True)) == []


def test_observed_boots_replace_the_worst_case_once_there_are_enough() -> None:
    f = windowed()
    p = f.clusters[0].spec.node_pools[0]
    old = declared(f, image="img-1").cluster("prod-1")
    assert old is not None
    # Three replacements done in this rollout, each booted in 2 minutes.
    nodes, machines = list(old.nodes[3:]), list(old.machines[3:])
    for i in range(3):
        made = SATURDAY_NOON - 3600 + i
        nodes.append(
            node(
                f, f"new-{i}", pool_=p, created=made + 60, ready_since=made + 120, machine=f"m-{i}"
            )
        )
        machines.append(
            machine(
                f"m-{i}",
                p.name,
                node_name=f"new-{i}",
                image="img-2",
                created=made,
                replaces=f"gone-{i}",
            )
        )
    inventory = Inventory((ClusterInventory.build("prod-1", nodes, machines),))
    (wait,) = waits(planned(f, SATURDAY_NOON, inventory), "window")
    assert "observed: longest of 3 boots in this rollout 2m + drainTimeout 10m" in wait.reason
    assert "a batch may take 12m" in wait.reason


def rated(**rate_at: dict[str, Any]) -> Any:
    """Two prod clusters of four outdated nodes, surge 4; rates at the levels given."""
    pools = [pool(replicas=4, surge=4)]
    prod: dict[str, Any] = {"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}
    if "wave" in rate_at:
        prod["maintenance"] = {"rate": rate_at["wave"]}
    docs = [cluster("prod-1", pools=pools), cluster("prod-2", pools=pools)]
    if "cluster" in rate_at:
        docs[1]["spec"]["maintenance"] = {"rate": rate_at["cluster"]}
    rollout = {"maintenance": {"rate": rate_at["fleet"]}} if "fleet" in rate_at else {}
    return fleet(docs, waves=[prod], rollout=rollout)


def test_without_a_rate_every_replacement_the_surge_allows_starts() -> None:
    assert len(creates(planned(rated(), SATURDAY_NOON))) == 8


def test_a_fleet_rate_spreads_over_clusters_in_plan_order_and_names_its_level() -> None:
    plan = planned(rated(fleet={"maxReplacements": 5, "per": "1h"}), SATURDAY_NOON)
    assert [a.cluster for a in creates(plan)] == ["prod-1"] * 4 + ["prod-2"]


def test_the_tightest_level_decides_and_the_plan_names_it() -> None:
    f = rated(
        fleet={"maxReplacements": 6, "per": "1h"}, cluster={"maxReplacements": 1, "per": "1h"}
    )
    plan = planned(f, SATURDAY_NOON)
    assert [a.cluster for a in creates(plan)] == ["prod-1"] * 4 + ["prod-2"]
    f = rated(wave={"maxReplacements": 4, "per": "1h"})
    (wait,) = waits(planned(f, SATURDAY_NOON), "rate")
    assert wait.cluster == "prod-2"
    assert "rate at wave prod: at most 4 replacements per 1h, 4 started in the last period" in (
        wait.reason
    )


def test_replacements_started_within_the_period_count_and_free_room_as_they_age() -> None:
    f = rated(fleet={"maxReplacements": 2, "per": "1h"})
    p = f.clusters[0].spec.node_pools[0]
    old = declared(f, image="img-1")
    one = old.cluster("prod-1")
    assert one is not None
    extra = [
        machine(
            f"m-r{i}",
            p.name,
            image="img-2",
            created=SATURDAY_NOON - 600 * (i + 1),
            replaces=f"x-{i}",
        )
        for i in range(2)
    ]
    seen = ClusterInventory.build("prod-1", one.nodes, [*one.machines, *extra])
    inventory = Inventory((seen, *(c for c in old.clusters if c.name != "prod-1")))
    plan = planned(f, SATURDAY_NOON, inventory)
    assert creates(plan) == []
    rate_waits = waits(plan, "rate")
    assert rate_waits
    assert rate_waits[0].until == SATURDAY_NOON - 1200 + 3600  # the older start leaves the hour


def test_clusters_sharing_a_window_start_spread_over_a_few_seconds_after_it_opens() -> None:
    names = [f"prod-{i}" for i in range(20)]
    f = fleet(
        [cluster(n) for n in names],
        waves=[{"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}],
        rollout={"maintenance": {"windows": [WEEKNIGHTS]}},
    )
    delays = {n: jitter(n) for n in names}
    assert all(0 <= d < MAX_JITTER for d in delays.values())
    assert len(set(delays.values())) == len(names)  # not all at one instant
    middle = MONDAY_2200 + MAX_JITTER / 2
    plan = planned(f, middle)
    started = {a.cluster for a in creates(plan)}
    assert started == {n for n, d in delays.items() if d <= MAX_JITTER / 2}
    assert started and started != set(names)
    later = {w.cluster: w.until for w in waits(plan, "window")}
    assert later == {n: MONDAY_2200 + d for n, d in delays.items() if n not in started}
    assert "after each opening" in waits(plan, "window")[0].reason
    assert len(creates(planned(f, MONDAY_2200 + MAX_JITTER))) == len(names)


def test_the_spread_never_takes_more_than_a_tenth_of_a_short_window() -> None:
    # A window of seconds (a demo's): every cluster starts within its first tenth.
    short = {"name": "blink", "schedule": "*/10 * * * * *", "duration": "6s"}
    names = [f"prod-{i}" for i in range(20)]
    f = fleet(
        [cluster(n, pools=[pool(startup="1s")]) for n in names],
        waves=[{"name": "prod", "clusters": {"matchLabels": {"ring": "prod"}}}],
        rollout={"maintenance": {"windows": [short]}},
    )
    f = f.scaled(0.001)  # drainTimeout 10m -> 0.6 s: a batch fits in the window
    opened = datetime(2026, 12, 5, 12, tzinfo=UTC).timestamp()
    assert len(creates(planned(f, opened + 0.6))) == len(names)
    assert creates(planned(f, opened)) == []  # at the instant it opens, each waits its spread


def test_text_markdown_and_json_say_when_each_wave_can_start_next() -> None:
    import json

    import jsonschema

    from gitops.plan import jsonout, markdown, text
    from gitops.plan.schema import PLAN_SCHEMA

    plan = planned(windowed(), SATURDAY_NOON)
    opens = MONDAY_2200 + jitter("prod-1")
    shown = text.render(plan)
    assert "Wave 1 prod: active; can start next 2026-12-07T21:00:02Z (in 58h2s)" in shown
    assert "Cluster prod-1: active - waits for window weeknights (Europe/Berlin)" in shown
    comment = markdown.render(plan)
    assert "active; can start next 2026-12-07T21:00:02Z" in comment
    assert "waits for window weeknights (Europe/Berlin), opens 2026-12-07T22:00+01:00" in comment
    doc = json.loads(jsonout.render(plan))
    jsonschema.validate(doc, PLAN_SCHEMA)
    wave = doc["waves"][0]
    assert wave["nextStart"]["epoch"] == opens
    assert wave["clusters"][0]["window"].startswith("waits for window weeknights")
    # An override is recorded in every rendering.
    lifted = planned(
        windowed(override={"reason": "CVE fix", "until": "2026-12-06T00:00:00Z"}), SATURDAY_NOON
    )
    line = "override lifts windows until 2026-12-06T00:00+00:00: CVE fix"
    assert f"Override: {line}" in text.render(lifted)
    assert f"**Override:** {line}" in markdown.render(lifted)
    lifted_doc = json.loads(jsonout.render(lifted))
    jsonschema.validate(lifted_doc, PLAN_SCHEMA)
    assert lifted_doc["override"] == line


def test_a_drain_under_way_carries_on_after_the_window_closes() -> None:
    from dataclasses import replace as with_fields

    from tests.unit.core.factories import cordoned_by_us

    f = windowed()
    p = f.clusters[0].spec.node_pools[0]
    old = declared(f, image="img-1").cluster("prod-1")
    assert old is not None and old.nodes
    target = old.nodes[0]
    draining = with_fields(target, **cordoned_by_us(target, phase="draining"))
    new = node(f, "prod-1-new-0", pool_=p, created=SATURDAY_NOON - 600, machine="m-new-0")
    repl = machine(
        "m-new-0",
        p.name,
        node_name=new.name,
        image="img-2",
        created=SATURDAY_NOON - 900,
        replaces=target.name,
    )
    nodes = [draining, *old.nodes[1:], new]
    inventory = Inventory((ClusterInventory.build("prod-1", nodes, [*old.machines, repl]),))
    plan = planned(f, SATURDAY_NOON, inventory)
    retires = [a for a in plan.actions() if isinstance(a, RetireNode) and a.ready]
    assert [r.node for r in retires] == [target.name]
    assert creates(plan) == []
