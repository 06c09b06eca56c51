"""``gitops windows`` lists the next openings per cluster, and ``gitops apply --ignore-windows``
asks a human: it refuses where no one can be asked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitops.cli import main
from tests.unit.fleet.conftest import FLEET

PROD_WINDOWS = FLEET.replace(
    "        clusters: {matchLabels: {ring: prod}}\n",
    "        clusters: {matchLabels: {ring: prod}}\n"
    "        maintenance:\n"
    "          windows:\n"
    "            - {name: weeknights, schedule: '0 22 * * Mon-Fri', duration: 4h,"
    " timeZone: Europe/Berlin}\n"
    "            - {name: sunday, days: [Sun], startTime: '10:00', endTime: '12:00',"
    " timeZone: Europe/Berlin, covers: drift}\n"
    "          freezes:\n"
    "            - {name: audit, reason: audit week, owner: sre,"
    " start: '2026-12-08T00:00:00+01:00', end: '2026-12-09T00:00:00+01:00'}\n",
)


def test_windows_prints_the_next_openings_of_each_cluster(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"fleet.yaml": PROD_WINDOWS})
    at = "2026-12-05T12:00:00+01:00"  # a Saturday
    result = CliRunner().invoke(main, ["windows", str(root), "--days", "4", "--at", at])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Cluster canary (wave canary): no windows or freezes declared: always open",
        "Cluster prod (wave prod): closed now",
        "  new images: 2026-12-07T22:00+01:00 → 2026-12-08T00:00+01:00"
        "  window weeknights (Europe/Berlin)",
        # The freeze cuts the night of the 8th in two; the weeknights window of the 8th
        # runs on after it ends at midnight.
        "  new images: 2026-12-09T00:00+01:00 → 2026-12-09T02:00+01:00"
        "  window weeknights (Europe/Berlin)",
        "  drift remediation: 2026-12-06T10:00+01:00 → 2026-12-06T12:00+01:00"
        "  window sunday (Europe/Berlin)",
        "  drift remediation: 2026-12-07T22:00+01:00 → 2026-12-08T00:00+01:00"
        "  window weeknights (Europe/Berlin)",
        "  drift remediation: 2026-12-09T00:00+01:00 → 2026-12-09T02:00+01:00"
        "  window weeknights (Europe/Berlin)",
        "  frozen 2026-12-07T23:00+00:00 → 2026-12-08T23:00+00:00"
        "  freeze audit: audit week (owner sre)",
    ]
    as_json = CliRunner().invoke(main, ["windows", str(root), "--at", at, "-o", "json"])
    prod = json.loads(as_json.output)["clusters"][1]
    assert prod["cluster"] == "prod"
    assert prod["image"][0]["label"] == "window weeknights (Europe/Berlin)"


def test_windows_refuses_a_time_without_an_offset(make_repo: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["windows", str(make_repo()), "--at", "2026-12-05T12:00"])
    assert result.exit_code == 1
    assert "has no offset" in result.output


def test_apply_ignore_windows_asks_a_human_and_refuses_without_a_terminal() -> None:
    # Refused before anything is read or contacted: the flag is never implied by --yes.
    result = CliRunner().invoke(
        main, ["apply", "--fleet", "nowhere", "--kubeconfig", "none", "--yes", "--ignore-windows"]
    )
    assert result.exit_code == 1
    assert "--ignore-windows asks a human to confirm and this is not a terminal" in result.output


def test_a_window_open_past_the_days_shown_says_so() -> None:
    example = Path(__file__).resolve().parents[3] / "fleet-repo-example"
    result = CliRunner().invoke(
        main, ["windows", str(example), "--days", "2", "--at", "2026-12-05T12:00:00Z"]
    )
    assert result.output.splitlines()[:2] == [
        "Cluster canary-eu-1 (wave canary): open now",
        "  now → beyond the days shown  window any-hour (Europe/Berlin)",
    ]
