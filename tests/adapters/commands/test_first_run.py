"""What a new user meets following the README: exit statuses, scopes, scales and failures.

Every test runs the real command against a simulator over HTTP (or against nothing at all, for
a dead server): a ``--cluster`` scope that is converged exits 0, report-only findings are
``drift``'s exit 2 and not ``plan``'s, a plan at another ``--time-scale`` than the recorded
rollout says so, a dead API server fails in one line naming its URL, and ``describe -o json``
stays JSON when the fleet is invalid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.fleet import load
from gitops.fleet.loader import content_digest
from gitops.fleet.quantities import format_duration
from gitops.kube.client import connect
from gitops.plan import RolloutState
from gitops.rollout.store import StateStore
from gitops.sim import kubeconfig_text
from gitops.sim.api.resources import CONFIGMAPS
from tests.adapters.commands.conftest import (
    CLUSTERS,
    EXAMPLE,
    ROOT,
    Served,
    dead_port,
    replace_in,
    run,
)


def source(served: Served) -> tuple[str, ...]:
    return ("--fleet", str(EXAMPLE), "--kubeconfig", served.kubeconfig)


# -- 1. a --cluster scope is judged on its own ----------------------------------------------------


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_converged_cluster_scope_exits_0_for_plan_and_drift(
    serve: Callable[..., Served], cluster: str
) -> None:
    served = serve()
    result = run("plan", *source(served), "--cluster", cluster, "-o", "json")
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert doc["status"] == "converged"
    assert [c["name"] for w in doc["waves"] for c in w["clusters"]] == [cluster]
    text = run("plan", *source(served), "--cluster", cluster)
    assert text.code == 0 and "Status: converged" in text.out
    assert run("drift", *source(served), "--cluster", cluster).code == 0


def test_a_scope_with_work_still_exits_2(serve: Callable[..., Served]) -> None:
    served = serve(initial="previous")
    result = run("plan", *source(served), "--cluster", "prod-eu-1", "-o", "json")
    assert result.code == 2
    assert result.json()["status"] == "in-progress"


# -- 3. plan's exit status is about actions; drift's about findings --------------------------------


def test_report_only_findings_leave_plan_at_0_and_make_drift_2(
    serve: Callable[..., Served],
) -> None:
    served = serve(drift="unmanaged:1,cordoned:1")
    result = run("plan", *source(served), "-o", "json")
    doc = result.json()
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"UnmanagedNode", "StuckCordoned"} <= kinds
    assert doc["status"] == "converged" and doc["summary"]["actions"] == 0
    assert result.code == 0
    drift = run("drift", *source(served))
    assert drift.code == 2


def test_drift_says_what_its_count_and_plans_count_are(serve: Callable[..., Served]) -> None:
    served = serve(drift="kernel:2,label:1,unmanaged:1")
    result = run("drift", *source(served))
    assert result.code == 2
    findings = int(result.out.split("Findings: ", 1)[1].split(" ", 1)[0])
    plan = run("plan", *source(served), "-o", "json").json()
    sentence = next(line for line in result.out.splitlines() if line.startswith("Each finding"))
    assert f"these {findings} findings put {plan['drift']['driftedNodes']} node" in sentence
    assert '`gitops plan`\'s "nodes drifted" count' in sentence


# -- 3. --time-scale everywhere a policy duration is read ----------------------------------------


def test_plan_at_another_time_scale_than_the_recorded_rollout_says_so(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    revision = content_digest(EXAMPLE)
    store = StateStore(connect(served.kubeconfig), "gitops-system", time_scale=0.01)
    store.save(RolloutState(revision=revision))
    record = served.sim.object("", CONFIGMAPS, "gitops-system", "gitops-rollout-state")
    assert json.loads(record["data"]["state.json"])["timeScale"] == 0.01

    plain = run("plan", *source(served))
    assert plain.code == 0
    assert "runs at --time-scale 0.01, this plan at --time-scale 1" in plain.err
    assert "pass --time-scale 0.01" in plain.err
    scaled = run("plan", *source(served), "--time-scale", "0.01")
    assert scaled.code == 0 and "time-scale" not in scaled.err
    assert run("drift", *source(served), "--time-scale", "0.01").code == 0


def test_plan_scales_policy_durations_as_apply_does(serve: Callable[..., Served]) -> None:
    served = serve(initial="previous")
    soaks = {p.update.soak for _, p in load(EXAMPLE).pools() if p.update.soak}
    assert soaks
    plain = run("plan", *source(served))
    scaled = run("plan", *source(served), "--time-scale", "0.01")
    assert plain.code == scaled.code == 2
    assert plain.out.split("\n", 1)[0].split()[1] == scaled.out.split("\n", 1)[0].split()[1]
    # Same plan id (fleet and inventory), planned with the pools' soaks scaled as apply would.
    for soak in soaks:
        assert f"has soaked {format_duration(soak)})" in plain.out
        assert f"has soaked {format_duration(soak * 0.01)})" in scaled.out
        assert f"has soaked {format_duration(soak)})" not in scaled.out


# -- 3. a dead or missing management cluster ---------------------------------------------------


def test_a_dead_server_fails_fast_in_one_line_without_library_warnings(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    url = f"http://127.0.0.1:{dead_port()}"
    path.write_text(kubeconfig_text(url))
    # The caches would wait an hour for a first listing; the child's deadline is far shorter, so
    # finishing at all proves the server was asked once, however slow the machine.
    argv = ["plan", "--fleet", str(EXAMPLE), "--kubeconfig", str(path), "--sync-timeout", "3600"]
    proc = subprocess.run(
        [sys.executable, "-m", "gitops.cli", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: the management cluster does not answer at {url}: ")
    assert "Connection refused" in lines[0] and "--kubeconfig" in lines[0]
    assert "Retrying" not in proc.stderr and "MaxRetryError" not in proc.stderr


def test_a_missing_kubeconfig_is_named_as_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.kubeconfig"
    for command in ("plan", "drift", "apply"):
        result = run(command, "--fleet", str(EXAMPLE), "--kubeconfig", str(missing))
        assert result.code == 1
        assert result.err.startswith(f"error: kubeconfig {missing} does not exist"), result.err
        assert "Invalid kube-config" not in result.err


# -- 3. describe -o json stays JSON ---------------------------------------------------------------


def test_describe_json_on_an_invalid_fleet_prints_json_problems(fleet_copy: Path) -> None:
    replace_in(fleet_copy / "clusters" / "prod-us-1.yaml", "replicas:", "replicaz:")
    result = run("describe", str(fleet_copy), "-o", "json")
    assert result.code == 1
    doc = result.json()
    assert doc["valid"] is False
    problem = next(p for p in doc["problems"] if "replicaz" in p["message"])
    assert problem["path"].endswith("prod-us-1.yaml") and problem["line"] > 0


# -- 3. gitops sim serve never overwrites a live simulator's kubeconfig ----------------------------


def test_sim_serve_refuses_to_overwrite_the_kubeconfig_of_a_running_simulator(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve()
    kubeconfig = Path(served.kubeconfig)
    before = kubeconfig.read_text()
    # A subprocess with a deadline: a serve that did start would run until stopped.
    argv = ["sim", "serve", "--fleet", str(EXAMPLE), "--kubeconfig-out", str(kubeconfig)]
    result = subprocess.run(
        [sys.executable, "-m", "gitops.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"{kubeconfig} is the kubeconfig of a server still answering")
    assert served.sim.url in result.stderr and "--kubeconfig-out" in result.stderr
    assert kubeconfig.read_text() == before


def test_sim_serve_overwrites_the_kubeconfig_of_a_stopped_simulator(tmp_path: Path) -> None:
    stale = tmp_path / "sim.kubeconfig"
    stale.write_text(kubeconfig_text(f"http://127.0.0.1:{dead_port()}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops.cli", "sim", "serve", "--fleet", str(EXAMPLE)],
        cwd=tmp_path,  # the default --kubeconfig-out, ./sim.kubeconfig
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        summary = proc.stdout.readline()
        assert f"kubeconfig {stale}" in summary, summary + (
            proc.stderr.read() if proc.poll() else ""
        )
        # https by default: the kubeconfig points at the https address the summary names
        url = summary.split("https ", 1)[1].split(" ", 1)[0]
        assert f"server: {url}" in stale.read_text()
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_missing_default_kubeconfig_is_named_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "not-here" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run("plan", "--fleet", str(EXAMPLE))
    assert result.code == 1
    assert result.err.startswith(f"error: kubeconfig {missing} does not exist"), result.err
