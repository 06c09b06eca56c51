"""Renderers: text (summary first, colour only when asked), Markdown (hard byte budget with a
truthful tail), JSON (documented schema, stable keys) — all byte-for-byte deterministic."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import jsonschema
import pytest

from gitops import drift
from gitops.inventory import Node
from gitops.plan import (
    ACTION_KINDS,
    AbandonMachine,
    CreateReplacement,
    PauseMachineDeployment,
    RetireNode,
    RollMachineDeployment,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
    Wait,
    jsonout,
    make,
    markdown,
    text,
)
from gitops.plan._format import iso
from gitops.plan.schema import ACTION, FINDINGS_SCHEMA, PLAN_SCHEMA
from tests.unit.core import factories as f


def big_plan(replicas: int = 60, clusters: int = 12):  # type: ignore[no-untyped-def]
    fleet = f.fleet(
        [f.cluster(f"c{i:02d}", pools=[f.pool(replicas=replicas)]) for i in range(clusters)]
    )
    return make(fleet, f.declared(fleet, image="img-1"), RolloutState(), f.T0)


def mixed_plan():  # type: ignore[no-untyped-def]
    fleet = f.fleet([f.cluster("canary", ring="canary"), f.cluster("prod")])

    def hook(c: str, p: str, i: int, n: Node) -> Node:
        return replace(n, kernel_version="x|y") if i == 0 else replace(n, os_image="OS (v1)")

    inv = f.declared(fleet, hook=hook, unreachable={"prod": "timeout"})
    return make(fleet, inv, RolloutState(), f.T0)


def test_iso_formats_utc_without_a_clock() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(f.T0) == "2025-06-15T15:06:40Z"
    assert iso(951782400) == "2000-02-29T00:00:00Z"  # a leap day
    assert iso(4102444799.9) == "2099-12-31T23:59:59Z"


def test_text_puts_the_summary_first_and_colours_only_when_asked() -> None:
    plan = mixed_plan()
    plain = text.render(plan)
    lines = plain.splitlines()
    assert lines[0].startswith(f"Plan {plan.id} for fleet test at rev-1")
    assert lines[1].startswith("Status: in progress")
    assert lines[2].startswith("Summary: ")
    assert "\x1b[" not in plain
    coloured = text.render(plan, color=True)
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert "Cluster prod: unknown - could not be observed: timeout" in plain
    assert "Findings: " in plain and "ImageMismatch" in plain


def test_findings_text_groups_by_cluster() -> None:
    plan = mixed_plan()
    out = text.render_findings(plan.findings)
    assert out.splitlines()[1] == "  canary"
    assert text.render_findings(()) == "Findings: 0; none\n"


def test_markdown_fits_the_budget_with_a_truthful_tail() -> None:
    plan = big_plan()
    total = sum(1 for _ in plan.actions())
    out = markdown.render(plan)
    assert len(out.encode()) <= markdown.BUDGET
    rows = [line for line in out.splitlines() if line.startswith(("| ▶️", "| ⏸️", "| ⏳"))]
    tail = re.search(r"… and (\d+) more actions and (\d+) more findings not shown", out)
    assert tail is not None, out[-500:]
    assert int(tail.group(1)) == total - len(rows)
    assert int(tail.group(2)) == len(plan.findings)
    assert out.count("<details>") == out.count("</details>")


@pytest.mark.parametrize("budget", [6_000, 12_345, 30_000])
def test_markdown_honours_any_budget(budget: int) -> None:
    plan = big_plan(replicas=20, clusters=6)
    out = markdown.render(plan, budget=budget)
    assert len(out.encode()) <= budget
    assert out.count("<details>") == out.count("</details>")
    assert out.rstrip().endswith("for the whole plan.")


def test_small_plan_markdown_has_no_tail_and_escapes_cells() -> None:
    out = markdown.render(mixed_plan())
    assert "more actions" not in out and "more findings" not in out
    assert "x\\|y" in out  # a pipe in an observed value does not break the table
    assert "<details><summary><b>canary</b>" in out


def test_findings_markdown_budget() -> None:
    plan = big_plan()
    out = markdown.render_findings(plan.findings, budget=5_000)
    assert len(out.encode()) <= 5_000
    shown = out.count("| info | Outdated |")
    assert f"… and {len(plan.findings) - shown} more findings not shown" in out


def test_json_matches_its_schema_with_stable_keys() -> None:
    plan = mixed_plan()
    data = json.loads(jsonout.render(plan))
    jsonschema.validate(data, PLAN_SCHEMA)
    assert list(data) == [
        "schemaVersion",
        "id",
        "plannerVersion",
        "fleet",
        "fleetRevision",
        "inventoryDigest",
        "now",
        "status",
        "reason",
        "summary",
        "drift",
        "waves",
        "findings",
    ]
    assert data["schemaVersion"] == "gitops.plan/v1"
    findings = json.loads(jsonout.render_findings(plan.findings))
    jsonschema.validate(findings, FINDINGS_SCHEMA)
    assert findings["summary"]["drift"] == sum(1 for x in plan.findings if x.is_drift)


def test_every_action_kind_validates() -> None:
    common = {"cluster": "c", "pool": "p", "reason": "r"}
    actions = [
        ScaleUp(zone="a", image="i", **common),
        CreateReplacement(zone="a", image="i", replaces="n", **common),
        RetireNode(node="n", machine="m", replacement="r", **common),
        ScaleDown(node="", machine="m", **common),
        AbandonMachine(machine="m", counted=True, **common),
        Uncordon(node="n", **common),
        RollMachineDeployment(
            deployment="workers",
            template="workers-0123456789",
            image="i",
            replicas=3,
            max_surge="1",
            max_unavailable="25%",
            **common,
        ),
        PauseMachineDeployment(deployment="workers", **common),
        Wait(on="soak", what="p", until=f.T0, **common),
        Wait(on="rollout", what="workers", **common),
        Wait(on="human", what="n", **common),
    ]
    assert {a.kind for a in actions} == set(ACTION_KINDS)
    for action in actions:
        jsonschema.validate(jsonout.action_to_dict(action), ACTION)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**jsonout.action_to_dict(actions[0]), "extra": 1}, ACTION)


def test_renderings_are_deterministic() -> None:
    one, two = mixed_plan(), mixed_plan()
    assert jsonout.render(one) == jsonout.render(two)
    assert text.render(one, color=True) == text.render(two, color=True)
    assert markdown.render(one) == markdown.render(two)
    fleet = f.fleet([f.cluster("prod")])
    found = drift.find(fleet, f.declared(fleet))
    assert jsonout.render_findings(found) == jsonout.render_findings(found)
