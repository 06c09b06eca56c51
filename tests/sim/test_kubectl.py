"""kubectl against the simulator: the columns people see, cordon, and CRDs by short name."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.sim import Simulator
from gitops.sim.api.resources import NODES
from gitops.sim.api.store import Store

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def kubectl(kubeconfig: str, *args: str, cache: Path) -> str:
    run = subprocess.run(
        [KUBECTL or "kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr.lower(), run.stderr
    return run.stdout


def table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


@pytest.fixture
def seeded(kubectl_sim: Simulator, seed_objects: Callable[[Store], None]) -> Simulator:
    seed_objects(kubectl_sim.store)
    return kubectl_sim


def test_get_nodes_shows_status_roles_age_version(seeded: Simulator, tmp_path: Path) -> None:
    rows = table(kubectl(seeded.workload_kubeconfig("c1"), "get", "nodes", cache=tmp_path))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [r[:3] for r in rows[1:]] == [["n1", "Ready", "worker"], ["n2", "NotReady", "<none>"]]
    assert rows[1][4] == "v1.31.4" and rows[1][3].endswith("s")
    wide = table(
        kubectl(seeded.workload_kubeconfig("c1"), "get", "nodes", "-o", "wide", cache=tmp_path)
    )
    assert wide[0][5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]


def test_cordon_and_uncordon(seeded: Simulator, tmp_path: Path) -> None:
    kc = seeded.workload_kubeconfig("c1")
    assert kubectl(kc, "cordon", "n1", cache=tmp_path).strip() == "node/n1 cordoned"
    assert seeded.store.get("c1", NODES, None, "n1")["spec"]["unschedulable"] is True
    assert (
        table(kubectl(kc, "get", "node", "n1", cache=tmp_path))[1][1] == "Ready,SchedulingDisabled"
    )
    assert kubectl(kc, "uncordon", "n1", cache=tmp_path).strip() == "node/n1 uncordoned"
    assert not seeded.store.get("c1", NODES, None, "n1")["spec"].get("unschedulable")


def test_get_machines_by_name_short_name_and_category(seeded: Simulator, tmp_path: Path) -> None:
    kc = seeded.kubeconfig_path
    # kubectl reads the preferred version, v1beta2, and prints that CRD version's columns.
    for what in ("machines", "ma", "machines.cluster.x-k8s.io"):
        text = kubectl(kc, "get", what, "-A", cache=tmp_path)
        header = text.splitlines()[0]
        for column in ("NODE NAME", "FAILURE DOMAIN", "READY", "AVAILABLE", "UP-TO-DATE"):
            assert column in header, (what, header)
        assert table(text)[1][:4] == ["default", "m1", "c1", "m1"]
    expected = ["NAMESPACE", "NAME", "CLUSTER", "NODENAME", "PROVIDERID", "PHASE", "AGE", "VERSION"]
    rows = table(kubectl(kc, "get", "machines.v1beta1.cluster.x-k8s.io", "-A", cache=tmp_path))
    assert rows[0] == expected
    assert rows[1][:6] == ["default", "m1", "c1", "m1", "sim://c1/m1", "Running"]
    rows = table(kubectl(kc, "get", "cluster-api", "-A", cache=tmp_path))
    assert rows[1][1] == "machine.cluster.x-k8s.io/m1"


def test_get_pods_all_namespaces(seeded: Simulator, tmp_path: Path) -> None:
    rows = table(kubectl(seeded.workload_kubeconfig("c1"), "get", "pods", "-A", cache=tmp_path))
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:5] for r in rows[1:]] == [
        ["default", "db-1", "0/1", "Running", "0"],
        ["default", "web-1", "0/1", "Running", "0"],
    ]
    rows = table(
        kubectl(
            seeded.workload_kubeconfig("c1"),
            "get",
            "pods",
            "-A",
            "--field-selector",
            "spec.nodeName=n1",
            "-l",
            "app=web",
            cache=tmp_path,
        )
    )
    assert [r[1] for r in rows[1:]] == ["web-1"]


def test_label_annotate_and_json_output(seeded: Simulator, tmp_path: Path) -> None:
    kc = seeded.workload_kubeconfig("c1")
    kubectl(kc, "label", "node", "n2", "pool=gpu", cache=tmp_path)
    kubectl(kc, "annotate", "node", "n2", "note=hand-patched", cache=tmp_path)
    got = seeded.store.get("c1", NODES, None, "n2")["metadata"]
    assert got["labels"]["pool"] == "gpu" and got["annotations"]["note"] == "hand-patched"
    assert kubectl(kc, "get", "nodes", "-l", "pool=gpu", "-o", "name", cache=tmp_path).split() == [
        "node/n2"
    ]
    kubectl(seeded.kubeconfig_path, "label", "ma", "m1", "-n", "default", "x=y", cache=tmp_path)


def test_create_apply_and_delete_from_manifests(seeded: Simulator, tmp_path: Path) -> None:
    kc = seeded.workload_kubeconfig("c1")
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n"
    )
    assert (
        kubectl(kc, "create", "-f", str(manifest), cache=tmp_path).strip()
        == "configmap/settings created"
    )
    deploy = tmp_path / "deploy.yaml"
    spec = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: app, image: 'app:IMAGE'}, {name: side, image: 'side:1'}]}\n"
    )
    deploy.write_text(spec.replace("IMAGE", "1"))
    assert (
        kubectl(kc, "apply", "-f", str(deploy), cache=tmp_path).strip()
        == "deployment.apps/web created"
    )
    deploy.write_text(spec.replace("IMAGE", "2"))
    assert (
        kubectl(kc, "apply", "-f", str(deploy), cache=tmp_path).strip()
        == "deployment.apps/web configured"
    )
    from gitops.sim.api.resources import DEPLOYMENTS

    containers = seeded.store.get("c1", DEPLOYMENTS, "default", "web")["spec"]["template"]["spec"][
        "containers"
    ]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "app:2"), ("side", "side:1")]
    # A bound pod is deleted gracefully and no kubelet runs here to finish: kubectl would wait
    # for it as it would on a real cluster whose node is gone quiet.
    assert 'pod "web-1" deleted' in kubectl(
        kc, "delete", "pod", "web-1", "--wait=false", cache=tmp_path
    )
