"""``gitops sim serve``: starts, prints one summary line, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client as k8s

from gitops.cli import main
from tests.conftest import EXAMPLE
from tests.sim.conftest import api_client


def test_invalid_fleet_prints_problems_and_exits_1(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, fleet)
    cluster = next((fleet / "clusters").glob("*.yaml"))
    cluster.write_text(cluster.read_text().replace("nodePools:", "nodePoolz:", 1))
    result = CliRunner().invoke(main, ["sim", "serve", "--fleet", str(fleet)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{cluster.name}:" in result.output and "nodePoolz" in result.output
    assert "invalid fleet" in result.output


def test_bad_faults_spec_exits_1_with_its_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["sim", "serve", "--fleet", str(EXAMPLE), "--faults", "error=7"]
    )
    assert result.exit_code == 1
    assert "invalid --faults: error=7: not a probability" in result.output
    assert "Traceback" not in result.output


def test_serve_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    audit = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitops.cli",
            "sim",
            "serve",
            "--fleet",
            str(EXAMPLE),
            "--kubeconfig-out",
            str(kubeconfig),
            "--audit-log",
            str(audit),
            "--seed",
            "3",
            "--time-scale",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "gitops sim: serving http://127.0.0.1:" in line, (
            proc.stderr.read() if proc.stderr else ""
        )
        assert "4 workload clusters" in line and f"kubeconfig {kubeconfig}" in line
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert server in line
        secrets = k8s.CoreV1Api(api_client(str(kubeconfig))).list_secret_for_all_namespaces()
        assert any(s.metadata.name.endswith("-kubeconfig") for s in secrets.items)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
        assert any(
            '"verb":"list","resource":"secrets"' in line for line in audit.read_text().splitlines()
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main,
            [
                "sim",
                "serve",
                "--fleet",
                str(EXAMPLE),
                "--port",
                str(port),
                "--kubeconfig-out",
                str(tmp_path / "kc"),
            ],
        )
    assert result.exit_code == 1
    assert "cannot start the simulator" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "kc").exists()


def workload_get(kubeconfig: Path, path: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The JSON lines of a GET on workload cluster canary-eu-1 (a watch: one per event)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    context = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    request = urllib.request.Request(
        f"{cluster['server']}/clusters/canary-eu-1{path}",
        headers={"Authorization": f"Bearer {user['token']}"},
    )
    with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
        return [json.loads(line) for line in resp if line.strip()]


@pytest.mark.parametrize("heartbeats", [True, False])
def test_nodes_heartbeat_unless_told_not_to(tmp_path: Path, heartbeats: bool) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitops.cli",
            "sim",
            "serve",
            "--fleet",
            str(EXAMPLE),
            "--kubeconfig-out",
            str(kubeconfig),
            "--time-scale",
            "0.005",
            "--watch-history",
            "100",
            "--watch-history-seconds",
            "30",
            *([] if heartbeats else ["--no-heartbeats"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "gitops sim: serving" in line, proc.stderr.read() if proc.stderr else ""
        (listed,) = workload_get(kubeconfig, "/api/v1/nodes")
        rv = listed["metadata"]["resourceVersion"]
        # 2 s hold one status report of every node (5 min at time scale 0.005 is 1.5 s)
        events = workload_get(
            kubeconfig, f"/api/v1/nodes?watch=true&resourceVersion={rv}&timeoutSeconds=2", 20
        )
        (leases,) = workload_get(
            kubeconfig, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        )
        if heartbeats:
            # floors only: how many report within the window depends on the machine's speed
            assert events and {e["type"] for e in events} == {"MODIFIED"}
            nodes = {n["metadata"]["name"] for n in listed["items"]}
            assert {e["object"]["metadata"]["name"] for e in events} <= nodes
            assert leases["items"] and {x["metadata"]["name"] for x in leases["items"]} <= nodes
        else:
            assert events == []
            assert leases["items"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
