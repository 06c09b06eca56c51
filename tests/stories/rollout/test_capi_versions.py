"""``gitops apply`` against management clusters of both Cluster API generations.

A real child process rolls an image bump across the three waves of the rollout fleet in
standalone mode: against a simulator serving only ``cluster.x-k8s.io/v1beta1`` (an old
management cluster, ``--capi-version v1beta1``) every Machine it writes is v1beta1, against the
default one (v1beta2 preferred, as Cluster API v1.11 and later) every one is v1beta2; each is
valid against the upstream CRD of that version, the wave order and the budgets hold (the
independent invariant checker reads the audit log), and the fleet converges.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from tests.adapters.rollout.conftest import Rollout
from tests.adapters.rollout.invariants import check, load_events
from tests.sim.crds import assert_valid_crd
from tests.stories.rollout.helpers import apply_argv, assert_converged

# Slow by nature: a whole rollout through ``gitops apply`` in a child process.
pytestmark = pytest.mark.slow

CAPI_PATH = "/apis/cluster.x-k8s.io/"


def _ours(r: Rollout) -> list[dict[str, Any]]:
    """The requests ``gitops apply`` made to Cluster API resources."""
    return [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request"
        and e["userAgent"].startswith("gitops/")
        and str(e.get("path", "")).startswith(CAPI_PATH)
    ]


def _span(events: list[dict[str, Any]], event: str, cluster: str) -> tuple[float, float]:
    times = [e["time"] for e in events if e.get("event") == event and e["cluster"] == cluster]
    assert times, f"no {event} in {cluster}"
    return min(times), max(times)


@pytest.mark.parametrize("capi_version", ["v1beta1", "v1beta2"])
def test_apply_rolls_standalone_machines_in_the_version_the_server_speaks(
    rollout: Callable[..., Rollout], capi_version: str
) -> None:
    r = rollout(initial="previous", capi_version=capi_version)
    done = subprocess.run(
        apply_argv(r, "--yes"),
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)

    # Every Cluster API request spoke the version discovery chose, and no other.
    requests = _ours(r)
    versions = {e["path"][len(CAPI_PATH) :].split("/")[0] for e in requests}
    assert versions == {capi_version}
    creates = [e for e in requests if e["verb"] == "create" and e["resource"] == "machines"]
    assert len(creates) >= 17  # every node of the fleet replaced (floors only)

    # The Machines it wrote, read back in that version, are valid against the upstream CRD.
    events = load_events(r.audit)
    created = [e for e in events if e.get("event") == "machine-created"]
    assert len(created) == 17
    for event in created:
        machine = r.management.custom.get_namespaced_custom_object(
            "cluster.x-k8s.io", capi_version, event["namespace"], "machines", event["machine"]
        )
        assert machine["apiVersion"] == f"cluster.x-k8s.io/{capi_version}"
        assert_valid_crd(machine)
        ref = machine["spec"]["infrastructureRef"]
        assert ("apiGroup" in ref) == (capi_version == "v1beta2")

    # Waves in order: each converged (its last old node gone) before the next one started.
    order = ("canary", "staging", "prod-a", "prod-b")
    for earlier, later in pairwise(order):
        assert (
            _span(events, "node-removed", earlier)[1] < _span(events, "machine-created", later)[0]
        )
