"""Machines are refused (422) exactly when the upstream v1beta1 Machine CRD schema refuses them.

The CRD is read in place from ../shared/crds (never copied into the project); the simulator's
hand-written subset of it must agree with the full schema on every case here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import MACHINES, NAMESPACES, validate_machine
from gitops.sim.api.store import Store
from tests.conftest import ROOT
from tests.sim.conftest import machine

CRD = ROOT.parent / "shared" / "crds" / "cluster.x-k8s.io_machines.yaml"
# The upstream CRD is read in place (never copied into the project); CI lays shared/ beside the
# clone. Without it these tests fail rather than skip: a skipped proof proves nothing.

Obj = dict[str, Any]


def crd_schema() -> Obj:
    assert CRD.exists(), f"the upstream Machine CRD must be at {CRD} (shared/ beside the project)"
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return version["schema"]["openAPIV3Schema"]


def edit(fn: Callable[[Obj], None]) -> Obj:
    m = machine("m1")
    m["apiVersion"], m["kind"] = "cluster.x-k8s.io/v1beta1", "Machine"
    fn(m)
    return m


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def fn(m: Obj) -> None:
        *parents, last = path.split(".")
        cur = m
        for p in parents:
            cur = cur[p]
        if value is _DELETE:
            del cur[last]
        else:
            cur[last] = value

    return fn


_DELETE = object()
CASES = {
    "valid": edit(lambda m: None),
    "unknown field (pruned)": edit(_set("spec.somethingNew", "x")),
    "no spec": edit(_set("spec", _DELETE)),
    "no clusterName": edit(_set("spec.clusterName", _DELETE)),
    "no bootstrap": edit(_set("spec.bootstrap", _DELETE)),
    "no infrastructureRef": edit(_set("spec.infrastructureRef", _DELETE)),
    "empty clusterName": edit(_set("spec.clusterName", "")),
    "numeric version": edit(_set("spec.version", 131)),
    "ref as a string": edit(_set("spec.infrastructureRef", "sim/m1")),
    "ref name numeric": edit(_set("spec.infrastructureRef", {"kind": "SimMachine", "name": 7})),
    "long failureDomain": edit(_set("spec.failureDomain", "z" * 257)),
    "empty providerID": edit(_set("spec.providerID", "")),
    "bad taint effect": edit(
        _set("spec.taints", [{"key": "a", "effect": "Never", "propagation": "Always"}])
    ),
    "taint without propagation": edit(_set("spec.taints", [{"key": "a", "effect": "NoSchedule"}])),
    "good taint": edit(
        _set("spec.taints", [{"key": "a", "effect": "NoSchedule", "propagation": "Always"}])
    ),
    "gate without type": edit(_set("spec.readinessGates", [{"polarity": "Positive"}])),
    "bootstrap secret numeric": edit(_set("spec.bootstrap", {"dataSecretName": 1})),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_simulator_agrees_with_the_crd(case: str) -> None:
    obj = CASES[case]
    upstream_ok = not list(jsonschema.Draft7Validator(crd_schema()).iter_errors(obj))
    try:
        validate_machine("", copy.deepcopy(obj), None)
        ours_ok = True
    except ApiError as err:
        assert (err.code, err.reason) == (422, "Invalid")
        ours_ok = False
    assert ours_ok == upstream_ok, case


def test_the_store_applies_the_machine_schema_to_every_write() -> None:
    store = Store()
    store.create("", NAMESPACES, {"metadata": {"name": "default"}})
    store.create("", MACHINES, machine("m1"))
    with pytest.raises(ApiError) as info:
        store.mutate(
            "", MACHINES, "default", "m1", lambda o: {**o, "spec": {**o["spec"], "clusterName": 5}}
        )
    assert info.value.code == 422
    with pytest.raises(ApiError):
        store.create("", MACHINES, CASES["no bootstrap"])
