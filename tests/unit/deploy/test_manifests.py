"""deploy/ and the Dockerfile, read as an operator's tools read them.

Every kustomization renders (with kubectl when installed, else every file it references must
exist); every rendered object is valid against the upstream Kubernetes schemas (the
``kubernetes-validate`` package, offline); the Deployment holds the security settings the
"restricted" Pod Security Standard and issue #8 ask for and passes only flags ``gitops run``
has, each credential file inside a mounted Secret; the Dockerfile builds a non-root image on a
pinned base. The overlay example confines the fleet permissions to its namespaces.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from gitops.cli.run import run as run_command
from gitops.sim.api import authz
from tests.conftest import ROOT
from tests.unit.deploy.manifests import (
    BASE,
    DEPLOY,
    EXAMPLE,
    KUSTOMIZATIONS,
    kubectl,
    kustomization,
    load_documents,
    one,
    render,
)

KUBERNETES_VERSION = "1.31.0"
SERVICEMONITOR = DEPLOY / "optional" / "servicemonitor.yaml"


def _files(directory: Path) -> list[Path]:
    spec = kustomization(directory)
    entries = list(spec.get("resources") or []) + [
        p["path"] for p in spec.get("patches") or [] if "path" in p
    ]
    return [directory / entry for entry in entries]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_kustomization_renders(directory: Path) -> None:
    assert _files(directory), f"{directory}/kustomization.yaml names no file"
    for path in _files(directory):
        assert path.exists(), f"{directory}/kustomization.yaml names {path}, which is missing"
    if kubectl() is None:
        return  # the files it references exist; rendering needs kubectl's kustomize
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render(directory)}
    assert {
        ("Namespace", "gitops-system"),
        ("ServiceAccount", "gitops-controller"),
        ("Deployment", "gitops-controller"),
        ("Service", "gitops-controller"),
        ("ConfigMap", "gitops-controller"),
        ("Role", "gitops-controller"),
        ("ClusterRole", "gitops-controller-fleet"),
    } <= kinds


def test_the_servicemonitor_stays_out_of_the_base() -> None:
    assert "servicemonitor" not in (BASE / "kustomization.yaml").read_text().lower()
    monitor = load_documents(SERVICEMONITOR.read_text())[0]
    service = one(render(BASE), "Service", "gitops-controller")
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_rendered_objects_are_valid_against_the_upstream_schemas(directory: Path) -> None:
    if kubectl() is None and kustomization(directory).get("patches"):
        objects = [
            d for p in _files(directory) if p.is_file() for d in load_documents(p.read_text())
        ]
    else:
        objects = render(directory)
    assert objects
    for obj in objects:
        if obj["kind"] == "Deployment" and "selector" not in obj.get("spec", {}):
            continue  # a strategic-merge patch file (only without kubectl): not an object
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schema_validation_catches_a_mistake() -> None:
    deployment = one(render(BASE), "Deployment", "gitops-controller")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = (
        "yes"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(one(objects, "Deployment", "gitops-controller")["spec"]["template"]["spec"])


def test_the_deployment_is_locked_down_and_highly_available() -> None:
    objects = render(BASE)
    deployment = one(objects, "Deployment", "gitops-controller")
    assert deployment["spec"]["replicas"] == 3
    pod = _pod(objects)
    (controller,) = pod["containers"]
    # the replicas share the clusters, each named by its pod in its Leases
    assert "--sharding" in controller["args"]
    env = {e["name"]: e for e in controller["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod["serviceAccountName"] == "gitops-controller"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/tmp", _flag(container, "--cache-dir")):
        assert "emptyDir" in volumes[mounts[path]], path
    service = one(objects, "Service", "gitops-controller")
    assert {p["name"] for p in service["spec"]["ports"]} == {"webhook", "metrics", "dashboard"}
    assert service["spec"]["type"] == "ClusterIP"  # the dashboard only by port-forward
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}
    assert container["ports"][0]["containerPort"] == int(
        _flag(container, "--http-addr").split(":")[1]
    )


def _flag(container: dict[str, Any], name: str) -> str:
    for arg in container["args"]:
        if arg.startswith(name + "="):
            return str(arg.split("=", 1)[1])
    raise AssertionError(f"{name} not passed")


def _options() -> set[str]:
    return {opt for p in run_command.params if isinstance(p, click.Option) for opt in p.opts}


FILE_FLAGS = ("--token-file", "--ssh-key", "--known-hosts", "--webhook-secret-file")


@pytest.mark.parametrize("directory", [BASE, EXAMPLE], ids=lambda p: p.name)
def test_the_container_passes_only_real_flags_and_mounted_files(directory: Path) -> None:
    if kubectl() is None and directory is EXAMPLE:
        directory = BASE  # the example's args are a patch: rendering it needs kubectl
    objects = render(directory)
    pod = _pod(objects)
    (container,) = pod["containers"]
    assert container["args"][0] == "run"
    options = _options()
    env = {e["name"] for e in container["env"]}
    config = one(objects, "ConfigMap", "gitops-controller")["data"]
    assert container["args"][1:] and container["env"]  # the loops below have flags and env
    for arg in container["args"][1:]:
        flag = arg.split("=", 1)[0]
        assert flag in options, f"gitops run has no {flag}"
        for var in re.findall(r"\$\((\w+)\)", arg):
            assert var in env, f"{arg} expands ${var}, which the container does not define"
    for e in container["env"]:
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            assert ref["key"] in config, f"ConfigMap gitops-controller has no {ref['key']}"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    used = 0
    for flag in FILE_FLAGS:
        try:
            path = Path(_flag(container, flag))
        except AssertionError:
            continue
        used += 1
        volume = volumes[mounts[str(path.parent)]]
        assert "secret" in volume, f"{flag} must come from a Secret"
    assert used >= 2  # a git credential and the webhook secret


def test_the_forge_token_secret_is_mounted_for_the_forge_flag() -> None:
    pod = _pod(render(BASE))
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    forge = next(v for v in pod["volumes"] if v["name"] == "forge-token")
    assert forge["secret"]["secretName"] == "gitops-forge" and forge["secret"]["optional"] is True
    # the example overlay names the file the flag will read, where the Secret is mounted
    assert (
        f"--forge-token-file={mounts['forge-token']}/token"
        in (EXAMPLE / "deployment.yaml").read_text()
    )


def test_the_example_overlay_confines_fleet_permissions_to_its_namespaces() -> None:
    objects = render(EXAMPLE) if kubectl() else None
    if objects is None:  # without kubectl: the base plus the overlay's RBAC files, patch by hand
        objects = [
            o
            for o in render(BASE)
            if not (
                o["kind"] == "ClusterRoleBinding"
                and o["metadata"]["name"] == "gitops-controller-fleet"
            )
        ]
        for name in ("provider-rbac.yaml", "fleet-namespaces-rbac.yaml"):
            objects += load_documents((EXAMPLE / name).read_text())
    rbac = authz.Rbac.from_objects(objects)
    user = authz.service_account_user("gitops-system", "gitops-controller")
    create = authz.Attributes("create", "cluster.x-k8s.io", "machines", namespace="prod-eu-1")
    assert authz.allows(rbac, user, create)
    assert not authz.allows(
        rbac,
        user,
        authz.Attributes("create", "cluster.x-k8s.io", "machines", namespace="kube-system"),
    )
    kubeconfig = authz.Attributes(
        "get", "", "secrets", namespace="prod-eu-1", name="prod-eu-1-kubeconfig"
    )
    assert authz.allows(rbac, user, kubeconfig)
    assert not authz.allows(
        rbac, user, authz.Attributes("get", "", "secrets", namespace="gitops-system", name="x")
    )
    clone = authz.Attributes(
        "create", "infrastructure.cluster.x-k8s.io", "awsmachines", namespace="prod-eu-1"
    )
    assert authz.allows(rbac, user, clone)  # the provider role, aggregated
    assert authz.allows(rbac, user, authz.Attributes("watch", "cluster.x-k8s.io", "machines"))


# --------------------------------------------------------------------------- the image


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_the_image_is_multi_stage_pinned_and_runs_as_a_non_root_number() -> None:
    steps = _dockerfile()
    args = dict(rest.split("=", 1) for ins, rest in steps if ins == "ARG" and "=" in rest)
    bases = [rest.split()[0] for ins, rest in steps if ins == "FROM"]
    assert len(bases) >= 2, "multi-stage: build stage and runtime stage"
    for base in bases:
        image = args.get(base.strip("${}"), base)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
    final = len(steps) - 1 - [ins for ins, _ in steps][::-1].index("FROM")
    runtime = steps[final:]
    (user,) = [rest for ins, rest in runtime if ins == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    pod = _pod(render(BASE))
    assert pod["securityContext"]["runAsUser"] == int(uid)  # the manifest and image agree
    installs = " ".join(rest for ins, rest in runtime if ins == "RUN")
    packages = {
        word.split("=")[0]: word
        for word in shlex.split(installs)
        if re.match(r"^[a-z0-9][a-z0-9.+-]*=", word)
    }
    assert {"git", "openssh-client"} <= set(packages)
    for word in packages.values():
        assert re.fullmatch(r"[a-z0-9.+-]+=\S+", word), f"unpinned package {word}"
    entrypoint = next(yaml.safe_load(rest) for ins, rest in runtime if ins == "ENTRYPOINT")
    assert Path(entrypoint[0]).name in _scripts()


def _scripts() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("[", 1)[0]
    return {line.split("=")[0].strip() for line in section.splitlines() if "=" in line}


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "the context is an allowlist"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [
        rest for ins, rest in _dockerfile() if ins == "COPY" and not rest.startswith("--from")
    ]
    assert copies, "the Dockerfile copies nothing from the build context"
    for ins, rest in _dockerfile():
        if ins == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert source in allowed, f"COPY {source} is excluded by .dockerignore"
                assert (ROOT / source).exists(), source
