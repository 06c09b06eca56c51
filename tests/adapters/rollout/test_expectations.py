"""Machines the executor created but its cache has not shown yet are never created twice.

A plan made before the Machines watch delivers a new Machine counts its pool short. The executor
keeps expectations (as Kubernetes' ReplicaSet controller does): while a pool has a Machine in
flight or unobserved, nothing more is created there, and every other step goes on. Here the
Machines cache is frozen after its first listing, so no creation is ever observed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gitops.fleet import load
from gitops.fleet.wellknown import POOL_LABEL
from gitops.kube import actions
from gitops.plan import ScaleUp
from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.fleets import ClusterSpec, PoolSpec, Sims, write_fleet


def _machines(r: Rollout, pool: str) -> list[str]:
    api = r.management.custom
    items = api.list_namespaced_custom_object("cluster.x-k8s.io", "v1beta1", "c1", "machines")
    return sorted(
        m["metadata"]["name"]
        for m in items["items"]
        if (m["metadata"].get("labels") or {}).get(POOL_LABEL) == pool
    )


def test_a_pool_with_unobserved_machines_gets_no_more_until_they_show(tmp_path: Path) -> None:
    sims = Sims(tmp_path)
    try:
        root = write_fleet(
            tmp_path / "fleet", (ClusterSpec("c1", "first", (PoolSpec("workers", 2),)),)
        )
        r = sims.start(root, initial="declared")
        before = _machines(r, "workers")
        # The fleet now asks for three more nodes.
        (root / "c1.yaml").write_text(ClusterSpec("c1", "first", (PoolSpec("workers", 5),)).yaml())
        r = dataclasses.replace(r, fleet=load(root).with_revision("rev-2"))
        executor, observer = r.executor()
        # The memory of steps just done is the other guard against repeating them; without it,
        # only the expectations stand between a stale cache and a second set of Machines.
        executor.scheduler.done_ttl = 0.0
        observer.machines.stop()
        observer.machines.join(2)
        try:
            first = executor.reconcile().plan
            executor.close()
            planned = [a for a in first.actions() if isinstance(a, ScaleUp) and a.ready]
            assert planned, first.reason
            created = sorted(set(_machines(r, "workers")) - set(before))
            assert len(created) == len(planned)
            # Something else changes in the cluster: the next plan has a new id (and would
            # name new Machines), and it still sees the pool short.
            kube = observer.workload("c1")
            assert kube is not None
            generation = observer.generation()
            node = kube.core.list_node().items[0].metadata.name
            actions.patch_node(kube, node, labels={"touched": "yes"})
            observer.wait_changed(generation, 10)
            second = executor.reconcile().plan
            executor.close()
            assert second.id != first.id
            assert [a for a in second.actions() if isinstance(a, ScaleUp) and a.ready]
            assert sorted(set(_machines(r, "workers")) - set(before)) == created
        finally:
            executor.stopping.set()
            executor.close()
            observer.stop()
    finally:
        sims.stop()
