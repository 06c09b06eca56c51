"""cluster.x-k8s.io is served in v1beta1 and v1beta2: two views of one stored object.

Conversion follows upstream's for the fields gitops and the simulator use; what gitops writes
survives a round trip through the other version; every object served validates against the
upstream CRD of the version it is served in (read in place from ../shared/crds); discovery
names v1beta2 preferred, and a simulator started with ``capi_version="v1beta1"`` serves only
v1beta1, as an old management cluster does.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gitops.sim import Simulator
from gitops.sim.api.conversion import CONVERSION_DATA
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    CLUSTERS,
    CLUSTERS_V1BETA1,
    MACHINEDEPLOYMENTS,
    MACHINEDEPLOYMENTS_V1BETA1,
    MACHINES,
    MACHINES_V1BETA2,
    MACHINESETS,
    MACHINESETS_V1BETA1,
    NAMESPACES,
)
from gitops.sim.api.store import Store
from tests.conftest import EXAMPLE
from tests.sim.crds import CRDS, PLURALS, assert_valid_crd, crd_problems

Obj = dict[str, Any]
NS = "prod"
STAMP = "2026-01-01T00:00:00Z"


@pytest.fixture
def store() -> Store:
    s = Store()
    s.create("", NAMESPACES, {"metadata": {"name": NS}})
    return s


def v1beta1_machine(name: str = "m1") -> Obj:
    """A Machine as gitops writes it on an old (v1beta1) management cluster."""
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"node.cluster.x-k8s.io/pool": "gpu"},
            "annotations": {"fleet.gitops.io/plan-id": "p1"},
        },
        "spec": {
            "clusterName": NS,
            "bootstrap": {"dataSecretName": f"{name}-bootstrap"},
            "infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
                "kind": "SimMachine",
                "name": name,
                "namespace": NS,
            },
            "version": "v1.31.4",
            "failureDomain": "eu-west-1a",
            "nodeDrainTimeout": "15m0s",
        },
    }


def v1beta2_deployment(name: str = "workers") -> Obj:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "clusterName": NS,
            "replicas": 3,
            "paused": False,
            "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": name}},
            "rollout": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                }
            },
            "deletion": {"order": "Oldest"},
            "template": {
                "metadata": {"labels": {"cluster.x-k8s.io/deployment-name": name}},
                "spec": {
                    "clusterName": NS,
                    "bootstrap": {"dataSecretName": "boot"},
                    "infrastructureRef": {
                        "apiGroup": "infrastructure.cluster.x-k8s.io",
                        "kind": "SimMachineTemplate",
                        "name": f"{name}-abc",
                    },
                    "version": "v1.31.4",
                    "minReadySeconds": 30,
                    "deletion": {"nodeDrainTimeoutSeconds": 600},
                },
            },
        },
    }


def test_a_v1beta1_machine_reads_back_as_written_and_as_v1beta2(store: Store) -> None:
    written = v1beta1_machine()
    store.create("", MACHINES, copy.deepcopy(written))
    back = store.get("", MACHINES, NS, "m1")
    assert back["apiVersion"] == "cluster.x-k8s.io/v1beta1"
    assert back["spec"] == written["spec"]
    assert back["metadata"]["labels"] == written["metadata"]["labels"]
    assert back["metadata"]["annotations"] == written["metadata"]["annotations"]
    hub = store.get("", MACHINES_V1BETA2, NS, "m1")
    assert hub["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    assert hub["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "SimMachine",
        "name": "m1",
    }
    assert hub["spec"]["deletion"] == {"nodeDrainTimeoutSeconds": 900}
    assert "nodeDrainTimeout" not in hub["spec"]
    assert_valid_crd(back)
    assert_valid_crd(hub)


def test_status_converts_both_ways_with_conditions_in_both_shapes(store: Store) -> None:
    store.create("", MACHINES, v1beta1_machine())
    ready = {"type": "Ready", "status": "True", "reason": "Ready", "message": ""}
    old = {"type": "Ready", "status": "True", "lastTransitionTime": STAMP}

    def status(m: Obj) -> Obj:
        m["status"] = {
            "phase": "Running",
            "nodeRef": {"name": "node-1"},
            "initialization": {
                "bootstrapDataSecretCreated": True,
                "infrastructureProvisioned": True,
            },
            "conditions": [{**ready, "lastTransitionTime": STAMP}],
            "deprecated": {"v1beta1": {"conditions": [old]}},
        }
        return m

    store.mutate("", MACHINES_V1BETA2, NS, "m1", status, subresource="status")
    view = store.get("", MACHINES, NS, "m1")["status"]
    assert view["bootstrapReady"] is True and view["infrastructureReady"] is True
    assert view["nodeRef"] == {"apiVersion": "v1", "kind": "Node", "name": "node-1"}
    assert view["conditions"] == [old]
    assert view["v1beta2"]["conditions"][0]["type"] == "Ready"
    # A v1beta1 client writing its status back changes nothing in the stored object.
    before = store.get("", MACHINES_V1BETA2, NS, "m1")
    store.update("", MACHINES, store.get("", MACHINES, NS, "m1"), subresource="status")
    assert store.get("", MACHINES_V1BETA2, NS, "m1")["status"] == before["status"]


def test_what_v1beta1_cannot_say_survives_in_the_conversion_data(store: Store) -> None:
    hub = v1beta2_deployment()
    machine = {**v1beta1_machine(), "apiVersion": "cluster.x-k8s.io/v1beta2"}
    machine["spec"] = copy.deepcopy(hub["spec"]["template"]["spec"])
    machine["spec"]["infrastructureRef"]["kind"] = "SimMachine"
    store.create("", MACHINES_V1BETA2, machine)
    view = store.get("", MACHINES, NS, "m1")
    assert CONVERSION_DATA in view["metadata"]["annotations"]
    assert "minReadySeconds" not in view["spec"]
    view["metadata"]["labels"]["edited"] = "yes"
    store.update("", MACHINES, view)
    after = store.get("", MACHINES_V1BETA2, NS, "m1")
    assert after["spec"]["minReadySeconds"] == 30
    assert after["metadata"]["labels"]["edited"] == "yes"
    assert CONVERSION_DATA not in (after["metadata"].get("annotations") or {})


def test_a_machine_deployment_shows_strategy_and_counters_in_each_version(store: Store) -> None:
    store.create("", MACHINEDEPLOYMENTS, v1beta2_deployment())

    def status(md: Obj) -> Obj:
        md["status"] = {
            "observedGeneration": 1,
            "replicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 2,
            "upToDateReplicas": 1,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "Available",
                    "message": "",
                    "lastTransitionTime": STAMP,
                }
            ],
            "deprecated": {"v1beta1": {"updatedReplicas": 1, "readyReplicas": 3}},
        }
        return md

    store.mutate("", MACHINEDEPLOYMENTS, NS, "workers", status, subresource="status")
    old = store.get("", MACHINEDEPLOYMENTS_V1BETA1, NS, "workers")
    assert old["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0, "deletePolicy": "Oldest"},
    }
    assert old["spec"]["minReadySeconds"] == 30
    assert old["spec"]["template"]["spec"]["nodeDrainTimeout"] == "10m0s"
    assert old["spec"]["template"]["spec"]["infrastructureRef"]["apiVersion"] == (
        "infrastructure.cluster.x-k8s.io/v1alpha1"
    )
    assert old["status"]["updatedReplicas"] == 1
    assert old["status"]["v1beta2"]["upToDateReplicas"] == 1
    assert old["status"]["v1beta2"]["availableReplicas"] == 2
    assert_valid_crd(old)
    assert_valid_crd(store.get("", MACHINEDEPLOYMENTS, NS, "workers"))
    # Written back in v1beta1 (a paused rollout, as an old client pauses), read in v1beta2.
    old["spec"]["paused"] = True
    old["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 2
    store.update("", MACHINEDEPLOYMENTS_V1BETA1, old)
    hub = store.get("", MACHINEDEPLOYMENTS, NS, "workers")
    assert hub["spec"]["paused"] is True
    assert hub["spec"]["rollout"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 2,
        "maxUnavailable": 0,
    }
    assert hub["spec"]["deletion"] == {"order": "Oldest"}
    assert hub["spec"]["template"]["spec"]["minReadySeconds"] == 30
    assert hub["metadata"]["generation"] == 2


def test_machine_sets_and_clusters_convert_and_validate(store: Store) -> None:
    md = v1beta2_deployment()
    ms = {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineSet",
        "metadata": {"name": "workers-abc", "namespace": NS},
        "spec": {
            "clusterName": NS,
            "replicas": 3,
            "selector": md["spec"]["selector"],
            "template": md["spec"]["template"],
            "deletion": {"order": "Newest"},
        },
    }
    store.create("", MACHINESETS, ms)
    old_ms = store.get("", MACHINESETS_V1BETA1, NS, "workers-abc")
    assert old_ms["spec"]["deletePolicy"] == "Newest"
    assert old_ms["spec"]["minReadySeconds"] == 30
    cluster = {
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "Cluster",
        "metadata": {"name": NS, "namespace": NS},
        "spec": {
            "topology": {
                "classRef": {"name": "sim-class"},
                "version": "v1.31.4",
                "workers": {
                    "machineDeployments": [
                        {
                            "class": "default-worker",
                            "name": "md-0",
                            "replicas": 2,
                            "rollout": {
                                "strategy": {
                                    "type": "RollingUpdate",
                                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                                }
                            },
                            "variables": {"overrides": [{"name": "image", "value": "img:v2"}]},
                        }
                    ]
                },
            }
        },
    }
    store.create("", CLUSTERS, cluster)
    old_cluster = store.get("", CLUSTERS_V1BETA1, NS, NS)
    worker = old_cluster["spec"]["topology"]["workers"]["machineDeployments"][0]
    assert old_cluster["spec"]["topology"]["class"] == "sim-class"
    assert worker["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert worker["variables"]["overrides"] == [{"name": "image", "value": "img:v2"}]
    for obj in (old_ms, store.get("", MACHINESETS, NS, "workers-abc"), old_cluster):
        assert_valid_crd(obj)
    assert_valid_crd(store.get("", CLUSTERS, NS, NS))
    store.update("", CLUSTERS_V1BETA1, old_cluster)
    assert store.get("", CLUSTERS, NS, NS)["spec"] == cluster["spec"]


@pytest.mark.parametrize(
    ("rtype", "edit", "field"),
    [
        (MACHINEDEPLOYMENTS, lambda s: s.pop("selector"), "spec.selector"),
        (MACHINEDEPLOYMENTS, lambda s: s["rollout"]["strategy"].pop("type"), "type"),
        (
            MACHINEDEPLOYMENTS,
            lambda s: s["rollout"]["strategy"]["rollingUpdate"].update(maxSurge=True),
            "maxSurge",
        ),
        (
            MACHINEDEPLOYMENTS,
            lambda s: s["template"]["spec"]["infrastructureRef"].pop("apiGroup"),
            "apiGroup",
        ),
        (
            MACHINEDEPLOYMENTS,
            lambda s: s["template"]["spec"]["deletion"].update(nodeDrainTimeoutSeconds=-1),
            "nodeDrainTimeoutSeconds",
        ),
        (MACHINEDEPLOYMENTS, lambda s: s.update(deletion={"order": "Sometimes"}), "order"),
        (MACHINEDEPLOYMENTS_V1BETA1, lambda s: s.pop("template"), "spec.template"),
        (
            MACHINEDEPLOYMENTS_V1BETA1,
            lambda s: s["strategy"].update(type="Recreate"),
            "spec.strategy.type",
        ),
    ],
)
def test_what_the_upstream_crd_refuses_is_refused_with_422(
    store: Store, rtype: Any, edit: Any, field: str
) -> None:
    obj = v1beta2_deployment()
    if rtype is MACHINEDEPLOYMENTS_V1BETA1:
        store.create("", MACHINEDEPLOYMENTS, copy.deepcopy(obj))
        obj = store.get("", MACHINEDEPLOYMENTS_V1BETA1, NS, "workers")
        store.delete("", MACHINEDEPLOYMENTS, NS, "workers")
        obj["metadata"] = {"name": "workers", "namespace": NS}
    edit(obj["spec"])
    assert crd_problems(obj), "the upstream CRD refuses this object"
    with pytest.raises(ApiError) as err:
        store.create("", rtype, obj)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert field in err.value.message


# ----------------------------------------------------------------------------- over HTTP


def _get(sim: Simulator, path: str) -> tuple[int, Obj]:
    request = urllib.request.Request(
        sim.url + path, headers={"Authorization": "Bearer gitops-sim-admin-token"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def old_sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(
        clusters=("c1",), kubeconfig_out=tmp_path / "kubeconfig", capi_version="v1beta1"
    ) as sim:
        yield sim


def test_discovery_names_v1beta2_preferred(api_sim: Simulator) -> None:
    code, group = _get(api_sim, "/apis/cluster.x-k8s.io")
    assert code == 200
    assert [v["version"] for v in group["versions"]] == ["v1beta2", "v1beta1"]
    assert group["preferredVersion"]["version"] == "v1beta2"
    _, listed = _get(api_sim, "/apis/cluster.x-k8s.io/v1beta2")
    names = {r["name"] for r in listed["resources"]}
    assert {"machines", "machinesets", "machinedeployments", "clusters", "clusterclasses"} <= names
    _, old = _get(api_sim, "/apis/cluster.x-k8s.io/v1beta1")
    assert "clusterclasses" not in {r["name"] for r in old["resources"]}
    code, _ = _get(api_sim, "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/machines")
    assert code == 200


def test_an_old_management_cluster_serves_only_v1beta1(old_sim: Simulator) -> None:
    _, group = _get(old_sim, "/apis/cluster.x-k8s.io")
    assert [v["version"] for v in group["versions"]] == ["v1beta1"]
    assert group["preferredVersion"]["version"] == "v1beta1"
    _, groups = _get(old_sim, "/apis")
    (capi,) = [g for g in groups["groups"] if g["name"] == "cluster.x-k8s.io"]
    assert [v["version"] for v in capi["versions"]] == ["v1beta1"]
    code, _ = _get(old_sim, "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/machines")
    assert code == 404
    code, _ = _get(old_sim, "/apis/cluster.x-k8s.io/v1beta2")
    assert code == 404
    code, _ = _get(old_sim, "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments")
    assert code == 200


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
@pytest.mark.parametrize("kind", ["Machine", "MachineSet", "MachineDeployment", "Cluster"])
def test_tables_print_the_upstream_printer_columns(kind: str, version: str) -> None:
    from gitops.sim.api.resources import resource_for
    from gitops.sim.api.tables import table

    crd = yaml.load(
        (CRDS / f"cluster.x-k8s.io_{PLURALS[kind]}.yaml").read_text(), Loader=yaml.CSafeLoader
    )
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    upstream = [c for c in served["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    rtype = resource_for(f"cluster.x-k8s.io/{version}", kind)
    out = table(rtype, [], 0.0)
    ours = [c["name"] for c in out["columnDefinitions"] if c["priority"] == 0]
    if kind == "Cluster" and version == "v1beta2":
        # The control plane columns are left out: the simulator runs no control plane.
        upstream = [c for c in upstream if not c["name"].startswith("CP ")]
    assert ours == ["Name"] + [c["name"] for c in upstream]


def test_kubectl_gets_machine_deployments_with_their_columns(
    kubectl_sim: Simulator, tmp_path: Path
) -> None:
    kubectl_sim.store.create("", NAMESPACES, {"metadata": {"name": NS}})
    kubectl_sim.store.create("", MACHINEDEPLOYMENTS, v1beta2_deployment())
    base = ["kubectl", "--kubeconfig", kubectl_sim.kubeconfig_path, "--cache-dir", str(tmp_path)]

    def get(resource: str) -> str:
        run = subprocess.run(
            [*base, "get", resource, "-n", NS],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    header, row = get("machinedeployments").strip().splitlines()
    assert header.split()[:4] == ["NAME", "CLUSTER", "AVAILABLE", "DESIRED"]
    assert row.split()[:2] == ["workers", NS]
    assert "UPDATED" in get("machinedeployments.v1beta1.cluster.x-k8s.io").splitlines()[0]


def test_gitops_sim_serve_capi_version_v1beta1(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gitops.cli", "sim", "serve", "--fleet", str(EXAMPLE)),
            *("--kubeconfig-out", str(kubeconfig), "--capi-version", "v1beta1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "gitops sim: serving" in line, proc.stderr.read() if proc.stderr else ""
        api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        groups = k8s.ApisApi(api).get_api_versions().groups
        (capi,) = [g for g in groups if g.name == "cluster.x-k8s.io"]
        assert [v.version for v in capi.versions] == ["v1beta1"]
        custom = k8s.CustomObjectsApi(api)
        machines = custom.list_cluster_custom_object("cluster.x-k8s.io", "v1beta1", "machines")
        assert (
            machines["items"] and machines["items"][0]["apiVersion"] == "cluster.x-k8s.io/v1beta1"
        )
        with pytest.raises(k8s.ApiException) as err:
            custom.list_cluster_custom_object("cluster.x-k8s.io", "v1beta2", "machines")
        assert err.value.status == 404
        # Its infrastructure provider follows the v1beta1 contract: status.ready.
        sims = custom.list_cluster_custom_object(
            "infrastructure.cluster.x-k8s.io", "v1alpha1", "simmachines"
        )["items"]
        assert sims and all(s["status"].get("ready") is True for s in sims)
        assert not any("initialization" in s["status"] for s in sims)
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_the_official_client_patches_and_watches_either_version(
    api_sim: Simulator, mgmt: k8s.ApiClient
) -> None:
    api_sim.store.create("", NAMESPACES, {"metadata": {"name": NS}})
    custom = k8s.CustomObjectsApi(mgmt)
    custom.create_namespaced_custom_object(
        "cluster.x-k8s.io", "v1beta2", NS, "machinedeployments", v1beta2_deployment()
    )
    listed = custom.list_namespaced_custom_object(
        "cluster.x-k8s.io", "v1beta1", NS, "machinedeployments"
    )
    rv = listed["metadata"]["resourceVersion"]
    # An old client pauses the deployment with a merge patch of its own version.
    custom.patch_namespaced_custom_object(
        "cluster.x-k8s.io",
        "v1beta1",
        NS,
        "machinedeployments",
        "workers",
        {"spec": {"paused": True}},
    )
    stream = custom.list_namespaced_custom_object(
        "cluster.x-k8s.io",
        "v1beta1",
        NS,
        "machinedeployments",
        watch=True,
        resource_version=rv,
        timeout_seconds=1,
        _preload_content=False,
    )
    events = [json.loads(line) for line in stream.read().splitlines() if line.strip()]
    assert events and events[0]["type"] == "MODIFIED"
    seen = events[0]["object"]
    assert seen["apiVersion"] == "cluster.x-k8s.io/v1beta1"
    assert seen["spec"]["paused"] is True and "strategy" in seen["spec"]
    hub = custom.get_namespaced_custom_object(
        "cluster.x-k8s.io", "v1beta2", NS, "machinedeployments", "workers"
    )
    assert hub["spec"]["paused"] is True
    assert hub["spec"]["rollout"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
    # A bad write in either version is the CRD's 422.
    with pytest.raises(k8s.ApiException) as err:
        custom.patch_namespaced_custom_object(
            "cluster.x-k8s.io",
            "v1beta1",
            NS,
            "machinedeployments",
            "workers",
            {"spec": {"strategy": {"type": "Recreate"}}},
        )
    assert err.value.status == 422


def test_printer_columns_read_conditions_through_jsonpath_filters() -> None:
    from gitops.sim.api.tables import table

    md = v1beta2_deployment()
    md["metadata"]["creationTimestamp"] = STAMP
    md["status"] = {
        "replicas": 3,
        "upToDateReplicas": 2,
        "conditions": [
            {"type": "Paused", "status": "False"},
            {"type": "Available", "status": "True"},
        ],
    }
    out = table(MACHINEDEPLOYMENTS, [md], 0.0, include_object="None")
    names = [c["name"] for c in out["columnDefinitions"]]
    cells = dict(zip(names, out["rows"][0]["cells"], strict=False))
    assert cells["Name"] == "workers" and cells["Cluster"] == NS
    assert out["rows"][0]["cells"][names.index("Available")] == "True"  # the condition column
    assert cells["Up-to-date"] == 2 and cells["Paused"] == "False"


def test_an_empty_cluster_spec_is_refused_in_v1beta2_only(store: Store) -> None:
    empty = {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "spec": {}}
    empty["metadata"] = {"name": "c", "namespace": NS}
    assert crd_problems(empty)
    with pytest.raises(ApiError) as err:
        store.create("", CLUSTERS, empty)
    assert err.value.code == 422
    # v1beta1's CRD accepts it, and a request is validated in its own version.
    old = {**empty, "apiVersion": "cluster.x-k8s.io/v1beta1"}
    assert not crd_problems(old)
    store.create("", CLUSTERS_V1BETA1, old)
    assert store.get("", CLUSTERS_V1BETA1, NS, "c")["spec"] == {}
    bad_port = {**empty, "spec": {"controlPlaneEndpoint": {"host": "h", "port": 70000}}}
    assert crd_problems(bad_port)
    with pytest.raises(ApiError):
        store.create("", CLUSTERS, bad_port)
