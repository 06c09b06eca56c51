"""Reading the deploy/ manifests as the tests need them: rendered, parsed, applied.

``render`` uses ``kubectl kustomize`` when kubectl is installed (the real renderer, also what
an operator runs); without it, a small reader follows ``resources`` and sets ``namespace`` as
kustomize would, which is exact for kustomizations without patches (the simulator overlay).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
SIMULATOR = DEPLOY / "overlays" / "simulator"
EXAMPLE = DEPLOY / "overlays" / "example"
KUSTOMIZATIONS = (BASE, SIMULATOR, EXAMPLE)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
SA_USER = "system:serviceaccount:gitops-system:gitops-controller"

Obj = dict[str, Any]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def load_documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomization(directory: Path) -> Obj:
    return dict(yaml.safe_load((directory / "kustomization.yaml").read_text()))


def _read(directory: Path) -> list[Obj]:
    spec = kustomization(directory)
    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        path = directory / entry
        objects.extend(_read(path) if path.is_dir() else load_documents(path.read_text()))
    namespace = spec.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    return objects


def render(directory: Path) -> list[Obj]:
    """The objects of a kustomization, rendered by kubectl when present."""
    binary = kubectl()
    if binary is None:
        assert not kustomization(directory).get("patches"), "patches need kubectl to render"
        return _read(directory)
    out = subprocess.run(
        [binary, "kustomize", str(directory)], check=True, capture_output=True, text=True
    ).stdout
    return load_documents(out)


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]
