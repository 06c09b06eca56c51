"""The simulator over HTTP, driven by the official ``kubernetes`` client as the controller is."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from gitops.sim import TOKEN, Simulator
from gitops.sim.api.audit import read as read_audit
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import NODES, PODS
from gitops.sim.api.store import Store
from tests.sim.conftest import api_client, machine, node, pod
from tests.sim.helpers import raw

CAPI = ("cluster.x-k8s.io", "v1beta1")


def status_of(e: ApiException) -> dict[str, Any]:
    body = json.loads(e.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == e.status
    return body


def test_kubeconfig_points_at_the_running_server(api_sim: Simulator) -> None:
    # Written only once the server answered its own readiness probe (the first request).
    probe = read_audit(api_sim.audit_path or "")[0]
    assert (probe["path"], probe["code"]) == ("/version", 200)
    assert Path(api_sim.kubeconfig_path).stat().st_mtime >= probe["time"] - 0.01
    config = yaml.safe_load(Path(api_sim.kubeconfig_path).read_text())
    assert config["clusters"][0]["cluster"]["server"] == api_sim.url
    assert config["users"][0]["user"]["token"] == TOKEN
    workload = yaml.safe_load(Path(api_sim.workload_kubeconfig("c1")).read_text())
    assert workload["clusters"][0]["cluster"]["server"] == api_sim.url + "/clusters/c1"


def test_list_and_get_per_cluster(
    api_sim: Simulator,
    seed_objects: Callable[[Store], None],
    c1: k8s.ApiClient,
    mgmt: k8s.ApiClient,
) -> None:
    seed_objects(api_sim.store)
    nodes = k8s.CoreV1Api(c1).list_node()
    assert [n.metadata.name for n in nodes.items] == ["n1", "n2"]
    assert nodes.metadata.resource_version == str(api_sim.store.resource_version)
    assert k8s.CoreV1Api(mgmt).list_node().items == []  # nodes live in the workload cluster
    n1 = k8s.CoreV1Api(c1).read_node("n1")
    assert n1.status.node_info.kubelet_version == "v1.31.4"
    machines = k8s.CustomObjectsApi(mgmt).list_cluster_custom_object(*CAPI, "machines")
    assert [m["metadata"]["name"] for m in machines["items"]] == ["m1"]


def test_errors_are_status_bodies_with_reason_and_code(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    with pytest.raises(ApiException) as info:
        core.read_node("ghost")
    body = status_of(info.value)
    assert (body["reason"], body["message"]) == ("NotFound", 'nodes "ghost" not found')
    core.create_node(node("n1"))
    with pytest.raises(ApiException) as info:
        core.create_node(node("n1"))
    assert status_of(info.value)["reason"] == "AlreadyExists"


def test_unknown_paths_and_clusters_answer_404_status(api_sim: Simulator) -> None:
    for path in (
        "/api/v1/widgets",
        "/clusters/nowhere/api/v1/nodes",
        "/openapi/v3/apis/nope.io/v1",
        "/apis/nope.io",
    ):
        code, headers, body = raw(api_sim, path)
        assert code == 404 and body["kind"] == "Status" and body["reason"] == "NotFound", path
        assert headers["Content-Type"] == "application/json"


def test_stale_update_is_409_conflict(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node(node("n1"))
    a = core.read_node("n1")
    b = core.read_node("n1")
    a.metadata.labels = {"by": "a"}
    core.replace_node("n1", a)
    b.metadata.labels = {"by": "b"}
    with pytest.raises(ApiException) as info:
        core.replace_node("n1", b)
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "Conflict")
    assert body["details"] == {"name": "n1", "group": "", "kind": "nodes"}
    assert core.read_node("n1").metadata.labels == {"by": "a"}


def test_patches_of_every_kind(c1: k8s.ApiClient, mgmt: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    n = node("n1")
    n["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    core.create_node(n)
    # A dict body is sent as a strategic merge patch: taints are replaced as a whole.
    core.patch_node(
        "n1", {"spec": {"unschedulable": True, "taints": [{"key": "b", "effect": "NoExecute"}]}}
    )
    got = core.read_node("n1")
    assert got.spec.unschedulable is True
    assert [(t.key, t.effect) for t in got.spec.taints] == [("b", "NoExecute")]
    core.patch_node("n1", [{"op": "replace", "path": "/spec/unschedulable", "value": False}])
    assert core.read_node("n1").spec.unschedulable is False
    core.patch_node(
        "n1", {"metadata": {"labels": {"x": "1"}}}, _content_type="application/merge-patch+json"
    )
    assert core.read_node("n1").metadata.labels["x"] == "1"
    # Custom resources: the client sends a merge patch; a strategic one is refused with 415.
    custom = k8s.CustomObjectsApi(mgmt)
    custom.create_namespaced_custom_object(*CAPI, "default", "machines", machine("m1"))
    custom.patch_namespaced_custom_object(
        *CAPI, "default", "machines", "m1", {"metadata": {"labels": {"pool": "gpu"}}}
    )
    assert custom.get_namespaced_custom_object(*CAPI, "default", "machines", "m1")["metadata"][
        "labels"
    ] == {"pool": "gpu"}
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            *CAPI,
            "default",
            "machines",
            "m1",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert info.value.status == 415


def test_patch_with_a_stale_resource_version_conflicts(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    created = core.create_node(node("n1"))
    core.patch_node("n1", {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(ApiException) as info:
        core.patch_node(
            "n1",
            {
                "metadata": {
                    "labels": {"a": "2"},
                    "resourceVersion": created.metadata.resource_version,
                }
            },
        )
    assert info.value.status == 409


def test_status_subresource_over_http(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node(node("n1"))
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    core.patch_node("n1", not_ready)  # the main resource ignores status
    assert core.read_node("n1").status.conditions[0].status == "True"
    core.patch_node_status("n1", not_ready)
    assert core.read_node_status("n1").status.conditions[0].status == "False"


def test_create_resets_status_as_the_real_registry_does(
    c1: k8s.ApiClient, mgmt: k8s.ApiClient
) -> None:
    created = k8s.CoreV1Api(c1).create_namespaced_pod("default", pod("p1", "n1"))
    assert created.status.phase == "Pending"
    m = k8s.CustomObjectsApi(mgmt).create_namespaced_custom_object(
        *CAPI, "default", "machines", machine("m1")
    )
    assert "status" not in m


def test_invalid_machines_are_422(mgmt: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(mgmt)
    bad = machine("m1")
    del bad["spec"]["clusterName"]
    bad["spec"]["version"] = 131
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(*CAPI, "default", "machines", bad)
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.clusterName", "spec.version"]


def test_finalizers_and_deletion_timestamp_over_http(mgmt: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(mgmt)
    m = machine("m1")
    m["metadata"]["finalizers"] = ["machine.cluster.x-k8s.io"]
    custom.create_namespaced_custom_object(*CAPI, "default", "machines", m)
    custom.delete_namespaced_custom_object(*CAPI, "default", "machines", "m1")
    held = custom.get_namespaced_custom_object(*CAPI, "default", "machines", "m1")
    assert held["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(
        *CAPI, "default", "machines", "m1", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as info:
        custom.get_namespaced_custom_object(*CAPI, "default", "machines", "m1")
    assert info.value.status == 404


def test_delete_options_body_is_honoured(c1: k8s.ApiClient, api_sim: Simulator) -> None:
    apps = k8s.AppsV1Api(c1)
    rs = apps.create_namespaced_replica_set(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "a", "image": "a"}]},
                },
            },
        },
    )
    p = pod("web-a", "n1")
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": rs.metadata.uid,
            "controller": True,
        }
    ]
    k8s.CoreV1Api(c1).create_namespaced_pod("default", p)
    apps.delete_namespaced_replica_set(
        "web",
        "default",
        body=k8s.V1DeleteOptions(propagation_policy="Orphan", grace_period_seconds=0),
    )
    orphan = k8s.CoreV1Api(c1).read_namespaced_pod("web-a", "default")
    assert orphan.metadata.owner_references is None
    with pytest.raises(ApiException) as info:
        k8s.CoreV1Api(c1).delete_namespaced_pod(
            "web-a", "default", body=k8s.V1DeleteOptions(propagation_policy="Sideways")
        )
    assert info.value.status == 400


def test_label_and_field_selectors(
    api_sim: Simulator, seed_objects: Callable[[Store], None], c1: k8s.ApiClient
) -> None:
    seed_objects(api_sim.store)
    core = k8s.CoreV1Api(c1)
    on_n1 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert [p.metadata.name for p in on_n1.items] == ["web-1"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("default", label_selector="app in (db)").items
    ] == ["db-1"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("default", label_selector="app!=db,app").items
    ] == ["web-1"]
    with pytest.raises(ApiException) as info:
        core.list_node(field_selector="spec.nodeName=n1")
    assert status_of(info.value)["reason"] == "BadRequest"


def test_list_pages_with_limit_and_continue(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    for i in range(5):
        core.create_node(node(f"n{i}"))
    names, token = [], None
    while True:
        page = core.list_node(limit=2, _continue=token)
        names += [n.metadata.name for n in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 5 - len(names)
    assert names == [f"n{i}" for i in range(5)]


def test_watch_streams_and_resumes_from_a_resource_version(
    api_sim: Simulator, c1: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node(node("n1"))
    rv = core.list_node().metadata.resource_version
    core.create_node(node("n2"))
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    core.delete_node("n2")
    w = k8s_watch.Watch()
    seen = []
    for ev in w.stream(core.list_node, resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "n2"), ("MODIFIED", "n1"), ("DELETED", "n2")]
    # Resuming from the last version seen yields only what came after it.
    last = w.resource_version
    core.create_node(node("n3"))
    w2 = k8s_watch.Watch()
    again = []
    for ev in w2.stream(core.list_node, resource_version=last, timeout_seconds=5):
        again.append((ev["type"], ev["object"].metadata.name))
        w2.stop()
    assert again == [("ADDED", "n3")]


def test_watch_follows_live_changes_and_ends_at_timeout(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    rv = core.list_node().metadata.resource_version
    got: list[str] = []

    def follow() -> None:
        # Open long enough for the change to land however busy the machine; it stops at the
        # first event (a 1 s window could close before a slow create arrived).
        watch = k8s_watch.Watch()
        for ev in watch.stream(core.list_node, resource_version=rv, timeout_seconds=60):
            got.append(ev["object"].metadata.name)
            watch.stop()

    t = threading.Thread(target=follow)
    t.start()
    k8s.CoreV1Api(api_client_for(c1)).create_node(node("live"))
    t.join(60)
    assert not t.is_alive()
    assert got == ["live"]
    # With nothing changing, timeoutSeconds alone ends a stream (cleanly, with no event).
    last = core.list_node().metadata.resource_version
    quiet = list(k8s_watch.Watch().stream(core.list_node, resource_version=last, timeout_seconds=1))
    assert quiet == []


def api_client_for(api: k8s.ApiClient) -> k8s.ApiClient:
    """A second client on the same server (the watch holds the first one's connection)."""
    return k8s.ApiClient(api.configuration)


def test_watch_from_an_expired_version_gets_410(tmp_path: Path) -> None:
    with Simulator(clusters=("c1",), history=2, kubeconfig_out=tmp_path / "kc") as sim:
        core = k8s.CoreV1Api(api_client(sim.workload_kubeconfig("c1")))
        core.create_node(node("n0"))
        rv = core.list_node().metadata.resource_version
        for i in range(1, 7):
            core.create_node(node(f"n{i}"))
        # Raw stream: the server answers 200 and an ERROR event carrying a 410 Expired Status.
        resp = core.list_node(
            watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
        )
        first = json.loads(
            resp.readline() if hasattr(resp, "readline") else resp.data.split(b"\n")[0]
        )
        assert first["type"] == "ERROR"
        assert (first["object"]["code"], first["object"]["reason"]) == (410, "Expired")
        # The client's Watch turns it into ApiException 410, as against a real server.
        with pytest.raises(ApiException) as info:
            for _ in k8s_watch.Watch().stream(
                core.list_node, resource_version=rv, timeout_seconds=1
            ):
                pass
        assert info.value.status == 410


def test_watch_with_selectors(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_pod("default", pod("a", "n1"))
    core.create_namespaced_pod("default", pod("b", "n2"))
    events = [
        (e["type"], e["object"].metadata.name)
        for e in k8s_watch.Watch().stream(
            core.list_pod_for_all_namespaces, field_selector="spec.nodeName=n2", timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "b")]


def test_eviction_is_routed_to_the_registered_handler(
    api_sim: Simulator, c1: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_namespaced_pod("default", pod("free", "n1"))
    core.create_namespaced_pod("default", pod("guarded", "n1"))

    def eviction(name: str) -> k8s.V1Eviction:
        return k8s.V1Eviction(
            metadata=k8s.V1ObjectMeta(name=name, namespace="default"),
            delete_options=k8s.V1DeleteOptions(grace_period_seconds=0),  # no kubelet here
        )

    core.create_namespaced_pod_eviction("free", "default", eviction("free"))  # no handler: deleted
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["guarded"]
    asked: list[tuple[str, str, str, str]] = []

    def handler(
        cluster: str, namespace: str, name: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        asked.append((cluster, namespace, name, body["kind"]))
        raise ApiError(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            {
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
                    }
                ]
            },
        )

    api_sim.store.add_subresource_handler(PODS, "eviction", handler)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod_eviction("guarded", "default", eviction("guarded"))
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (429, "TooManyRequests")
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert asked == [("c1", "default", "guarded", "Eviction")]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod_eviction("guarded", "default", eviction("other"))
    assert info.value.status == 400


def test_discovery_lists_resources_subresources_short_names_and_categories(
    api_sim: Simulator,
) -> None:
    code, _, core = raw(api_sim, "/clusters/c1/api/v1")
    assert code == 200
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods/eviction"]["verbs"] == ["create"]
    assert (by_name["pods/eviction"]["group"], by_name["pods/eviction"]["version"]) == (
        "policy",
        "v1",
    )
    assert by_name["nodes/status"]["verbs"] == ["get", "patch", "update"]
    assert "watch" in by_name["nodes"]["verbs"] and not by_name["nodes"]["namespaced"]
    _, _, capi = raw(api_sim, "/apis/cluster.x-k8s.io/v1beta1")
    machines = next(r for r in capi["resources"] if r["name"] == "machines")
    assert machines["shortNames"] == ["ma"] and machines["categories"] == ["cluster-api"]
    assert any(r["name"] == "machines/status" for r in capi["resources"])
    _, _, groups = raw(
        api_sim,
        "/apis",
        accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    )
    assert groups["kind"] == "APIGroupList"
    assert {
        "policy",
        "apps",
        "coordination.k8s.io",
        "cluster.x-k8s.io",
        "infrastructure.cluster.x-k8s.io",
    } <= {g["name"] for g in groups["groups"]}
    _, _, version = raw(api_sim, "/version")
    assert version["gitVersion"].startswith("v1.")


def test_table_output_for_kubectl(
    api_sim: Simulator, seed_objects: Callable[[Store], None]
) -> None:
    seed_objects(api_sim.store)
    api_sim.store.mutate("c1", NODES, None, "n1", lambda o: {**o, "spec": {"unschedulable": True}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, _, t = raw(api_sim, "/clusters/c1/api/v1/nodes", accept=accept)
    assert code == 200 and (t["kind"], t["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
    ]
    rows = {r["cells"][0]: r["cells"] for r in t["rows"]}
    assert rows["n1"][1:3] == ["Ready,SchedulingDisabled", "worker"]
    assert rows["n2"][1:3] == ["NotReady", "<none>"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    _, _, pods = raw(api_sim, "/clusters/c1/api/v1/pods", accept=accept)
    assert [c["name"] for c in pods["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    _, _, ms = raw(api_sim, "/apis/cluster.x-k8s.io/v1beta1/machines", accept=accept)
    assert [c["name"] for c in ms["columnDefinitions"]] == [
        "Name",
        "Cluster",
        "NodeName",
        "ProviderID",
        "Phase",
        "Age",
        "Version",
    ]
    assert ms["rows"][0]["cells"][:5] == ["m1", "c1", "m1", "sim://c1/m1", "Running"]
    _, _, plain = raw(api_sim, "/clusters/c1/api/v1/nodes", accept="application/json")
    assert plain["kind"] == "NodeList"


def test_audit_log_records_each_request(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    core.create_node(node("n1"))
    core.patch_node_status("n1", {"status": {"phase": "Running"}})
    with pytest.raises(ApiException):
        core.read_node("ghost")
    lines = [
        line
        for line in read_audit(api_sim.audit_path or "")
        if line["kind"] == "request" and line["cluster"] == "c1"
    ]
    summary = [(a["verb"], a["resource"], a["subresource"], a["name"], a["code"]) for a in lines]
    assert summary == [
        ("create", "nodes", "", "", 201),
        ("patch", "nodes", "status", "n1", 200),
        ("get", "nodes", "", "ghost", 404),
    ]
    assert all(
        a["userAgent"].startswith("OpenAPI-Generator") and a["user"] == "sim-admin" for a in lines
    )


def test_stop_ends_open_watches_and_frees_the_port(tmp_path: Path) -> None:
    sim = Simulator(kubeconfig_out=tmp_path / "kc").start()
    core = k8s.CoreV1Api(api_client(sim.kubeconfig_path))
    done = threading.Event()

    def follow() -> None:
        try:
            for _ in k8s_watch.Watch().stream(core.list_node, timeout_seconds=60):
                pass
        except Exception:  # the connection may be cut: either way the watch is over
            pass
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    sim.stop()
    assert done.wait(5)
    with pytest.raises(OSError):
        urllib.request.urlopen(sim.url + "/version", timeout=1)


def test_dry_run_answers_without_writing(api_sim: Simulator, c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    events: list[Any] = []
    api_sim.store.subscribe(events.append)
    planned = core.create_node(node("n1"), dry_run="All")
    assert planned.metadata.name == "n1" and planned.metadata.uid
    assert core.list_node().items == [] and events == []
    core.create_node(node("n1"))
    before = api_sim.store.resource_version
    patched = core.patch_node("n1", {"spec": {"unschedulable": True}}, dry_run="All")
    assert patched.spec.unschedulable is True
    core.delete_node("n1", dry_run="All")
    assert core.read_node("n1").spec.unschedulable is None
    assert api_sim.store.resource_version == before
    with pytest.raises(ApiException) as info:
        core.delete_node("n1", dry_run="Some")
    assert info.value.status == 400


def test_delete_collection_with_a_selector(c1: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(c1)
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        core.create_namespaced_pod("default", pod(name, "n1", app=app))
    # (grace 0: the pods are bound to a node, and no kubelet runs here to finish a graceful delete)
    core.delete_collection_namespaced_pod(
        "default", label_selector="app=web", grace_period_seconds=0
    )
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["c"]


def test_table_watch_sends_columns_once(api_sim: Simulator) -> None:
    api_sim.store.create("c1", NODES, node("n1"))
    api_sim.store.create("c1", NODES, node("n2"))
    req = urllib.request.Request(
        api_sim.url + "/clusters/c1/api/v1/nodes?watch=true&timeoutSeconds=1",
        headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {TOKEN}",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line]
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == ["n1", "n2"]
    assert events[0]["object"]["columnDefinitions"] and not events[1]["object"]["columnDefinitions"]
