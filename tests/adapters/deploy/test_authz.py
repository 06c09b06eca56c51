"""RBAC in the simulator (gitops/sim/api/authz.py): the rules as the RBAC authorizer reads them,
and the server answering 401 and 403 the way the kube-apiserver does.

The pure evaluation is table-driven; the server's side runs a simulator (no fleet, https) and
talks to it with the official client holding a ServiceAccount token, as a pod would.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from gitops.sim import TOKEN, Simulator
from gitops.sim.api import authz
from gitops.sim.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CONFIGMAPS,
    NAMESPACES,
    PODS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
)
from gitops.sim.world import seed
from tests.unit.deploy.manifests import kubectl

A = authz.Attributes
SA = authz.service_account_user("ops", "bot")


def rule(verbs: list[str], groups: list[str], resources: list[str], **more: Any) -> dict:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **more}


@pytest.mark.parametrize(
    ("the_rule", "attrs", "allowed"),
    [
        (rule(["get"], [""], ["pods"]), A("get", "", "pods", name="p"), True),
        (rule(["get"], [""], ["pods"]), A("list", "", "pods"), False),
        (rule(["*"], [""], ["pods"]), A("deletecollection", "", "pods"), True),
        (rule(["get"], ["*"], ["machines"]), A("get", "cluster.x-k8s.io", "machines"), True),
        (rule(["get"], [""], ["machines"]), A("get", "cluster.x-k8s.io", "machines"), False),
        # subresources: named exactly, or every resource's with "*/sub", or everything with "*"
        (rule(["create"], [""], ["pods"]), A("create", "", "pods", "eviction", "ns", "p"), False),
        (rule(["create"], [""], ["pods/eviction"]), A("create", "", "pods", "eviction"), True),
        (rule(["create"], [""], ["pods/eviction"]), A("create", "", "pods"), False),
        (
            rule(["patch"], ["cluster.x-k8s.io"], ["*/status"]),
            A("patch", "cluster.x-k8s.io", "machines", "status", "ns", "m"),
            True,
        ),
        (
            rule(["patch"], ["cluster.x-k8s.io"], ["*/status"]),
            A("patch", "cluster.x-k8s.io", "machines", "", "ns", "m"),
            False,
        ),
        (
            rule(["patch"], ["cluster.x-k8s.io"], ["machines/*"]),  # not a wildcard upstream
            A("patch", "cluster.x-k8s.io", "machines", "status", "ns", "m"),
            False,
        ),
        (rule(["get"], [""], ["*"]), A("get", "", "pods", "status", "ns", "p"), True),
        # resourceNames: only requests that name one of them
        (
            rule(["get"], [""], ["secrets"], resourceNames=["a"]),
            A("get", "", "secrets", name="a"),
            True,
        ),
        (
            rule(["get"], [""], ["secrets"], resourceNames=["a"]),
            A("get", "", "secrets", name="b"),
            False,
        ),
        (rule(["list"], [""], ["secrets"], resourceNames=["a"]), A("list", "", "secrets"), False),
        (
            rule(["create"], [""], ["secrets"], resourceNames=["a"]),
            A("create", "", "secrets"),
            False,
        ),
        (rule(["get"], [""], ["pods"]), A("get", path="/version"), False),  # resource rules only
    ],
)
def test_a_rule_allows_what_the_rbac_authorizer_allows(
    the_rule: dict, attrs: authz.Attributes, allowed: bool
) -> None:
    assert authz.rule_allows(the_rule, attrs) is allowed


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(
    kind: str, name: str, role_kind: str, role: str, subjects: list[dict], ns: str = ""
) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, ns or None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def _role(kind: str, name: str, rules: list[dict], ns: str = "", **extra: Any) -> dict:
    labels = extra.pop("labels", {})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, ns or None, **labels),
        "rules": rules,
        **extra,
    }


BOT = {"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}
MACHINE_WRITER = _role(
    "ClusterRole", "writer", [rule(["create"], ["cluster.x-k8s.io"], ["machines"])]
)
CREATE_MACHINE = A("create", "cluster.x-k8s.io", "machines", namespace="fleet-a")


def test_a_rolebinding_to_a_clusterrole_grants_only_inside_its_namespace() -> None:
    rbac = authz.Rbac.from_objects(
        [MACHINE_WRITER, _binding("RoleBinding", "b", "ClusterRole", "writer", [BOT], "fleet-a")]
    )
    assert authz.allows(rbac, SA, CREATE_MACHINE)
    assert not authz.allows(
        rbac, SA, A("create", "cluster.x-k8s.io", "machines", namespace="fleet-b")
    )
    assert not authz.allows(rbac, SA, A("create", "cluster.x-k8s.io", "machines"))  # cluster scope


def test_a_clusterrolebinding_grants_everywhere_and_a_role_stays_in_its_namespace() -> None:
    rbac = authz.Rbac.from_objects(
        [
            MACHINE_WRITER,
            _binding("ClusterRoleBinding", "b", "ClusterRole", "writer", [BOT]),
            _role("Role", "cm", [rule(["get"], [""], ["configmaps"])], "ops"),
            _binding(
                "RoleBinding",
                "cm",
                "Role",
                "cm",
                [{"kind": "ServiceAccount", "name": "bot"}],
                "ops",
            ),
        ]
    )
    assert authz.allows(rbac, SA, A("create", "cluster.x-k8s.io", "machines", namespace="any"))
    assert authz.allows(rbac, SA, A("create", "cluster.x-k8s.io", "machines"))
    # A ServiceAccount subject without a namespace means the RoleBinding's own namespace.
    assert authz.allows(rbac, SA, A("get", "", "configmaps", namespace="ops", name="x"))
    assert not authz.allows(rbac, SA, A("get", "", "configmaps", namespace="other", name="x"))


@pytest.mark.parametrize(
    ("subject", "allowed"),
    [
        (BOT, True),
        ({"kind": "ServiceAccount", "name": "bot", "namespace": "elsewhere"}, False),
        ({"kind": "User", "name": "system:serviceaccount:ops:bot"}, True),
        ({"kind": "Group", "name": "system:serviceaccounts:ops"}, True),
        ({"kind": "Group", "name": "system:serviceaccounts"}, True),
        ({"kind": "Group", "name": "system:serviceaccounts:other"}, False),
    ],
)
def test_binding_subjects_match_as_upstream(subject: dict, allowed: bool) -> None:
    rbac = authz.Rbac.from_objects(
        [MACHINE_WRITER, _binding("ClusterRoleBinding", "b", "ClusterRole", "writer", [subject])]
    )
    assert authz.allows(rbac, SA, CREATE_MACHINE) is allowed


def test_an_aggregated_clusterrole_has_the_rules_of_the_roles_it_selects() -> None:
    aggregated = _role(
        "ClusterRole",
        "agg",
        [rule(["delete"], [""], ["nodes"])],  # replaced by the aggregation, as upstream
        aggregationRule={
            "clusterRoleSelectors": [
                {"matchLabels": {"agg": "true"}},
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["infra"]}]},
            ]
        },
    )
    by_label = _role(
        "ClusterRole", "one", [rule(["get"], ["x"], ["templates"])], labels={"agg": "true"}
    )
    by_expression = _role(
        "ClusterRole", "two", [rule(["create"], ["x"], ["clones"])], labels={"tier": "infra"}
    )
    unselected = _role(
        "ClusterRole", "three", [rule(["delete"], ["x"], ["clones"])], labels={"agg": "no"}
    )
    rbac = authz.Rbac.from_objects(
        [
            aggregated,
            by_label,
            by_expression,
            unselected,
            _binding("ClusterRoleBinding", "b", "ClusterRole", "agg", [BOT]),
        ]
    )
    assert authz.allows(rbac, SA, A("get", "x", "templates", namespace="n", name="t"))
    assert authz.allows(rbac, SA, A("create", "x", "clones", namespace="n"))
    assert not authz.allows(rbac, SA, A("delete", "x", "clones", namespace="n", name="c"))
    assert not authz.allows(rbac, SA, A("delete", "", "nodes", name="n1"))


def test_privileged_users_and_non_resource_requests_are_not_held_to_rbac() -> None:
    empty = authz.Rbac()
    assert authz.allows(empty, authz.UserInfo("sim-admin", privileged=True), CREATE_MACHINE)
    assert authz.allows(empty, SA, A("get", path="/apis"))
    assert not authz.allows(empty, SA, CREATE_MACHINE)


# --------------------------------------------------------------------------- over https


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(clusters=("c1",), kubeconfig_out=tmp_path / "kubeconfig", tls=True) as sim:
        for cluster in ("", "c1"):
            sim.store.create(cluster, NAMESPACES, {"metadata": {"name": "ops"}})
            sim.store.create(cluster, SERVICEACCOUNTS, {"metadata": _meta("bot", "ops")})
        yield sim


def _client(sim: Simulator, token: str, cluster: str = "") -> k8s.ApiClient:
    configuration = k8s.Configuration()
    configuration.host = sim.https_url + (f"/clusters/{cluster}" if cluster else "")
    configuration.ssl_ca_cert = sim.ca_path
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return k8s.ApiClient(configuration)


def _status_of(call: Any) -> tuple[int, dict]:
    with pytest.raises(k8s.ApiException) as caught:
        call()
    return caught.value.status, yaml.safe_load(caught.value.body)


def test_a_denied_request_is_403_with_the_servers_message(sim: Simulator) -> None:
    api = k8s.CustomObjectsApi(_client(sim, sim.mint_token("ops", "bot")))
    body = {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine", "metadata": {"name": "m"}}
    code, status = _status_of(
        lambda: api.create_namespaced_custom_object(
            "cluster.x-k8s.io", "v1beta1", "ops", "machines", body
        )
    )
    assert code == 403
    assert status["reason"] == "Forbidden" and status["kind"] == "Status"
    assert status["message"] == (
        'machines.cluster.x-k8s.io is forbidden: User "system:serviceaccount:ops:bot" cannot '
        'create resource "machines" in API group "cluster.x-k8s.io" in the namespace "ops"'
    )
    code, status = _status_of(lambda: k8s.CoreV1Api(api.api_client).list_node())
    assert code == 403 and status["message"] == (
        'nodes is forbidden: User "system:serviceaccount:ops:bot" cannot list resource "nodes" '
        'in API group "" at the cluster scope'
    )


def test_resource_names_and_subresources_are_enforced_over_http(sim: Simulator) -> None:
    store = sim.store
    store.create(
        "c1",
        ROLES,
        _role(
            "Role",
            "r",
            [
                rule(["get", "list"], [""], ["configmaps"], resourceNames=["mine"]),
                rule(["create"], [""], ["pods/eviction"]),
            ],
            "ops",
        ),
    )
    store.create("c1", ROLEBINDINGS, _binding("RoleBinding", "r", "Role", "r", [BOT], "ops"))
    core = k8s.CoreV1Api(_client(sim, sim.mint_token("ops", "bot", cluster="c1"), "c1"))
    for name in ("mine", "theirs"):
        store.create(
            "c1",
            CONFIGMAPS,
            {"metadata": _meta(name, "ops")},
        )
    assert core.read_namespaced_config_map("mine", "ops").metadata.name == "mine"
    assert _status_of(lambda: core.read_namespaced_config_map("theirs", "ops"))[0] == 403
    assert _status_of(lambda: core.list_namespaced_config_map("ops"))[0] == 403
    # a list of one name (fieldSelector metadata.name) is authorized by that name, as upstream
    assert [
        c.metadata.name
        for c in core.list_namespaced_config_map("ops", field_selector="metadata.name=mine").items
    ] == ["mine"]
    store.create(
        "c1",
        PODS,
        {"metadata": _meta("p", "ops"), "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    eviction = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name="p", namespace="ops"))
    core.create_namespaced_pod_eviction("p", "ops", eviction)  # pods/eviction granted ...
    code, status = _status_of(lambda: core.delete_namespaced_pod("p", "ops"))  # ... pods not
    assert code == 403 and 'cannot delete resource "pods"' in status["message"]


def test_granting_a_role_lets_the_same_token_through(sim: Simulator) -> None:
    core = k8s.CoreV1Api(_client(sim, sim.mint_token("ops", "bot")))
    assert _status_of(core.list_namespace)[0] == 403
    sim.store.create(
        "", CLUSTERROLES, _role("ClusterRole", "ns-reader", [rule(["list"], [""], ["namespaces"])])
    )
    sim.store.create(
        "",
        CLUSTERROLEBINDINGS,
        _binding("ClusterRoleBinding", "b", "ClusterRole", "ns-reader", [BOT]),
    )
    assert "ops" in {n.metadata.name for n in core.list_namespace().items}


def test_tokens_are_authenticated_per_cluster_and_die_with_their_account(sim: Simulator) -> None:
    token = sim.mint_token("ops", "bot")
    assert _status_of(lambda: k8s.CoreV1Api(_client(sim, token, "c1")).list_node())[0] == 401
    assert _status_of(lambda: k8s.CoreV1Api(_client(sim, "made-up")).list_node())[0] == 401
    sim.store.delete("", SERVICEACCOUNTS, "ops", "bot")
    code, status = _status_of(lambda: k8s.CoreV1Api(_client(sim, token)).list_node())
    assert code == 401 and status["reason"] == "Unauthorized"


def test_the_simulators_admin_credentials_keep_full_access(sim: Simulator) -> None:
    for token, cluster in ((TOKEN, ""), (TOKEN, "c1"), (_seeded_token("c1"), "c1")):
        assert k8s.CoreV1Api(_client(sim, token, cluster)).list_node().items == []


def _seeded_token(cluster: str) -> str:
    """The token the world puts into the <cluster>-kubeconfig Secret."""
    config = yaml.safe_load(seed.kubeconfig("http://127.0.0.1:1", cluster))
    return str(config["users"][0]["user"]["token"])


def test_kubectl_create_token_mints_a_token_held_to_rbac(sim: Simulator) -> None:
    binary = kubectl()
    if binary is None:  # without kubectl, post the TokenRequest as kubectl would
        response = k8s.CoreV1Api(_client(sim, TOKEN)).create_namespaced_service_account_token(
            "bot",
            "ops",
            k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
        )
        token = response.status.token
    else:
        token = subprocess.run(
            [binary, f"--kubeconfig={sim.kubeconfig_path}", "-n=ops", "create", "token", "bot"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    code, status = _status_of(lambda: k8s.CoreV1Api(_client(sim, token)).list_node())
    assert code == 403 and "system:serviceaccount:ops:bot" in status["message"]
