"""Who a request is: no credentials is 401 (but on the public paths), impersonation needs the
``impersonate`` verb and then carries the impersonated user's RBAC, and ``can-i`` reviews are
answered by the same authorizer. Against a running simulator with the official client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from gitops.sim import TOKEN, Simulator
from gitops.sim.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, NAMESPACES, SERVICEACCOUNTS
from tests.sim.conftest import api_client

Obj = dict[str, Any]


def message(err: ApiException) -> str:
    return str(json.loads(err.body)["message"])


def anonymous(sim: Simulator, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(sim.url + path, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_a_request_without_credentials_is_401_but_health_and_version_stay_open(
    api_sim: Simulator,
) -> None:
    for path in ("/api/v1/nodes", "/clusters/c1/api/v1/namespaces", "/apis", "/openapi/v3"):
        code, body = anonymous(api_sim, path)
        assert code == 401, path
        assert '"reason":"Unauthorized"' in body
    for path in ("/healthz", "/livez", "/readyz", "/version", "/clusters/c1/readyz"):
        assert anonymous(api_sim, path)[0] == 200, path


def _grant(sim: Simulator, name: str, rules: list[Obj], user: str) -> None:
    sim.store.create("", CLUSTERROLES, {"metadata": {"name": name}, "rules": rules})
    sim.store.create(
        "",
        CLUSTERROLEBINDINGS,
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "User", "name": user}],
        },
    )


def test_impersonation_carries_the_impersonated_users_rbac(
    api_sim: Simulator, mgmt: k8s.ApiClient
) -> None:
    mgmt.set_default_header("Impersonate-User", "alice")
    core = k8s.CoreV1Api(mgmt)
    with pytest.raises(ApiException) as info:
        core.list_node()
    assert info.value.status == 403
    assert 'User "alice" cannot list resource "nodes" in API group ""' in message(info.value)
    _grant(
        api_sim,
        "node-reader",
        [{"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}],
        "alice",
    )
    assert core.list_node().items == []
    mgmt.set_default_header("Impersonate-Group", "system:masters")
    core.create_namespace({"metadata": {"name": "made-as-a-master"}})
    assert api_sim.store.get("", NAMESPACES, None, "made-as-a-master")


def test_impersonation_is_refused_without_the_impersonate_verb(api_sim: Simulator) -> None:
    api_sim.store.create("", NAMESPACES, {"metadata": {"name": "ops"}})
    api_sim.store.create("", SERVICEACCOUNTS, {"metadata": {"name": "bot", "namespace": "ops"}})
    token = api_sim.mint_token("ops", "bot")
    config = k8s.Configuration(host=api_sim.url, api_key={"authorization": f"Bearer {token}"})
    with k8s.ApiClient(config) as api:
        api.set_default_header("Impersonate-User", "alice")
        core = k8s.CoreV1Api(api)
        with pytest.raises(ApiException) as info:
            core.list_node()
        assert info.value.status == 403
        assert (
            'users "alice" is forbidden: User "system:serviceaccount:ops:bot" cannot impersonate '
            'resource "users" in API group "" at the cluster scope'
        ) in message(info.value)
        _grant(
            api_sim,
            "impersonator",
            [{"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"]}],
            "system:serviceaccount:ops:bot",
        )
        with pytest.raises(ApiException) as info:
            core.list_node()  # now impersonating alice, who may not list nodes
        assert 'User "alice" cannot list' in message(info.value)
        api.set_default_header("Impersonate-Group", "system:masters")
        with pytest.raises(ApiException) as info:
            core.list_node()  # the group needs its own grant
        assert 'groups "system:masters" is forbidden' in message(info.value)


def test_self_subject_access_review_answers_from_rbac(
    api_sim: Simulator, mgmt: k8s.ApiClient
) -> None:
    authz = k8s.AuthorizationV1Api(mgmt)

    def can(verb: str, resource: str) -> bool:
        review = authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": verb, "resource": resource}}}
        )
        return bool(review.status.allowed)

    assert can("delete", "nodes")  # the admin
    mgmt.set_default_header("Impersonate-User", "alice")
    assert not can("list", "nodes")
    _grant(
        api_sim,
        "node-reader",
        [{"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}],
        "alice",
    )
    assert can("list", "nodes") and not can("delete", "nodes")
    rules = authz.create_self_subject_rules_review({"spec": {"namespace": "default"}})
    assert [r.resources for r in rules.status.resource_rules] == [["nodes"]]


def test_dry_run_in_delete_options_deletes_nothing(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_config_map("default", {"metadata": {"name": "keep"}})
    core.delete_namespaced_config_map("keep", "default", body=k8s.V1DeleteOptions(dry_run=["All"]))
    assert core.read_namespaced_config_map("keep", "default").metadata.name == "keep"
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_config_map(
            "keep", "default", body=k8s.V1DeleteOptions(dry_run=["Some"])
        )
    assert info.value.status == 400 and 'dryRun: Unsupported value: "Some"' in message(info.value)
    core.delete_namespaced_config_map("keep", "default", body=k8s.V1DeleteOptions(dry_run=[]))
    assert core.list_namespaced_config_map("default").items == []


def test_dry_run_eviction_evicts_nothing(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a:1"}]}},
    )
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p", "namespace": "default"},
        "deleteOptions": {"dryRun": ["All"]},
    }
    core.create_namespaced_pod_eviction("p", "default", eviction)
    assert core.read_namespaced_pod("p", "default").metadata.name == "p"
    del eviction["deleteOptions"]
    core.create_namespaced_pod_eviction("p", "default", eviction)
    assert core.list_namespaced_pod("default").items == []


def test_the_admin_token_is_still_needed_on_workload_clusters(api_sim: Simulator) -> None:
    api = api_client(api_sim.workload_kubeconfig("c1"))
    assert k8s.CoreV1Api(api).list_node().items == []
    config = k8s.Configuration(host=api_sim.url + "/clusters/c1")
    with k8s.ApiClient(config) as anon, pytest.raises(ApiException) as info:
        k8s.CoreV1Api(anon).list_node()
    assert info.value.status == 401
    assert TOKEN not in message(info.value)
