"""The controller in a pod's shoes: deploy/'s RBAC, a ServiceAccount token, https, in-cluster config.

The simulator serves https with a CA of its own; deploy/overlays/simulator (the base plus the
simulator's provider role) is applied to it with ``kubectl apply -k``; ``kubectl create token``
mints the ServiceAccount's token; ``gitops run`` starts as a pod would, with no kubeconfig,
``KUBERNETES_SERVICE_HOST``/``PORT`` and the token and CA in ``GITOPS_SERVICEACCOUNT_DIR``.
It rolls an image bump through the waves to convergence. The simulator's audit log then proves
the permissions suffice (no 401 or 403, every management request made as the ServiceAccount)
and are minimal (no wildcards, Secrets read-only, every granted verb used by the run or listed
in ``UNEXERCISED`` with the reason).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.gitrepo.mirror import Remote
from gitops.gitrepo.status import StatusWriter
from gitops.sim import Simulator
from gitops.sim.api import authz
from gitops.sim.api.audit import read
from gitops.sim.api.resources import resource_for
from tests.adapters.controller.conftest import commit, converged_at, set_image, until
from tests.adapters.rollout.conftest import POLICY_SCALE, SIM_SCALE, write_fleet
from tests.conftest import git
from tests.unit.deploy.manifests import SA_USER, SIMULATOR, kubectl, render

# Slow by nature: the tests start processes against the simulator, as the cluster would.
pytestmark = pytest.mark.slow

# Granted (verb, apiGroup, resource) that one image-bump rollout does not use, and why they
# are granted all the same. Empty: the run exercises every permission deploy/ grants.
UNEXERCISED: dict[tuple[str, str, str], str] = {}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind"}


def _remote(root: Path, source: Path) -> tuple[Path, Path]:
    """A bare remote on ``main`` and a working clone (as tests.conftest.fleet_remote, whose
    function scope a module-scoped run cannot use)."""
    bare, work = root / "fleet.git", source
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Initial fleet")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, work


def _apply(sim: Simulator, objects: list[dict[str, Any]]) -> None:
    binary = kubectl()
    if binary is not None:
        subprocess.run(
            [binary, "--kubeconfig", sim.kubeconfig_path, "apply", "-k", str(SIMULATOR)],
            check=True,
            capture_output=True,
        )
        return
    for obj in objects:
        sim.store.create("", resource_for(obj["apiVersion"], obj["kind"]), obj)


def _token(sim: Simulator) -> str:
    binary = kubectl()
    if binary is None:
        return sim.mint_token("gitops-system", "gitops-controller")
    return subprocess.run(
        [
            binary,
            f"--kubeconfig={sim.kubeconfig_path}",
            "--namespace=gitops-system",
            "create",
            "token",
            "gitops-controller",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One in-cluster rollout of an image bump; its audit log and the RBAC it ran under."""
    tmp = tmp_path_factory.mktemp("in-cluster")
    source = write_fleet(tmp / "work")
    set_image(source, "os-2", "os-1")
    bare, work = _remote(tmp, source)
    objects = render(SIMULATOR)
    audit = tmp / "audit.jsonl"
    with Simulator(
        work,
        initial="declared",
        time_scale=SIM_SCALE,
        audit_log=audit,
        kubeconfig_out=tmp / "admin" / "kubeconfig",
        tls=True,
    ) as sim:
        _apply(sim, objects)
        account = tmp / "serviceaccount"  # what the kubelet projects into a pod
        account.mkdir()
        (account / "token").write_text(_token(sim))
        (account / "ca.crt").write_text(Path(sim.ca_path).read_text())
        (account / "namespace").write_text("gitops-system")
        host, port = sim.https_url.removeprefix("https://").rsplit(":", 1)
        env = {
            **os.environ,
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "GITOPS_SERVICEACCOUNT_DIR": str(account),
        }
        env.pop("KUBECONFIG", None)
        log = (tmp / "controller.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitops.cli",
                "run",
                f"--repo=file://{bare}",
                "--interval=200ms",
                "--status-interval=200ms",
                "--http-addr=127.0.0.1:0",
                f"--cache-dir={tmp / 'cache'}",
                "--sharding",  # as deploy/ runs it
                f"--time-scale={POLICY_SCALE}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        status = StatusWriter(tmp / "status-read", Remote(f"file://{bare}"), branch="gitops/status")

        def at(revision: str) -> bool:  # every cluster Ready, every node on its pool's image
            assert proc.poll() is None, (tmp / "controller.log").read_text()[-3000:]
            return converged_at(status, revision)

        try:
            first = git(work, "rev-parse", "HEAD")
            until(lambda: at(first), 60, "the first revision in force")
            set_image(work, "os-1", "os-2")
            bumped = commit(work, "Roll the fleet to os-2")
            until(lambda: at(bumped), 90, "the image bump rolled out")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    yield {
        "objects": objects,
        "requests": [line for line in read(audit) if line["kind"] == "request"],
        "log": (tmp / "controller.log").read_text(),
    }


def test_the_controller_converges_in_cluster_with_only_deploys_rbac(run: dict[str, Any]) -> None:
    mine = [r for r in run["requests"] if r["userAgent"].startswith("gitops/")]
    management = [r for r in mine if r["cluster"] == ""]
    # Every management-cluster request went over the in-cluster path as the ServiceAccount ...
    assert management and {r["user"] for r in management} == {SA_USER}
    # ... and none was refused: deploy/'s RBAC is enough for a whole rollout.
    refused = [r for r in management if r["code"] in (401, 403)]
    assert refused == [], refused[:5]
    # The rollout did write through it: replacements created, old Machines deleted.
    verbs = {(r["verb"], r["resource"]) for r in management}
    assert {("create", "machines"), ("delete", "machines"), ("get", "secrets")} <= verbs


def _bindings_scope(objects: list[dict[str, Any]], user: authz.UserInfo) -> list[authz.Grant]:
    rbac = authz.Rbac.from_objects(objects)
    namespaces = {o["metadata"]["namespace"] for o in rbac.role_bindings}
    grants = list(authz.grants(rbac, user))
    for namespace in sorted(namespaces):
        grants.extend(g for g in authz.grants(rbac, user, namespace) if g.namespace)
    return grants


def test_deploys_rbac_is_minimal(run: dict[str, Any]) -> None:
    objects = run["objects"]
    rules = [
        rule
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
        for rule in o.get("rules") or []
    ]
    assert rules
    for rule in rules:
        for field in ("verbs", "apiGroups", "resources", "resourceNames"):
            assert not any("*" in value for value in rule.get(field) or []), rule
        assert not rule.get("nonResourceURLs"), rule
        if "secrets" in rule["resources"]:
            assert not set(rule["verbs"]) & WRITE_VERBS, rule
    user = authz.service_account_user("gitops-system", "gitops-controller")
    used = [
        authz.Attributes.from_audit(r)
        for r in run["requests"]
        if r["user"] == SA_USER and r["cluster"] == ""
    ]
    unused = []
    for grant in _bindings_scope(objects, user):
        rule = grant.rule
        for verb in rule["verbs"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    narrow = {
                        **rule,
                        "verbs": [verb],
                        "apiGroups": [group],
                        "resources": [resource],
                    }
                    hit = any(
                        authz.rule_allows(narrow, a)
                        and (not grant.namespace or a.namespace == grant.namespace)
                        for a in used
                    )
                    if not hit and (verb, group, resource) not in UNEXERCISED:
                        unused.append((grant.role, verb, group, resource))
    assert unused == [], f"granted but never used by the rollout: {unused}"
