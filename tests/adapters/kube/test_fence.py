"""The per-cluster fence record on the simulator: take bumps the epoch, a stale holder is refused."""

from __future__ import annotations

import pytest

from gitops.kube.actions import read_config_map, write_config_map
from gitops.kube.client import Kube
from gitops.kube.errors import Conflict
from gitops.kube.fence import ClusterFence, Fenced

NS = "kube-system"


def test_take_creates_then_bumps_the_epoch_and_labels_the_record(kube: Kube) -> None:
    a, b = ClusterFence(kube, NS, "a"), ClusterFence(kube, NS, "b")
    assert a.take("edge-1") == 1
    assert b.take("edge-1") == 2
    cm = read_config_map(kube, NS, "gitops-cluster-edge-1")
    assert cm.data["epoch"] == "2" and cm.data["owner"] == "b" and cm.data["cluster"] == "edge-1"
    raw = kube.core.read_namespaced_config_map("gitops-cluster-edge-1", NS)
    assert raw.metadata.labels["gitops.io/cluster-state"] == "true"
    assert b.held("edge-1") == 2


def test_a_stale_holder_is_refused_on_check_and_write(kube: Kube) -> None:
    a, b = ClusterFence(kube, NS, "a"), ClusterFence(kube, NS, "b")
    a.take("edge-1")
    a.write("edge-1", "progress.json", "{}")
    a.check("edge-1")
    b.take("edge-1")
    with pytest.raises(Fenced, match="owner is b at epoch 2"):
        a.check("edge-1")
    with pytest.raises(Fenced, match=r"refusing to write progress\.json"):
        a.write("edge-1", "progress.json", '{"step": 9}')
    assert a.refusals == 2
    assert read_config_map(kube, NS, "gitops-cluster-edge-1").data["progress.json"] == "{}"


def test_write_keeps_other_keys_and_retries_a_conflict_while_still_ours(kube: Kube) -> None:
    a = ClusterFence(kube, NS, "a")
    a.take("edge-1")
    a.write("edge-1", "progress.json", "one")
    # another writer of ours (same owner, same epoch) touches the record in between
    cm = read_config_map(kube, NS, "gitops-cluster-edge-1")
    write_config_map(kube, NS, cm.name, {**cm.data, "note": "x"}, cm.resource_version)
    a.write("edge-1", "progress.json", "two")
    data = read_config_map(kube, NS, "gitops-cluster-edge-1").data
    assert data["progress.json"] == "two" and data["note"] == "x" and data["epoch"] == "1"


def test_forget_drops_the_hold(kube: Kube) -> None:
    a = ClusterFence(kube, NS, "a")
    a.take("edge-1")
    a.forget("edge-1")
    assert a.held("edge-1") is None
    with pytest.raises(Fenced, match="never took"):
        a.check("edge-1")


def test_the_simulator_refuses_a_stale_resource_version_configmap_update(kube: Kube) -> None:
    rv = write_config_map(kube, NS, "probe", {"k": "1"}, None)
    write_config_map(kube, NS, "probe", {"k": "2"}, rv)
    with pytest.raises(Conflict):
        write_config_map(kube, NS, "probe", {"k": "3"}, rv)
