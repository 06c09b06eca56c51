"""Every Machine the simulator holds is one a real Cluster API management cluster would accept.

The upstream CRD is read in place from ``../shared/crds/cluster.x-k8s.io_machines.yaml`` (never
copied into the project) by ``tests.sim.crds``, in the version each Machine's apiVersion names.
Every seeded Machine and every state physics moves a Machine through is validated against it
(the provider's Machines are held to it in ``tests/adapters/rollout/test_provider.py``). Then a
Machine missing ``spec.clusterName`` is shown to be refused with 422, in-process and over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import MACHINES
from tests.sim.crds import assert_valid_crd, crd_problems
from tests.sim.helpers import clone_like_a_machineset, make_world, new_machine


def test_the_schema_check_is_not_vacuous() -> None:
    bad = new_machine("m")
    del bad["spec"]["clusterName"]
    bad["status"] = {"phase": "Exploded", "lastUpdated": "yesterday"}
    found = " ".join(crd_problems(bad))
    assert "'clusterName' is a required property" in found
    assert "Exploded" in found and "yesterday" in found


def test_every_seeded_machine_validates_against_the_upstream_v1beta1_schema() -> None:
    _, store, _, _ = make_world(drift="kernel:2,unmanaged:1", initial="previous")
    machines = store.list("", MACHINES)[0]
    assert len(machines) == 122
    for machine in machines:
        assert_valid_crd(machine)


def test_machines_stay_valid_through_every_phase_physics_moves_them_through() -> None:
    _, store, clock, _ = make_world(boot_failure_rate=0.0)
    clone_like_a_machineset(store, "m-clone", "ghcr.io/siderolabs/installer:v1.9.2")
    store.create(
        "", MACHINES, new_machine("m-clone", infra_kind="SimMachine", infra_name="m-clone")
    )
    store.create("", MACHINES, new_machine("m-template"))
    store.create("", MACHINES, new_machine("m-aws", infra_kind="AWSMachine", infra_name="x"))
    store.create(
        "", MACHINES, new_machine("m-waiting", infra_kind="SimMachine", infra_name="absent")
    )
    phases: set[str] = set()
    for step in (0, 20, 10, 0):
        clock.advance(step)
        for machine in store.list("", MACHINES, "canary-eu-1")[0]:
            if machine["metadata"]["name"].startswith("m-"):
                assert_valid_crd(machine)
                phases.add(machine["status"]["phase"])
        if step == 10:
            store.delete("", MACHINES, "canary-eu-1", "m-template")
    assert phases == {"Provisioning", "Running", "Failed", "Pending", "Deleting"}


def test_a_machine_missing_its_cluster_name_is_refused_with_422() -> None:
    _, store, _, _ = make_world()
    bad = new_machine("m-nameless")
    del bad["spec"]["clusterName"]
    assert crd_problems(bad)  # the upstream schema refuses it ...
    with pytest.raises(ApiError) as err:  # ... and so does the simulator
        store.create("", MACHINES, bad)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.details["causes"][0]["field"] == "spec.clusterName"  # type: ignore[index]
    mistyped = new_machine("m-mistyped")
    mistyped["spec"]["bootstrap"] = "cloud-init"
    assert crd_problems(mistyped)
    with pytest.raises(ApiError) as err:
        store.create("", MACHINES, mistyped)
    assert err.value.code == 422


def test_the_refusal_reaches_the_official_client_as_422(tmp_path: Path) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from gitops.sim import Simulator

    with Simulator(
        Path(__file__).resolve().parents[2] / "fleet-repo-example", kubeconfig_out=tmp_path / "kc"
    ) as sim:
        api = kubernetes.client.CustomObjectsApi(
            kubernetes.config.new_client_from_config(sim.kubeconfig_path)
        )
        bad = new_machine("m-nameless")
        del bad["spec"]["clusterName"]
        with pytest.raises(kubernetes.client.ApiException) as err:
            api.create_namespaced_custom_object(
                "cluster.x-k8s.io", "v1beta1", "canary-eu-1", "machines", bad
            )
        assert err.value.status == 422
        assert "spec.clusterName: Required value" in err.value.body
        good = api.create_namespaced_custom_object(
            "cluster.x-k8s.io", "v1beta1", "canary-eu-1", "machines", new_machine("m-good")
        )
        assert_valid_crd(good)
