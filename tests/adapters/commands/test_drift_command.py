"""``gitops drift`` against a running simulator: every exit status and every output format.

Exit status (issue 4, deliverable 6): 0 when nothing drifted (pending changes from git are not
drift), 2 when something did or a cluster could not be observed, 1 on any error, always with a
message and never a traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from gitops.plan.schema import FINDINGS_SCHEMA
from gitops.sim import kubeconfig_text
from gitops.sim.api.resources import SECRETS
from tests.adapters.commands.conftest import (
    ANSI,
    CLUSTERS,
    EXAMPLE,
    Served,
    dead_port,
    replace_in,
    run,
)

SPEC = "kernel:3,label:2,taint:1,unmanaged:1,cordoned:1"


def drift(served: Served, *args: str) -> tuple[int, str, str]:
    result = run("drift", "--fleet", str(EXAMPLE), "--kubeconfig", served.kubeconfig, *args)
    return result.code, result.out, result.err


def test_no_drift_exits_0_in_every_format(serve: Callable[..., Served]) -> None:
    served = serve()
    code, out, _ = drift(served)
    assert code == 0
    assert out.splitlines()[0] == "Findings: 0; none"
    code, out, _ = drift(served, "-o", "markdown")
    assert code == 0
    assert out.startswith("### gitops drift: 0 findings, 0 drift")
    code, out, _ = drift(served, "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schemaVersion"] == "gitops.drift/v1"
    assert doc["findings"] == [] and doc["summary"]["findings"] == 0


def test_pending_changes_alone_are_not_drift(serve: Callable[..., Served]) -> None:
    served = serve(initial="previous")
    code, out, _ = drift(served, "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["drift"] == 0
    assert {f["kind"] for f in doc["findings"]} == {"Outdated"}
    assert len(doc["findings"]) == 122


def test_drift_exits_2_and_every_format_tells_the_same_story(serve: Callable[..., Served]) -> None:
    served = serve(drift=SPEC)
    code, out, err = drift(served, "-o", "json")
    assert code == 2, err
    doc = json.loads(out)
    jsonschema.validate(doc, FINDINGS_SCHEMA)
    assert doc["schemaVersion"] == "gitops.drift/v1"
    counts = Counter(f["kind"] for f in doc["findings"])
    assert counts == {
        "ImageMismatch": 3,
        "ConfigMismatch": 3,
        "UnmanagedNode": 1,
        "StuckCordoned": 1,
    }
    assert doc["summary"]["findings"] == 8 and doc["summary"]["drift"] == 8
    assert {k: v for k, v in doc["summary"]["byKind"].items() if v} == dict(counts)

    code, text, _ = drift(served)
    assert code == 2
    first = text.splitlines()[0]
    assert first.startswith("Findings: 8 (") and first.endswith("; 8 are drift")
    assert not ANSI.search(text)  # no colour when stdout is not a terminal
    for finding in doc["findings"]:
        assert finding["fingerprint"] in text

    code, md, _ = drift(served, "-o", "markdown")
    assert code == 2
    assert md.startswith("### gitops drift: 8 findings, 8 drift")
    assert "| Kind | Count |" in md
    for kind, n in counts.items():
        assert f"| {kind} | {n} |" in md


def test_cluster_filter_limits_observation_and_findings(serve: Callable[..., Served]) -> None:
    served = serve(drift=SPEC)
    code, out, _ = drift(served, "-o", "json")
    everywhere = json.loads(out)["findings"]
    chosen = everywhere[0]["cluster"]
    before = len(served.requests("list"))
    code, out, _ = drift(served, "-o", "json", "--cluster", chosen)
    findings = json.loads(out)["findings"]
    assert findings == [f for f in everywhere if f["cluster"] == chosen]
    assert code == 2
    listed = {line["cluster"] for line in served.requests("list")[before:]}
    assert listed == {"", chosen}  # Machines in the management cluster, and that cluster only
    others = [c for c in CLUSTERS if c not in {f["cluster"] for f in everywhere}]
    if others:
        code, out, _ = drift(served, "-o", "json", "--cluster", others[0])
        assert code == 0 and json.loads(out)["findings"] == []


def test_an_unreachable_cluster_is_unknown_and_the_others_are_still_checked(
    serve: Callable[..., Served],
) -> None:
    served = serve(initial="previous")
    served.sim.store.delete("", SECRETS, "prod-eu-1", "prod-eu-1-kubeconfig")
    code, out, _ = drift(served, "-o", "json")
    assert code == 2
    findings = json.loads(out)["findings"]
    unknown = [f for f in findings if f["kind"] == "Unknown"]
    assert [f["cluster"] for f in unknown] == ["prod-eu-1"]
    assert "prod-eu-1-kubeconfig" in unknown[0]["observed"]
    assert unknown[0]["severity"] == "error"
    checked = {f["cluster"] for f in findings if f["kind"] == "Outdated"}
    assert checked == set(CLUSTERS) - {"prod-eu-1"}
    code, text, _ = drift(served)
    assert "cluster prod-eu-1 could not be observed" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cluster", "nowhere-1"), "--cluster names no cluster of the fleet: nowhere-1"),
        (("--repo", str(EXAMPLE)), "give exactly one of --fleet PATH or --repo URL[#REF]"),
    ],
    ids=["unknown-cluster", "fleet-and-repo"],
)
def test_usage_errors_exit_1(
    serve: Callable[..., Served], args: tuple[str, ...], message: str
) -> None:
    served = serve()
    code, _, err = drift(served, *args)
    assert code == 1
    assert message in err


def test_neither_fleet_nor_repo_exits_1() -> None:
    result = run("drift", "--kubeconfig", "/nonexistent")
    assert result.code == 1
    assert "give exactly one of --fleet PATH or --repo URL[#REF]" in result.err


def test_an_invalid_fleet_exits_1_with_every_problem_located(
    serve: Callable[..., Served], fleet_copy: Path
) -> None:
    served = serve()
    replace_in(fleet_copy / "clusters" / "canary-eu-1.yaml", "image: talos-1.9.2", "image: talos-9")
    replace_in(fleet_copy / "clusters" / "prod-us-1.yaml", "replicas:", "replicaz:")
    result = run("drift", "--fleet", str(fleet_copy), "--kubeconfig", served.kubeconfig)
    assert result.code == 1
    assert result.err.startswith("error: the fleet repository is invalid:")
    assert "canary-eu-1.yaml:" in result.err and "talos-9" in result.err
    assert "prod-us-1.yaml:" in result.err and "replicaz" in result.err
    assert served.requests("list") == []  # nothing observed for a fleet that does not load


@pytest.mark.parametrize(
    ("content", "context"),
    [
        (None, None),
        ("{{{ this is not yaml", None),
        ("- a list\n- not a mapping\n", None),
        ("clusters: 5\ncontexts: 7\ncurrent-context: x\n", None),
        ("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n", "absent"),
    ],
    ids=["missing", "not-yaml", "a-list", "wrong-shape", "unknown-context"],
)
def test_a_bad_kubeconfig_exits_1_with_a_message(
    tmp_path: Path, content: str | None, context: str | None
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    args = ("--context", context) if context else ()
    result = run("drift", "--fleet", str(EXAMPLE), "--kubeconfig", str(path), *args)
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert result.out == ""


def test_a_dead_management_cluster_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig_text(f"http://127.0.0.1:{dead_port()}"))
    result = run("drift", "--fleet", str(EXAMPLE), "--kubeconfig", str(path), "--sync-timeout", "1")
    assert result.code == 1
    assert result.err.startswith("error: the management cluster does not answer at http://")
    assert "refused" in result.err


def test_a_hand_changed_gpu_driver_exits_2_naming_the_node_and_both_versions(
    serve: Callable[..., Served],
) -> None:
    served = serve(drift="driver:1")
    code, out, err = drift(served)
    assert code == 2, err
    (line,) = [x for x in out.splitlines() if "nvidia.com/cuda.driver-version.full" in x]
    node = line.split("node ", 1)[1].split()[0]
    assert "gpu" in node
    assert "550.127.08" in line  # declared by talos-1.9.2-nvidia
    observed = line.split("reports label nvidia.com/cuda.driver-version.full ", 1)[1].split()[0]
    assert observed != "550.127.08" and observed.startswith("550.127.")
    code, out, _ = drift(served, "-o", "json", "--fingerprints")
    doc = json.loads(out)
    jsonschema.validate(doc, FINDINGS_SCHEMA)
    (finding,) = [f for f in doc["findings"] if f["kind"] == "ImageMismatch"]
    assert (finding["node"], finding["expected"], finding["observed"]) == (
        node,
        "550.127.08",
        observed,
    )
    (odd_pool,) = [p for p in doc["fingerprints"] if p["odd"]]
    assert odd_pool["distinct"] == 2 and [o["node"] for o in odd_pool["odd"]] == [node]
    assert all(p["distinct"] == 1 for p in doc["fingerprints"] if p is not odd_pool)
    code, table, _ = drift(served, "--fingerprints")
    assert code == 2
    assert f"{node} (" in table and "Pools with one fingerprint:" in table


def test_extension_and_schematic_drift_name_their_fact(serve: Callable[..., Served]) -> None:
    served = serve(drift="extension:1,schematic:1")
    code, out, _ = drift(served, "-o", "json")
    assert code == 2
    facts = sorted(f["fact"] for f in json.loads(out)["findings"] if f["kind"] == "ImageMismatch")
    assert len(facts) == 2
    assert facts[0] == "annotation extensions.talos.dev/schematic"
    assert facts[1].startswith("label extensions.talos.dev/")
