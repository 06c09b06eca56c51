"""The audit log: its documented line format, flushed as written."""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client as k8s

from gitops.sim import Simulator
from gitops.sim.api.audit import AuditLog, read
from tests.sim.conftest import api_client, node

REQUEST_KEYS = {
    "time",
    "kind",
    "cluster",
    "verb",
    "resource",
    "group",
    "subresource",
    "namespace",
    "name",
    "path",
    "userAgent",
    "user",
    "code",
    "fault",
}


def test_lines_are_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.request(
        cluster="c1",
        verb="patch",
        resource="nodes",
        subresource="",
        namespace="",
        name="n1",
        user_agent="gitops/0.1",
        code=200,
    )
    log.change(cluster="c1", event="node-ready", name="n1", pool="gpu")
    lines = path.read_text().splitlines()  # read while the log is still open
    assert len(lines) == 2
    request, change = (json.loads(line) for line in lines)
    assert set(request) == REQUEST_KEYS
    assert (request["kind"], request["verb"], request["code"]) == ("request", "patch", 200)
    assert change == {
        "time": change["time"],
        "kind": "change",
        "cluster": "c1",
        "event": "node-ready",
        "name": "n1",
        "pool": "gpu",
    }
    log.close()


def test_no_path_keeps_nothing(tmp_path: Path) -> None:
    log = AuditLog(None)
    log.request(
        cluster="",
        verb="get",
        resource="",
        subresource="",
        namespace="",
        name="",
        user_agent="",
        code=200,
    )
    log.change(cluster="", event="node-ready")
    assert list(tmp_path.iterdir()) == []


def test_every_request_is_logged_with_what_it_touched(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with Simulator(clusters=("c1",), audit_log=path, kubeconfig_out=tmp_path / "kc") as sim:
        core = k8s.CoreV1Api(api_client(sim.workload_kubeconfig("c1")))
        core.create_node(node("n1"))
        core.list_node(label_selector="a=b")
        core.patch_node("n1", {"spec": {"unschedulable": True}})
        core.delete_node("n1")
        k8s.CoreV1Api(api_client(sim.kubeconfig_path)).list_namespaced_secret("default")
        lines = [a for a in read(path) if a["kind"] == "request" and a["resource"]]
    assert [
        (a["cluster"], a["verb"], a["resource"], a["namespace"], a["name"], a["code"])
        for a in lines
    ] == [
        ("c1", "create", "nodes", "", "", 201),
        ("c1", "list", "nodes", "", "", 200),
        ("c1", "patch", "nodes", "", "n1", 200),
        ("c1", "delete", "nodes", "", "n1", 200),
        ("", "list", "secrets", "default", "", 200),
    ]
    assert all(set(a) == REQUEST_KEYS for a in lines)
    assert lines[0]["path"] == "/clusters/c1/api/v1/nodes"
