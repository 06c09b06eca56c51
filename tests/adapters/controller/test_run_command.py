"""`gitops run` as a process: it comes up, serves its endpoints, and stops on SIGTERM at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from gitops.sim import TOKEN, kubeconfig_text
from gitops.sim.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    LEASES,
    NAMESPACES,
    SERVICEACCOUNTS,
)
from tests.adapters.controller.conftest import Launch, World, until


def test_run_serves_and_stops_cleanly_on_repeated_signals(gitops_run: Launch) -> None:
    run = gitops_run("a")
    _, why = until(lambda: (r := run.get("/readyz"))[0] == 200 and r, 60, "readiness")
    assert "is in force" in why
    loaded = 'gitops_phase_result{phase="load",result="ok"} 1.0'
    _, metrics = until(lambda: (r := run.get("/metrics"))[0] == 200 and loaded in r[1] and r)
    assert "gitops_leader 1.0" in metrics
    for _ in range(5):  # an impatient operator: signals in a burst must neither deadlock it
        run.proc.send_signal(signal.SIGTERM)  # nor kill it before it has shut down cleanly
        time.sleep(0.01)
    assert run.proc.wait(timeout=30) == 0


# -- the namespaces of the Lease and of the rollout record ----------------------------------------


def test_run_creates_its_missing_namespace_as_apply_does(gitops_run: Launch, world: World) -> None:
    assert "gitops-system" not in _namespaces(world)
    run = gitops_run(
        "a", "--lease-namespace", "gitops-system", "--state-namespace", "gitops-system"
    )
    created = run.wait_log(lambda line: "Created namespace gitops-system" in line["message"])
    assert "Lease and the rollout record" in created["message"]
    until(lambda: run.get("/readyz")[0] == 200, 60, "readiness")
    assert "gitops-system" in _namespaces(world)
    lease = world.sim.object("", LEASES, "gitops-system", "gitops-controller")
    assert lease["spec"]["holderIdentity"] == run.identity
    assert run.terminate() == 0


def test_run_exits_1_at_start_when_it_may_not_create_its_namespace(
    gitops_run: Launch, world: World, tmp_path: Path
) -> None:
    # A ServiceAccount that may read namespaces but not create them, held to RBAC.
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ns-reader"},
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["namespaces"]}],
    }
    world.sim.store.create("", CLUSTERROLES, reader)
    world.sim.store.create(
        "",
        CLUSTERROLEBINDINGS,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ns-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "ns-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "gitops", "namespace": "default"}],
        },
    )
    world.sim.store.create(
        "",
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "gitops", "namespace": "default"},
        },
    )
    kubeconfig = tmp_path / "sa.kubeconfig"
    kubeconfig.write_text(
        kubeconfig_text(world.sim.url).replace(TOKEN, world.sim.mint_token("default", "gitops"))
    )
    run = gitops_run(
        "a",
        "--kubeconfig",
        str(kubeconfig),
        "--lease-namespace",
        "gitops-lease",
        "--state-namespace",
        "default",
    )
    assert run.proc.wait(timeout=60) == 1, run.text()[-3000:]
    message = run.text()
    assert "namespace gitops-lease (for the Lease) does not exist" in message
    assert "may not create it" in message
    assert "--lease-namespace" in message and "--state-namespace" in message
    assert "Traceback" not in message
    assert "gitops-lease" not in _namespaces(world)


def _namespaces(world: World) -> set[str]:
    return {ns["metadata"]["name"] for ns in world.sim.store.list("", NAMESPACES)[0]}


def test_readyz_says_why_a_replica_cannot_take_the_lease(
    gitops_run: Launch, world: World, tmp_path: Path
) -> None:
    # A ServiceAccount with no role at all: it cannot tell whether the namespace exists, so
    # start-up carries on, and the Lease requests are refused.
    world.sim.store.create(
        "",
        SERVICEACCOUNTS,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "nobody", "namespace": "default"},
        },
    )
    kubeconfig = tmp_path / "nobody.kubeconfig"
    kubeconfig.write_text(
        kubeconfig_text(world.sim.url).replace(TOKEN, world.sim.mint_token("default", "nobody"))
    )
    run = gitops_run("a", "--kubeconfig", str(kubeconfig))
    _, why = until(
        lambda: (r := run.get("/readyz"))[0] == 503 and "Lease" in r[1] and r, 60, "readyz"
    )
    assert "cannot take the Lease: " in why
    assert "leases" in why and "forbidden" in why.lower()
    assert run.terminate() == 0
