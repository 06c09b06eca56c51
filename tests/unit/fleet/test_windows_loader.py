"""Windows, freezes, rates and the override in the fleet repository: loaded where declared, and
every mistake reported as file:line:col with a hint, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.fleet import FleetError, load
from tests.unit.fleet.conftest import FLEET, cluster

MAINTENANCE = """\
    maintenance:
      windows:
        - name: weeknights
          schedule: "0 22 * * Mon-Fri"
          duration: 4h
          timeZone: Europe/Berlin
      freezes:
        - name: peak
          reason: peak season
          owner: sre@example.com
          start: "2026-12-20T00:00:00+01:00"
          end: "2027-01-04T00:00:00+01:00"
      rate: {maxReplacements: 20, per: 1h}
    override:
      reason: CVE-2026-0001 kernel fix
      until: "2026-12-10T00:00:00Z"
"""


def with_fleet_block(block: str) -> str:
    return FLEET.replace("  rollout:\n", "  rollout:\n" + block)


def test_every_level_loads_its_maintenance(make_repo: Callable[..., Path]) -> None:
    wave = FLEET.replace(
        "        clusters: {matchLabels: {ring: prod}}\n",
        "        clusters: {matchLabels: {ring: prod}}\n"
        "        maintenance:\n"
        "          windows: [{name: nights, days: [Sat, Sun], startTime: '23:00', endTime: '05:00'}]\n",
    )
    prod = cluster("prod").replace(
        "  nodePools:\n",
        "  maintenance:\n    freezes: [{name: audit, reason: audit, owner: ops, "
        "schedule: '0 0 1 * *', duration: 24h, covers: image}]\n  nodePools:\n",
    )
    fleet_yaml = wave.replace("  rollout:\n", "  rollout:\n" + MAINTENANCE)
    root = make_repo({"fleet.yaml": fleet_yaml, "clusters/prod.yaml": prod})
    fleet = load(root)
    rollout = fleet.document.spec.rollout
    assert rollout.maintenance is not None
    assert rollout.maintenance.windows[0].time_zone == "Europe/Berlin"
    assert rollout.maintenance.rate is not None and rollout.maintenance.rate.per == 3600.0
    assert rollout.override is not None and rollout.override.lift_freezes is False
    prod_wave = rollout.waves[1].maintenance
    assert prod_wave is not None and prod_wave.windows[0].days == ("Sat", "Sun")
    doc = fleet.cluster("prod")
    assert doc is not None and doc.spec.maintenance is not None
    assert doc.spec.maintenance.freezes[0].covers == "image"


@pytest.mark.parametrize(
    ("block", "where", "message"),
    [
        (
            "    maintenance:\n      windows: [{name: w, schedule: '0 25 * * *', duration: 1h}]\n",
            "fleet.yaml:23:37",
            "is not a cron schedule",
        ),
        (
            "    maintenance:\n      windows: [{name: w, schedule: '0 22 * *', duration: 1h}]\n",
            "fleet.yaml:23:37",
            "write five fields",
        ),
        (
            "    maintenance:\n      windows: [{name: w, schedule: '0 22 * * *', duration: 1h, timeZone: Europe/Berlim}]\n",
            "fleet.yaml:23:75",
            "is not an IANA time zone",
        ),
        (
            "    maintenance:\n      windows: [{name: w, schedule: '0 22 * * *'}]\n",
            "fleet.yaml:23:17",
            "a schedule needs a duration",
        ),
        (
            "    maintenance:\n      windows: [{name: w, days: [Mon], startTime: '22:00'}]\n",
            "fleet.yaml:23:17",
            "days, startTime and endTime go together",
        ),
        (
            "    maintenance:\n      windows: [{name: w, days: [Mon], startTime: '24:00', endTime: '02:00'}]\n",
            "fleet.yaml:23:51",
            "startTime",
        ),
        (
            "    maintenance:\n      freezes: [{name: f, reason: r, owner: o, start: '2026-12-20', end: '2027-01-04T00:00:00Z'}]\n",
            "fleet.yaml:23:55",
            "is not an RFC 3339 time",
        ),
        (
            "    maintenance:\n      freezes: [{name: f, reason: r, owner: o, start: '2027-01-04T00:00:00Z', end: '2026-12-20T00:00:00Z'}]\n",
            "fleet.yaml:23:17",
            "is not after start",
        ),
        (
            "    maintenance:\n      freezes: [{name: f, owner: o, start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z'}]\n",
            "fleet.yaml:23:17",
            "reason",
        ),
        (
            "    override: {reason: hotfix}\n",
            "fleet.yaml:22:5",
            "until",
        ),
    ],
    ids=[
        "cron-out-of-range",
        "cron-four-fields",
        "unknown-zone",
        "schedule-without-duration",
        "weekly-incomplete",
        "bad-clock",
        "freeze-date-without-time",
        "freeze-backwards",
        "freeze-without-reason",
        "override-without-until",
    ],
)
def test_mistakes_are_reported_with_their_place(
    make_repo: Callable[..., Path], block: str, where: str, message: str
) -> None:
    root = make_repo({"fleet.yaml": with_fleet_block(block)})
    with pytest.raises(FleetError) as caught:
        load(root)
    shown = [str(p) for p in caught.value.problems]
    assert any(p.startswith(where) and message in p for p in shown), shown


ENDED = """\
    maintenance:
      freezes:
        - name: black-friday
          reason: retail peak
          owner: sre
          start: "2020-11-27T00:00:00Z"
          end: "2020-11-30T00:00:00Z"
        - name: far-future
          reason: not yet
          owner: sre
          start: "2999-01-01T00:00:00Z"
          end: "2999-01-02T00:00:00Z"
