"""Helpers of the rollout stories that run ``gitops apply`` as a child process.

Shared by the ``apply`` command's stories and the crash tests; the simulator and fleets come from
the rollout adapter tests' fixtures (``tests/adapters/rollout/``).
"""

from __future__ import annotations

import sys

from gitops import drift
from gitops.kube.client import connect
from gitops.kube.observe import Observer
from gitops.sim.api.resources import RESOURCES
from tests.adapters.rollout.conftest import POLICY_SCALE, Rollout


def apply_argv(r: Rollout, *extra: str) -> list[str]:
    """The command line of ``gitops apply`` on ``r``'s fleet and simulator, at the tests' scale."""
    return [
        sys.executable,
        "-m",
        "gitops.cli",
        "apply",
        "--fleet",
        str(r.fleet_path),
        "--kubeconfig",
        r.sim.kubeconfig_path,
        "--time-scale",
        str(POLICY_SCALE),
        "--sync-timeout",
        "20",
        *extra,
    ]


def assert_converged(r: Rollout) -> None:
    """No pending change, hand-patched image or capacity gap is left anywhere in ``r``'s fleet."""
    observer = Observer(connect(r.sim.kubeconfig_path))
    observer.track((c.name, c.namespace) for c in r.fleet.clusters)
    assert observer.wait_synced(20)
    findings = drift.find(r.fleet, observer.inventory())
    observer.stop()
    assert [
        f for f in findings if f.kind in ("Outdated", "ImageMismatch", "CapacityMismatch")
    ] == []


def work_remains(r: Rollout) -> bool:
    """Whether a machine of the fleet before the rollout is still there and not being deleted.

    Read after a kill, from the simulator's store: with no controller alive nothing deletes a
    machine, so such a machine was still to be retired when the kill landed.
    """
    machines, _ = r.sim.store.list("", RESOURCES["machines.cluster.x-k8s.io"])
    return any(
        (m["spec"]["clusterName"], m["metadata"]["name"]) in r.snap.machine_pool
        and not m["metadata"].get("deletionTimestamp")
        for m in machines
    )
