"""The fleet simulator: a Kubernetes-API-compatible simulated fleet for the demo and the tests.

A tool layer in three parts: the API machinery (``gitops.sim.api``: store, HTTP handler, patch,
apply, schemas, selectors, tables, authz, audit, faults), the world (``gitops.sim.world``:
seeding, drift injection and the physics that plays a fleet's controllers, kubelets and
machines) and the forge stand-ins (``gitops.sim.forges``). ``Simulator`` (``simulator.py``)
composes an API server and a world. It serves a management cluster at ``/`` and each workload
cluster at ``/clusters/<name>/`` over HTTP, so that the official client and kubectl work
against it unchanged. The controller talks to it only over HTTP; only the CLI and the demo
import it (import-linter contracts in pyproject.toml).
"""

from gitops.sim.api.handler import TOKEN
from gitops.sim.simulator import Simulator, kubeconfig_text

__all__ = ["TOKEN", "Simulator", "kubeconfig_text"]
