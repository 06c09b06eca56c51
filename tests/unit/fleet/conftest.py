"""Builders for small fleet repositories written into a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FLEET = """\
apiVersion: fleet.gitops.io/v1alpha1
kind: Fleet
metadata:
  name: test
spec:
  images:
    img-1:
      family: base
      osImage: OS (v1)
      kernelVersion: 6.6.1
      kubeletVersion: v1.31.0
      containerRuntimeVersion: containerd://2.0.0
      source: registry/img:v1
    img-2:
      family: base
      osImage: OS (v2)
      kernelVersion: 6.12.1
      kubeletVersion: v1.31.4
      containerRuntimeVersion: containerd://2.0.2
      source: registry/img:v2
  rollout:
    waves:
      - name: canary
        clusters: {matchLabels: {ring: canary}}
      - name: prod
        clusters: {matchLabels: {ring: prod}}
"""


def cluster(name: str, ring: str = "prod", pools: str | None = None) -> str:
    """A Cluster document; ``pools`` replaces the node pool list (indented by four spaces)."""
    pools = pools or (
        "    - name: workers\n      image: img-2\n      replicas: 3\n      zones: [a, b]\n"
    )
    return (
        "apiVersion: fleet.gitops.io/v1alpha1\n"
        "kind: Cluster\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  labels: {{ring: {ring}}}\n"
        "spec:\n"
        "  kubernetesVersion: v1.31.4\n"
        "  nodePools:\n" + pools
    )


def base_files() -> dict[str, str | bytes]:
    return {
        "fleet.yaml": FLEET,
        "clusters/canary.yaml": cluster("canary", "canary"),
        "clusters/prod.yaml": cluster("prod", "prod"),
    }


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Write ``base_files()`` updated with ``files`` (None deletes a file) and return the root."""

    def make(files: dict[str, str | bytes | None] | None = None) -> Path:
        content: dict[str, str | bytes | None] = {**base_files(), **(files or {})}
        for rel, text in content.items():
            if text is None:
                continue
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text, encoding="utf-8")
        return tmp_path

    return make
