"""``gitops plan`` against a running simulator: exit statuses, formats, sources and filters.

Exit status (issue 4, deliverable 6): 0 when there is nothing to do, 2 when there are changes,
1 on error. The JSON plan is ``gitops.plan/v1`` and deterministic: two runs over the same
observed fleet differ only in ``now``. ``--repo`` clones a real bare repository on disk, at
``#ref`` when one is given.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gitops.plan.schema import PLAN_SCHEMA
from gitops.sim import kubeconfig_text
from gitops.sim.api.resources import SECRETS
from tests.adapters.commands.conftest import (
    ANSI,
    CLUSTERS,
    EXAMPLE,
    ROOT,
    Result,
    Served,
    dead_port,
    replace_in,
    run,
    without_now,
)
from tests.conftest import git


def plan(served: Served, *args: str, source: tuple[str, ...] = ("--fleet", str(EXAMPLE))) -> Result:
    return run("plan", *source, "--kubeconfig", served.kubeconfig, *args)


def clusters_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for wave in doc["waves"] for c in wave["clusters"]}


def actions_of(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for p in cluster["pools"] for b in p["batches"] for a in b["actions"]]


def test_nothing_to_do_exits_0_in_every_format(serve: Callable[..., Served]) -> None:
    served = serve()
    result = plan(served, "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, PLAN_SCHEMA)
    assert doc["schemaVersion"] == "gitops.plan/v1"
    assert doc["status"] == "converged" and doc["summary"]["actions"] == 0
    assert doc["findings"] == []
    text = plan(served)
    assert text.code == 0
    assert text.out.startswith(f"Plan {doc['id']} for fleet acme")
    assert "Status: converged" in text.out.splitlines()[1]
    markdown = plan(served, "-o", "markdown")
    assert markdown.code == 0
    assert markdown.out.startswith(f"### gitops plan `{doc['id']}`")
    assert "| Wave | Status | Clusters | Actions | Ready now | Waits |" in markdown.out


def test_changes_exit_2_and_every_format_renders_the_same_plan(
    serve: Callable[..., Served],
) -> None:
    served = serve(initial="previous", drift="kernel:1")
    result = plan(served, "-o", "json")
    assert result.code == 2, result.err
    doc = result.json()
    jsonschema.validate(doc, PLAN_SCHEMA)
    assert doc["schemaVersion"] == "gitops.plan/v1"
    assert doc["status"] == "in-progress"
    # prod-us-1's system (3 nodes) and gpu-a100 (8) pools roll through MachineDeployments
    assert doc["summary"]["byKind"]["CreateReplacement"] == 122 - 3 - 8
    assert doc["summary"]["byKind"]["RollMachineDeployment"] == 2
    assert doc["summary"]["findings"] == 123

    text = plan(served)
    assert text.code == 2
    lines = text.out.splitlines()
    # Summary first: the headline, the status, the counts and the drift share, then the waves.
    assert lines[0].startswith(f"Plan {doc['id']} for fleet acme at {doc['fleetRevision']}")
    assert lines[1].startswith("Status: ")
    assert lines[2].startswith(f"Summary: {doc['summary']['actions']} actions")
    assert lines.index(next(line for line in lines if line.startswith("Drift:"))) < lines.index(
        next(line for line in lines if line.startswith("Wave 1 canary"))
    )
    assert not ANSI.search(text.out)

    markdown = plan(served, "-o", "markdown")
    assert markdown.code == 2
    assert markdown.out.startswith(f"### gitops plan `{doc['id']}`")
    table = markdown.out.index("| Wave | Status | Clusters | Actions | Ready now | Waits |")
    assert table < markdown.out.index("<details>")
    assert [w["name"] for w in doc["waves"]] == ["canary", "staging", "prod"]
    for wave in doc["waves"]:
        assert f"| {wave['index']}. {wave['name']} |" in markdown.out
    assert len(markdown.out.encode()) <= 60_000


def test_two_runs_on_an_unchanged_fleet_are_identical_but_for_now(
    serve: Callable[..., Served],
) -> None:
    served = serve(initial="previous", drift="label:1,cordoned:1")
    first = plan(served, "-o", "json")
    second = plan(served, "-o", "json")
    assert first.code == second.code == 2
    assert first.json()["id"] == second.json()["id"]
    assert without_now(first.out) == without_now(second.out)
    # ... and "now" is the only field that moved: blank it textually and the bytes agree.
    strip = [
        line for line in first.out.splitlines() if '"epoch"' not in line and '"utc"' not in line
    ]
    again = [
        line for line in second.out.splitlines() if '"epoch"' not in line and '"utc"' not in line
    ]
    assert strip == again


def test_cluster_filter_plans_only_the_named_clusters(serve: Callable[..., Served]) -> None:
    served = serve(initial="previous")
    before = len(served.requests("list"))
    result = plan(served, "-o", "json", "--cluster", "prod-us-1", "--cluster", "canary-eu-1")
    assert result.code == 2
    doc = result.json()
    assert sorted(clusters_of(doc)) == ["canary-eu-1", "prod-us-1"]
    assert {f["cluster"] for f in doc["findings"]} == {"canary-eu-1", "prod-us-1"}
    assert all(actions_of(c) for c in clusters_of(doc).values())
    listed = {line["cluster"] for line in served.requests("list")[before:]}
    assert listed == {"", "canary-eu-1", "prod-us-1"}


def test_an_unreachable_cluster_is_unknown_and_the_others_are_planned(
    serve: Callable[..., Served],
) -> None:
    served = serve(initial="previous")
    served.sim.store.delete("", SECRETS, "prod-eu-1", "prod-eu-1-kubeconfig")

    def dead(secret: dict[str, Any]) -> dict[str, Any]:
        config = kubeconfig_text(f"http://127.0.0.1:{dead_port()}", "prod-us-1")
        secret["data"]["value"] = base64.b64encode(config.encode()).decode()
        return secret

    served.sim.store.mutate("", SECRETS, "prod-us-1", "prod-us-1-kubeconfig", dead)
    result = plan(served, "-o", "json", "--sync-timeout", "1")
    assert result.code == 2
    doc = result.json()
    clusters = clusters_of(doc)
    unknown = {f["cluster"]: f["observed"] for f in doc["findings"] if f["kind"] == "Unknown"}
    assert sorted(unknown) == ["prod-eu-1", "prod-us-1"]
    assert "prod-eu-1-kubeconfig" in unknown["prod-eu-1"]
    assert "prod-us-1" in unknown["prod-us-1"]
    for name in ("prod-eu-1", "prod-us-1"):
        assert clusters[name]["status"] == "unknown"
        assert actions_of(clusters[name]) == []
    for name in ("canary-eu-1", "staging-eu-1"):
        assert clusters[name]["status"] != "unknown"
        assert actions_of(clusters[name])
    text = plan(served, "--sync-timeout", "1")
    assert text.code == 2
    assert "prod-eu-1" in text.out and "unknown" in text.out.lower()


def test_repo_source_at_a_branch_and_at_a_commit(
    serve: Callable[..., Served], fleet_remote: Callable[..., tuple[Path, Path]]
) -> None:
    served = serve()
    bare, work = fleet_remote()
    first = git(work, "rev-parse", "HEAD")
    result = plan(served, "-o", "json", source=("--repo", str(bare)))
    assert result.code == 0, result.err
    assert result.json()["fleetRevision"] == first

    replace_in(work / "clusters" / "canary-eu-1.yaml", "replicas: 3", "replicas: 4")
    git(work, "commit", "-q", "-am", "Grow canary system pool")
    git(work, "push", "-q", "origin", "main")
    second = git(work, "rev-parse", "HEAD")

    for source in (str(bare), f"{bare}#main", f"file://{bare}#main"):
        result = plan(served, "-o", "json", source=("--repo", source))
        assert result.code == 2, (source, result.err)
        doc = result.json()
        assert doc["fleetRevision"] == second
        assert doc["summary"]["byKind"]["ScaleUp"] == 1
        assert [a["cluster"] for a in actions_of(clusters_of(doc)["canary-eu-1"])] == [
            "canary-eu-1"
        ]
    pinned = plan(served, "-o", "json", source=("--repo", f"{bare}#{first}"))
    assert pinned.code == 0, pinned.err
    assert pinned.json()["fleetRevision"] == first


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (("--repo", "/nonexistent/fleet.git"), "error: "),
        (("--repo", "BARE#no-such-branch"), "no-such-branch"),
    ],
    ids=["no-repository", "unknown-ref"],
)
def test_a_bad_repo_exits_1(
    serve: Callable[..., Served],
    fleet_remote: Callable[..., tuple[Path, Path]],
    source: tuple[str, str],
    message: str,
) -> None:
    served = serve()
    bare, _ = fleet_remote()
    source = (source[0], source[1].replace("BARE", str(bare)))
    result = plan(served, source=source)
    assert result.code == 1
    assert result.err.startswith("error: ") and message in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fleet", str(EXAMPLE), "--cluster", "nowhere-1"), "--cluster names no cluster"),
        (("--fleet", str(EXAMPLE), "--repo", str(EXAMPLE)), "give exactly one of --fleet"),
        ((), "give exactly one of --fleet"),
        (("--fleet", str(ROOT / "tests")), "the fleet repository is invalid"),
    ],
    ids=["unknown-cluster", "fleet-and-repo", "neither", "not-a-fleet"],
)
def test_errors_exit_1_with_a_message(
    serve: Callable[..., Served], args: tuple[str, ...], message: str
) -> None:
    served = serve()
    result = plan(served, *args, source=())
    assert result.code == 1
    assert message in result.err
    assert result.out == ""


def test_a_bad_kubeconfig_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("- not\n- a kubeconfig\n")
    result = run("plan", "--fleet", str(EXAMPLE), "--kubeconfig", str(path))
    assert result.code == 1
    assert result.err.startswith("error: ") and "not a usable kubeconfig" in result.err


def test_the_installed_entry_point_exits_2_with_a_json_plan(serve: Callable[..., Served]) -> None:
    """One real process: the module entry point, its exit status and its stdout."""
    served = serve(initial="previous")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "gitops.cli", "plan", "--fleet", str(EXAMPLE)),
            *("--kubeconfig", served.kubeconfig, "-o", "json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schemaVersion"] == "gitops.plan/v1"
    assert set(clusters_of(doc)) == set(CLUSTERS)
