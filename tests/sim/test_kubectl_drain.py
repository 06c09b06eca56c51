"""``kubectl drain`` against the simulator: blocked by a PodDisruptionBudget, then completing.

The canary's ``checkout`` Deployment (6 replicas, PDB ``maxUnavailable: 1``) has a node holding
two of its pods. kubectl evicts both at once: one goes, the other is refused with 429 until the
first one's replacement runs elsewhere; kubectl retries (every 5 s) and the drain completes.
Skipped only when kubectl is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gitops.sim import Simulator
from gitops.sim.api.resources import NODES, PODS
from tests.sim.helpers import CLUSTER, crowded_checkout

KUBECTL = shutil.which("kubectl")
EXAMPLE = Path(__file__).resolve().parents[2] / "fleet-repo-example"

pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"),
    pytest.mark.slow,
]


def test_kubectl_drain_is_blocked_by_the_pdb_then_completes_once_the_workload_moved(
    tmp_path: Path,
) -> None:
    with Simulator(
        EXAMPLE,
        kubeconfig_out=tmp_path / "kubeconfig",
        audit_log=tmp_path / "audit.jsonl",
        time_scale=0.05,
        tls=True,  # kubectl sends its token only over https
    ) as sim:
        node, (first, second) = crowded_checkout(sim.store)
        done = subprocess.run(
            [
                str(KUBECTL),
                "--kubeconfig",
                sim.workload_kubeconfig(CLUSTER),
                "--cache-dir",
                str(tmp_path / "cache"),
                "drain",
                node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=60s",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Cannot evict pod as it would violate the pod's disruption budget." in output
        assert f"pod/{first} evicted" in output and f"pod/{second} evicted" in output
        assert f"node/{node} drained" in output

        drained = sim.store.get(CLUSTER, NODES, None, node)
        assert drained["spec"]["unschedulable"] is True
        left = sim.store.list(CLUSTER, PODS, field_selector=f"spec.nodeName={node}")[0]
        assert {p["metadata"]["namespace"] for p in left} == {"kube-system"}  # the DaemonSet's
        sim.world.settle()  # type: ignore[union-attr]
        checkout = sim.store.list(CLUSTER, PODS, "shop", label_selector="app=checkout")[0]
        assert len(checkout) == 6
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"code":429' in audit  # the refusal went over the wire, as a real server's would
