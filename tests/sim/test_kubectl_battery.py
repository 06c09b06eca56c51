"""What a new user's kubectl does against the simulator, and what a real API server answers.

One simulator (https, as kubectl sends its token only there) serves the whole battery: get,
describe, explain, client-side and server-side apply, invalid input refused with the server's
errors, ``--dry-run=server`` deletes and drains that change nothing, ``--as`` without the
permission (403), ``auth can-i``, and a kubeconfig without credentials (401).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gitops.sim import Simulator
from gitops.sim.api.resources import CONFIGMAPS, LEASES, NODES, PODS
from tests.sim.conftest import node, pod

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


class Kubectl:
    def __init__(self, kubeconfig: str, cache: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache = cache

    def run(
        self, *args: str, stdin: str = "", kubeconfig: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                KUBECTL or "kubectl",
                "--kubeconfig",
                kubeconfig or self.kubeconfig,
                "--cache-dir",
                str(self.cache),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def fails(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode != 0, done.stdout
        return done.stderr


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    tmp = tmp_path_factory.mktemp("battery")
    with Simulator(clusters=("c1",), kubeconfig_out=tmp / "kubeconfig", tls=True) as sim:
        sim.store.create("c1", NODES, node("n1"))
        sim.store.create("c1", PODS, pod("web-1", "n1", app="web"))
        yield sim


@pytest.fixture(scope="module")
def kubectl(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(sim.workload_kubeconfig("c1"), tmp_path_factory.mktemp("cache"))


def test_get_describe_and_explain(kubectl: Kubectl) -> None:
    assert kubectl.ok("get", "nodes").split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert "Name:               n1" in kubectl.ok("describe", "node", "n1")
    explained = kubectl.ok("explain", "leases.spec.renewTime")
    assert "renewTime is a time when the current holder of a lease has last updated" in explained
    assert "clusterName\t<string>" in kubectl.ok("explain", "machines.spec")


LEASE = """
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: battery, namespace: default}
spec: {holderIdentity: me, leaseDurationSeconds: 15}
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {a: "1"}
"""


def test_apply_client_side_and_server_side(sim: Simulator, kubectl: Kubectl) -> None:
    assert kubectl.ok("apply", "-f", "-", stdin=CONFIGMAP).strip() == "configmap/settings created"
    assert "serverside-applied" in kubectl.ok("apply", "--server-side", "-f", "-", stdin=LEASE)
    changed = LEASE.replace("holderIdentity: me", "holderIdentity: you")
    kubectl.ok("apply", "--server-side", "-f", "-", stdin=changed)
    stored = sim.store.get("c1", LEASES, "default", "battery")
    assert stored["spec"]["holderIdentity"] == "you"
    assert [e["manager"] for e in stored["metadata"]["managedFields"]] == ["kubectl"]
    conflict = kubectl.fails(
        "apply", "--server-side", "--field-manager=other", "-f", "-", stdin=LEASE
    )
    assert 'conflict with "kubectl"' in conflict and ".spec.holderIdentity" in conflict
    kubectl.ok(
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        stdin=LEASE,
    )
    assert sim.store.get("c1", LEASES, "default", "battery")["spec"]["holderIdentity"] == "me"
    node_yaml = yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"ring": "a"}}}
    )
    kubectl.ok("apply", "--server-side", "-f", "-", stdin=node_yaml)
    assert sim.store.get("c1", NODES, None, "n1")["metadata"]["labels"]["ring"] == "a"
    settings = CONFIGMAP.replace('a: "1"', 'a: "2"')
    kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=settings)
    assert sim.store.get("c1", CONFIGMAPS, "default", "settings")["data"] == {"a": "2"}


def test_invalid_input_gets_the_servers_errors(kubectl: Kubectl) -> None:
    err = kubectl.fails("label", "node", "n1", "bad key!=x")
    assert 'The Node "n1" is invalid: metadata.labels: Invalid value: "bad key!"' in err
    err = kubectl.fails("annotate", "node", "n1", "a/b/c=x")
    assert 'metadata.annotations: Invalid value: "a/b/c": a qualified name must consist' in err
    err = kubectl.fails("patch", "node", "n1", "-p", '{"spec":{"unschedulable":"yes"}}')
    assert "Error from server (BadRequest)" in err
    assert "NodeSpec.spec.unschedulable of type bool" in err
    bad = CONFIGMAP.replace("metadata:", "foo: bar\nmetadata:").replace("settings", "other")
    err = kubectl.fails("create", "-f", "-", stdin=bad)
    assert 'strict decoding error: unknown field "foo"' in err
    err = kubectl.fails("apply", "--server-side", "-f", "-", stdin=bad)
    assert 'unknown field "foo"' in err


def test_dry_run_server_deletes_and_drains_nothing(sim: Simulator, kubectl: Kubectl) -> None:
    out = kubectl.ok("delete", "pod", "web-1", "--dry-run=server")
    assert out.strip() == 'pod "web-1" deleted (server dry run)'
    out = kubectl.ok("drain", "n1", "--dry-run=server", "--force", "--ignore-daemonsets")
    assert "evicting pod default/web-1 (server dry run)" in out
    assert (
        sim.store.get("c1", PODS, "default", "web-1")["metadata"].get("deletionTimestamp") is None
    )
    assert not sim.store.get("c1", NODES, None, "n1")["spec"].get("unschedulable")


def test_impersonation_and_can_i(kubectl: Kubectl) -> None:
    assert kubectl.ok("auth", "can-i", "delete", "pods").strip() == "yes"
    denied = kubectl.run("auth", "can-i", "list", "pods", "--as=alice")
    assert denied.stdout.strip() == "no" and denied.returncode == 1
    err = kubectl.fails("get", "pods", "--as=alice")
    assert (
        'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    ) in err


def test_no_credentials_is_401(sim: Simulator, kubectl: Kubectl, tmp_path: Path) -> None:
    # Over plain http kubectl sends no token at all (and prompts for none): what a user who
    # points it at the http side gets from a server without anonymous access.
    fresh = Kubectl(kubectl.kubeconfig, tmp_path)  # no discovery cached: its requests are 401
    done = fresh.run("get", "nodes", f"--server={sim.url}/clusters/c1")
    assert done.returncode != 0
    assert "error: You must be logged in to the server" in done.stderr
    assert "the server has asked for the client to provide credentials" in done.stderr