"""


def test_validate_warns_about_an_ended_freeze_and_still_exits_0(
    make_repo: Callable[..., Path],
) -> None:
    from click.testing import CliRunner

    from gitops.cli import main

    root = make_repo({"fleet.yaml": with_fleet_block(ENDED)})
    text = CliRunner().invoke(main, ["validate", str(root)])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == (
        "fleet.yaml:28:16: warning: freeze black-friday ended 2020-11-30T00:00+00:00 "
        "(remove it; it no longer holds anything back)"
    )
    assert lines[1].startswith("valid: ")
    assert "far-future" not in text.output
    github = CliRunner().invoke(main, ["validate", str(root), "--format", "github"])
    assert github.output.startswith("::warning file=fleet.yaml,line=28,col=16::freeze black-friday")
    as_json = CliRunner().invoke(main, ["validate", str(root), "--format", "json"])
    (warning,) = json.loads(as_json.output)["warnings"]
    assert (warning["path"], warning["line"]) == ("fleet.yaml", 28)


W = "{name: w, "
F = "{name: f, reason: r, owner: o, "


@pytest.mark.parametrize(
    ("block", "valid"),
    [
        (f"windows: [{W}schedule: '0 22 * * *', duration: 4h}}]", True),
        (f"windows: [{W}days: [Mon], startTime: '22:00', endTime: '02:00'}}]", True),
        (f"windows: [{W}days: [Mon], startTime: '22:00', endTime: '02:00', duration: 1h}}]", False),
        (f"windows: [{W}schedule: '0 22 * * *'}}]", False),
        (f"windows: [{W}days: [], startTime: '22:00', endTime: '02:00'}}]", False),
        (f"windows: [{W}schedule: '0 22 * * *', duration: 0s}}]", False),
        (f"windows: [{W}schedule: '0 22 * * *', duration: '0'}}]", False),
        (f"windows: [{W}}}]", False),
        (f"freezes: [{F}start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z'}}]", True),
        (f"freezes: [{F}schedule: '0 0 20 12 *', duration: 360h}}]", True),
        (f"freezes: [{F}start: '2026-12-20T00:00:00Z'}}]", False),
        (
            f"freezes: [{F}start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00Z', "
            "schedule: '0 0 * * *', duration: 1h}]",
            False,
        ),
        ("rate: {maxReplacements: 5, per: 1h}", True),
        ("rate: {maxReplacements: 5, per: 0s}", False),
        ("rate: {maxReplacements: 0, per: 1h}", False),
    ],
)
def test_the_schema_and_the_loader_agree_on_maintenance_blocks(
    make_repo: Callable[..., Path], block: str, valid: bool
) -> None:
    import yaml

    from tests.unit.fleet.judge import schema_errors

    text = with_fleet_block(f"    maintenance:\n      {block}\n")
    try:
        load(make_repo({"fleet.yaml": text}))
        loaded = True
    except FleetError:
        loaded = False
    assert loaded is valid
    assert (schema_errors(yaml.safe_load(text)) == "") is valid
