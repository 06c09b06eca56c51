"""Every Machine the simulator holds is one a real Cluster API management cluster would accept.

The upstream CRD is read in place from ``../shared/crds/cluster.x-k8s.io_machines.yaml`` (never
copied into the project); its v1beta1 ``openAPIV3Schema`` is turned into a JSON Schema (the
``x-kubernetes-*`` markers dropped, ``nullable`` and int-or-string spelled out, ``date-time``
checked by pattern) and every seeded Machine, every state physics moves a Machine through, and
the Machines the controller's provider builds are validated against it. Then a Machine missing
``spec.clusterName`` is shown to be refused with 422, in-process and over HTTP.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import MACHINES
from tests.sim.helpers import clone_like_a_machineset, example_fleet, make_world, new_machine

jsonschema = pytest.importorskip("jsonschema")

CRD = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "crds"
    / "cluster.x-k8s.io_machines.yaml"
)
DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
Obj = dict[str, Any]


def to_json_schema(node: Any) -> Any:
    """An OpenAPI v3 (structural, Kubernetes flavoured) schema as a draft-7 JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "nullable"):
            continue
        if key == "format":
            if value == "date-time":
                out["pattern"] = DATE_TIME
            continue  # int32/int64 and the like add nothing a type check misses here
        out[key] = (
            {k: to_json_schema(v) for k, v in value.items()}
            if key in ("properties", "patternProperties")
            else to_json_schema(value)
        )
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def machine_schema() -> Obj:
    # Read in place, never copied into the project; without it the proof fails, not skips.
    assert CRD.exists(), f"the upstream Machine CRD must be at {CRD} (shared/ beside the project)"
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["additionalProperties"] = False  # apiVersion, kind, metadata, spec, status only
    for sub in ("spec", "status"):
        _close(schema["properties"][sub])
    return schema


def _close(schema: Obj) -> None:
    """Unknown fields would be pruned by a real server: treat them as errors, so none slip by."""
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            _close(sub)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _close(schema["items"])


def problems(machine: Obj) -> list[str]:
    validator = jsonschema.Draft7Validator(machine_schema())
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(machine)
    ]


def assert_valid(machine: Obj) -> None:
    found = problems(machine)
    assert not found, f"Machine {machine['metadata']['name']} breaks the CRD schema: {found}"


def test_the_schema_check_is_not_vacuous() -> None:
    bad = new_machine("m")
    del bad["spec"]["clusterName"]
    bad["status"] = {"phase": "Exploded", "lastUpdated": "yesterday"}
    found = " ".join(problems(bad))
    assert "'clusterName' is a required property" in found
    assert "Exploded" in found and "yesterday" in found


def test_every_seeded_machine_validates_against_the_upstream_v1beta1_schema() -> None:
    _, store, _, _ = make_world(drift="kernel:2,unmanaged:1", initial="previous")
    machines = store.list("", MACHINES)[0]
    assert len(machines) == 122
    for machine in machines:
        assert_valid(machine)


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
                assert_valid(machine)
                phases.add(machine["status"]["phase"])
        if step == 10:
            store.delete("", MACHINES, "canary-eu-1", "m-template")
    assert phases == {"Provisioning", "Running", "Failed", "Pending", "Deleting"}


def test_the_providers_machines_validate_too() -> None:
    """The controller's provider builds Machines the same way in production: hold it to the CRD."""
    clusterapi = pytest.importorskip("gitops.providers.clusterapi")
    fleet = example_fleet()
    cluster = fleet.cluster("prod-eu-1")
    assert cluster is not None
    pool = cluster.pool("gpu-h100")
    assert pool is not None
    request = clusterapi.MachineRequest(
        cluster=cluster,
        pool=pool,
        image_name=pool.image,
        image=fleet.images[pool.image],
        zone=pool.zones[0],
        replaces="prod-eu-1-gpu-h100-abcde",
        plan_id="p1",
    )
    infra = {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1",
        "kind": "SimMachine",
        "metadata": {"name": "x", "namespace": cluster.namespace},
    }
    machine = clusterapi.ClusterAPIProvider.machine_for(None, request, infra, None)  # type: ignore[arg-type]
    assert_valid(machine)


def test_a_machine_missing_its_cluster_name_is_refused_with_422() -> None:
    _, store, _, _ = make_world()
    bad = new_machine("m-nameless")
    del bad["spec"]["clusterName"]
    assert problems(bad)  # the upstream schema refuses it ...
    with pytest.raises(ApiError) as err:  # ... and so does the simulator
        store.create("", MACHINES, bad)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.details["causes"][0]["field"] == "spec.clusterName"  # type: ignore[index]
    mistyped = new_machine("m-mistyped")
    mistyped["spec"]["bootstrap"] = "cloud-init"
    assert problems(mistyped)
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
        assert_valid(good)
