"""`gitops validate`: exit codes, the three output formats, and no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gitops import __version__
from gitops.cli import main
from tests.unit.fleet.conftest import cluster

EXAMPLE = Path(__file__).resolve().parents[3] / "fleet-repo-example"
BROKEN = {"clusters/prod.yaml": cluster("prod").replace("replicas: 3", "replica: 3")}


def test_valid_fleet_exits_0_with_a_summary() -> None:
    result = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0
    assert result.output.startswith("valid: fleet acme: 4 clusters, 12 pools, 122 nodes, 4 images")


def test_invalid_fleet_exits_1_with_every_problem(make_repo: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["validate", str(make_repo(BROKEN))])
    assert result.exit_code == 1
    assert (
        "clusters/prod.yaml:11:7: unknown key 'replica' in spec.nodePools[0] (did you mean 'replicas'?)"
        in result.output
    )
    assert "missing required key 'replicas'" in result.output
    assert result.output.rstrip().endswith("invalid: 2 problems")


def test_json_format(make_repo: Callable[..., Path]) -> None:
    ok = CliRunner().invoke(main, ["validate", str(EXAMPLE), "--format", "json"])
    body = json.loads(ok.output)
    assert body["valid"] is True and body["summary"]["clusters"] == 4
    assert [w["name"] for w in body["summary"]["waves"]] == ["canary", "staging", "prod"]
    bad = CliRunner().invoke(main, ["validate", str(make_repo(BROKEN)), "--format", "json"])
    assert bad.exit_code == 1
    problems = json.loads(bad.stdout)["problems"]
    assert {k: problems[1][k] for k in ("path", "line", "col")} == {
        "path": "clusters/prod.yaml",
        "line": 11,
        "col": 7,
    }


def test_github_format_prints_workflow_annotations(make_repo: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["validate", str(make_repo(BROKEN)), "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == (
        "::error file=clusters/prod.yaml,line=11,col=7::unknown key 'replica' in spec.nodePools[0]"
        " (did you mean 'replicas'?)"
    )
    assert all(line.startswith("::error file=") for line in lines)


def test_version_and_help() -> None:
    assert (
        CliRunner().invoke(main, ["--version"]).output.strip() == f"gitops, version {__version__}"
    )
    help_text = CliRunner().invoke(main, ["validate", "--help"]).output
    assert "Exit status: 0 when the repository is valid, 1 when it is not." in help_text


def test_installed_command_never_prints_a_traceback(make_repo: Callable[..., Path]) -> None:
    root = make_repo({"clusters/bad.yaml": b"\xff\xfe not utf-8 {{{"})
    proc = subprocess.run(
        [sys.executable, "-m", "gitops.cli", "validate", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "clusters/bad.yaml:1:1: file is not UTF-8 (byte 0xff)" in proc.stdout


def test_describe_lists_every_pool_in_wave_order() -> None:
    result = CliRunner().invoke(main, ["describe", str(EXAMPLE), "-o", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)["pools"]
    assert len(rows) == 12
    assert [r["wave"] for r in rows] == sorted(
        (r["wave"] for r in rows), key=["canary", "staging", "prod"].index
    )
    general = next(r for r in rows if (r["cluster"], r["pool"]) == ("prod-eu-1", "general"))
    assert (general["replicas"], general["maxSurge"], general["maxUnavailable"]) == (40, 10, 4)
    text = CliRunner().invoke(main, ["describe", str(EXAMPLE)])
    assert "prod-eu-1" in text.output and "gpu-h100" in text.output


def test_describe_reports_problems_of_an_invalid_fleet(make_repo: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["describe", str(make_repo(BROKEN))])
    assert result.exit_code == 1
    assert "unknown key 'replica'" in result.output
