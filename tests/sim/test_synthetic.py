"""The synthetic fleet writer: what ``write_specs`` writes is what the real loader reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.fleet import load
from gitops.sim.world.synthetic import ClusterSpec, PoolSpec, WaveSpec, write_fleet, write_specs


def test_specs_written_are_the_fleet_the_loader_reads(tmp_path: Path) -> None:
    update = {"maxSurge": "25%", "maxUnavailable": 0, "soak": "2m"}
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    clusters = [
        ClusterSpec("c1", "canary", (PoolSpec("workers", 3, update=update),), paused=True),
        ClusterSpec(
            "c2",
            "prod",
            (
                PoolSpec("workers", 5),
                PoolSpec("gpu", 2, zones=("z-a",), labels={"gpu": "yes"}, taints=(taint,)),
                PoolSpec("md", 2, machine_deployment={"name": "md"}),
                PoolSpec("tp", 2, machine_deployment={"topology": "md-0"}),
            ),
            labels={"region": "r1"},
        ),
    ]
    waves = [WaveSpec("canary", "10m"), WaveSpec("prod", parallel=2)]
    root = write_specs(tmp_path / "fleet", clusters, waves, rollout={"maxFailedNodes": 4})

    assert sorted(p.name for p in (root / "clusters").iterdir()) == ["c1.yaml", "c2.yaml"]
    fleet = load(root)
    assert [(w.wave.name, w.clusters) for w in fleet.waves] == [
        ("canary", ("c1",)),
        ("prod", ("c2",)),
    ]
    assert fleet.document.spec.rollout.max_failed_nodes == 4
    assert fleet.document.spec.rollout.waves[1].max_clusters_in_parallel == 2
    c1, c2 = fleet.clusters
    assert c1.spec.paused and not c2.spec.paused
    assert c2.metadata.labels == {"ring": "prod", "region": "r1"}
    gpu = c2.spec.node_pools[1]
    assert (gpu.replicas, gpu.zones, gpu.labels) == (2, ("z-a",), {"gpu": "yes"})
    assert [(t.key, t.value, t.effect) for t in gpu.taints] == [("dedicated", "gpu", "NoSchedule")]
    assert c1.spec.node_pools[0].update.max_surge == "25%"
    md, tp = (p.machine_deployment for p in c2.spec.node_pools[2:])
    assert md is not None and md.name == "md"
    assert tp is not None and (tp.topology, tp.image_variable) == ("md-0", "image")


def test_cluster_files_beside_the_fleet_file(tmp_path: Path) -> None:
    clusters = [ClusterSpec("only", "first", (PoolSpec("workers", 1),))]
    root = write_specs(tmp_path, clusters, [WaveSpec("first")], cluster_dir="")
    assert (root / "only.yaml").is_file()
    assert [c.name for c in load(root).clusters] == ["only"]


@pytest.mark.parametrize(("clusters", "nodes", "pools"), [(1, 1, 1), (3, 25, 9), (2, 10, 4)])
def test_write_fleet_sizes(tmp_path: Path, clusters: int, nodes: int, pools: int) -> None:
    fleet = load(write_fleet(tmp_path, clusters, nodes))
    assert len(fleet.clusters) == clusters
    assert len(fleet.pools()) == pools
    assert sum(p.replicas for c in fleet.clusters for p in c.spec.node_pools) == clusters * nodes
