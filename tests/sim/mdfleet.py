"""A small fleet in MachineDeployment mode and a seeded world of it on virtual time.

A helper for the tests of the simulated Cluster API controllers: one cluster ``md-1`` with a
standalone pool, a pool rolled through the MachineDeployment ``workers`` and a pool that is
the topology worker ``md-0`` of the cluster's ClusterClass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.fleet import Fleet, load
from gitops.sim.api.store import Store
from gitops.sim.world.clock import ManualClock
from gitops.sim.world.world import World

Obj = dict[str, Any]
NS = "md-1"
FLEET = """\
apiVersion: fleet.gitops.io/v1alpha1
kind: Fleet
metadata: {name: md}
spec:
  images:
    img-1: {family: base, osImage: OS (v1), kernelVersion: 6.6.1, kubeletVersion: v1.31.0,
            containerRuntimeVersion: containerd://2.0.0, source: registry/img:v1}
    img-2: {family: base, osImage: OS (v2), kernelVersion: 6.12.1, kubeletVersion: v1.31.4,
            containerRuntimeVersion: containerd://2.0.2, source: registry/img:v2}
  rollout:
    waves:
      - {name: all, clusters: {matchLabels: {ring: all}}}
"""
CLUSTER = """\
apiVersion: fleet.gitops.io/v1alpha1
kind: Cluster
metadata: {name: md-1, labels: {ring: all}}
spec:
  kubernetesVersion: v1.31.4
  nodePools:
    - {name: standalone, image: img-1, replicas: 2, zones: [a, b]}
    - name: workers
      image: img-1
      replicas: @REPLICAS@
      zones: [a, b]
      machineDeployment: {name: workers}
      update: {maxSurge: @SURGE@, maxUnavailable: @UNAVAILABLE@}
    - name: batch
      image: img-1
      replicas: 2
      zones: [a]
      machineDeployment: {topology: md-0}
"""


def md_fleet(tmp_path: Path, *, replicas: int = 3, surge: int = 1, unavailable: int = 0) -> Fleet:
    root = tmp_path / "fleet"
    (root / "clusters").mkdir(parents=True, exist_ok=True)
    (root / "fleet.yaml").write_text(FLEET)
    text = CLUSTER.replace("@REPLICAS@", str(replicas)).replace("@SURGE@", str(surge))
    text = text.replace("@UNAVAILABLE@", str(unavailable))
    (root / "clusters" / "md-1.yaml").write_text(text)
    return load(root)


def md_world(tmp_path: Path, **pool: int) -> tuple[World, Store, ManualClock]:
    store = Store(seed=0)
    clock = ManualClock()
    world = World(
        store,
        md_fleet(tmp_path, **pool),
        seed=0,
        server_url="http://127.0.0.1:6443",
        clock=clock,
        heartbeats=False,
    )
    world.seed()
    return world, store, clock
