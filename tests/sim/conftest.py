"""Fixtures for the simulator's API machinery: a running simulator with no fleet, and clients.

The simulator is started in-process on a free port (``Simulator(clusters=("c1",))``): a
management cluster and one workload cluster ``c1``, each with the standard namespaces, and
objects created directly through the store so that each test states exactly what it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gitops.sim import Simulator
from gitops.sim.api.resources import MACHINES, NODES, PODS
from gitops.sim.api.store import Store

Obj = dict[str, Any]


@pytest.fixture
def api_sim(tmp_path: Path) -> Iterator[Simulator]:
    """A running simulator without a fleet: management cluster "" and workload cluster c1."""
    with Simulator(
        clusters=("c1",),
        kubeconfig_out=tmp_path / "kubeconfig",
        audit_log=tmp_path / "audit.jsonl",
    ) as sim:
        yield sim


@pytest.fixture
def kubectl_sim(tmp_path: Path) -> Iterator[Simulator]:
    """As ``api_sim``, with https: kubectl sends its token only over https (and a request
    without one is 401), so its kubeconfigs point at the TLS side."""
    with Simulator(
        clusters=("c1",),
        kubeconfig_out=tmp_path / "kubeconfig",
        audit_log=tmp_path / "audit.jsonl",
        tls=True,
    ) as sim:
        yield sim


def api_client(kubeconfig: str) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture
def mgmt(api_sim: Simulator) -> Iterator[k8s.ApiClient]:
    """The official client on the management cluster."""
    api = api_client(api_sim.kubeconfig_path)
    yield api
    api.close()


@pytest.fixture
def c1(api_sim: Simulator) -> Iterator[k8s.ApiClient]:
    """The official client on workload cluster c1 (``/clusters/c1``)."""
    api = api_client(api_sim.workload_kubeconfig("c1"))
    yield api
    api.close()


def node(name: str, *, ready: bool = True, labels: dict[str, str] | None = None) -> Obj:
    return {
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": f"boot-{name}",
                "containerRuntimeVersion": "containerd://2.0.1",
                "kernelVersion": "6.12.6-talos",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.31.4",
                "machineID": f"machine-{name}",
                "operatingSystem": "linux",
                "osImage": "Talos (v1.9.2)",
                "systemUUID": f"uuid-{name}",
            },
        },
    }


def pod(name: str, node_name: str = "", *, namespace: str = "default", **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"},
    }


def machine(name: str, *, namespace: str = "default", cluster: str = "c1") -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterName": cluster,
            "bootstrap": {"dataSecretName": f"{name}-bootstrap"},
            "infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
                "kind": "SimMachine",
                "name": name,
            },
            "version": "v1.31.4",
            "providerID": f"sim://{cluster}/{name}",
        },
        "status": {"phase": "Running", "nodeRef": {"kind": "Node", "name": name}},
    }


@pytest.fixture
def seed_objects() -> Callable[[Store], None]:
    """Two nodes and two pods in c1, one Machine in the management cluster."""

    def seed(store: Store) -> None:
        store.create("c1", NODES, node("n1", labels={"node-role.kubernetes.io/worker": ""}))
        store.create("c1", NODES, node("n2", ready=False))
        store.create("c1", PODS, pod("web-1", "n1", app="web"))
        store.create("c1", PODS, pod("db-1", "n2", app="db"))
        store.create("", MACHINES, machine("m1"))

    return seed
