"""The kube adapter observing a simulated fleet over HTTP: connections, watch caches, translation.

Adapter tier (STYLE habit 9): every test talks to an in-process ``Simulator`` through the
official client, and counts requests from outside the code under test, in the simulator's audit
log. The claims proved here (issue 4, deliverable 1):

* the management cluster is reached from a kubeconfig (and context), each workload cluster
  through its ``<cluster>-kubeconfig`` Secret, as Cluster API does;
* after the first LIST of each cache, observing again costs no LIST, and changes arrive through
  the watches; a dropped watch resumes where it was without listing, and only a 410 relists;
* Kubernetes objects become ``gitops.inventory`` values with pool, zone, nodeInfo facts,
  taints, cordon, the Machine join and PDB headroom;
* a cluster whose Secret is missing or whose API is dead is reported unreachable with the
  reason, while the others are observed.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import __version__
from gitops.fleet import Fleet, load
from gitops.fleet.wellknown import MACHINE_ANNOTATION, POOL_LABEL, ZONE_LABEL
from gitops.inventory import Inventory, Machine, Node, NodeTaint
from gitops.kube import actions, translate
from gitops.kube.cache import WatchCache
from gitops.kube.capi import machines as machine_resource
from gitops.kube.client import Kube, connect, connect_workload
from gitops.kube.errors import BadConfig, NotFound
from gitops.kube.observe import Observer
from gitops.sim import Simulator, kubeconfig_text
from gitops.sim.api.audit import read
from gitops.sim.api.resources import MACHINEDEPLOYMENTS as SIM_MACHINEDEPLOYMENTS
from gitops.sim.api.resources import MACHINES as SIM_MACHINES
from gitops.sim.api.resources import NODES, PDBS, SECRETS

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"
CANARY = "canary-eu-1"
USER_AGENT = f"gitops/{__version__}"
SYNC_TIMEOUT = 20.0
# Per workload cluster: Nodes and PodDisruptionBudgets (never Pods).
CACHES_PER_CLUSTER = 2
# In the management cluster: Machines, MachineSets and MachineDeployments.
MANAGEMENT_CACHES = 3


def requests(audit: Path, verb: str, **where: str) -> list[dict[str, Any]]:
    """Our own request lines of ``verb`` in the audit log, filtered on ``where``'s fields."""
    return [
        line
        for line in read(audit)
        if line["kind"] == "request"
        and line["verb"] == verb
        and line["userAgent"].startswith(USER_AGENT)
        and all(line.get(key) == value for key, value in where.items())
    ]


def poll(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Return ``condition()``'s first truthy value, checking every 20 ms until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


def dead_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Fixture:
    """A running simulator of the example fleet, its audit log and a management client."""

    def __init__(self, sim: Simulator, audit: Path, fleet: Fleet, management: Kube) -> None:
        self.sim = sim
        self.audit = audit
        self.fleet = fleet
        self.management = management

    def observer(self, clusters: list[str] | None = None) -> Observer:
        observer = Observer(self.management)
        observer.track(
            (c.name, c.namespace)
            for c in self.fleet.clusters
            if clusters is None or c.name in clusters
        )
        return observer

    def workload(self, cluster: str) -> Kube:
        namespace = next(c.namespace for c in self.fleet.clusters if c.name == cluster)
        return connect_workload(self.management, cluster, namespace)


@pytest.fixture
def fleet_sim(tmp_path: Path) -> Callable[..., Fixture]:
    """Start a simulator of the example fleet (``faults`` and ``drift`` as asked)."""
    started: list[tuple[Simulator, Kube]] = []

    def start(**options: Any) -> Fixture:
        audit = tmp_path / f"audit-{len(started)}.jsonl"
        sim = Simulator(
            EXAMPLE,
            seed=3,
            time_scale=0.01,
            audit_log=audit,
            kubeconfig_out=tmp_path / f"kubeconfig-{len(started)}",
            **options,
        ).start()
        management = connect(sim.kubeconfig_path)
        started.append((sim, management))
        return Fixture(sim, audit, load(EXAMPLE), management)

    yield start  # type: ignore[misc]
    for sim, management in started:
        management.close()
        sim.stop()


@pytest.fixture
def fx(fleet_sim: Callable[..., Fixture]) -> Fixture:
    return fleet_sim()


@pytest.fixture
def synced(fx: Fixture) -> Iterator[tuple[Fixture, Observer]]:
    """An observer of the whole example fleet that has listed everything once."""
    observer = fx.observer()
    assert observer.wait_synced(SYNC_TIMEOUT)
    yield fx, observer
    observer.stop()


# -- connecting -------------------------------------------------------------------------------


def test_connect_reads_the_kubeconfig_and_identifies_itself(fx: Fixture) -> None:
    machines = fx.management.custom.list_cluster_custom_object(*machine_resource(fx.management))
    stored, _ = fx.sim.store.list("", SIM_MACHINES)
    assert sorted(m["metadata"]["name"] for m in machines["items"]) == sorted(
        m["metadata"]["name"] for m in stored
    )
    lines = requests(fx.audit, "list", resource="machines", cluster="")
    assert len(lines) == 1 and lines[0]["user"] == "sim-admin"


def test_connect_honours_the_context_and_rejects_an_unknown_one(fx: Fixture) -> None:
    named = connect(fx.sim.kubeconfig_path, context="sim")
    try:
        assert named.core.list_namespace().items
    finally:
        named.close()
    with pytest.raises(BadConfig, match="nope"):
        connect(fx.sim.kubeconfig_path, context="nope")


def test_connect_refuses_a_file_that_is_not_a_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("just: [a, list]\n")
    with pytest.raises(BadConfig):
        connect(str(bad))


def test_workload_clusters_are_reached_through_their_kubeconfig_secret(fx: Fixture) -> None:
    kube = fx.workload(CANARY)
    try:
        names = sorted(n.metadata.name for n in kube.core.list_node().items)
    finally:
        kube.close()
    stored, _ = fx.sim.store.list(CANARY, NODES)
    assert names == sorted(n["metadata"]["name"] for n in stored)
    secret_reads = requests(fx.audit, "get", resource="secrets", cluster="")
    assert [(line["namespace"], line["name"]) for line in secret_reads] == [
        (CANARY, f"{CANARY}-kubeconfig")
    ]
    assert requests(fx.audit, "list", resource="nodes", cluster=CANARY)


def test_a_missing_or_empty_kubeconfig_secret_is_a_typed_error(fx: Fixture) -> None:
    fx.sim.store.delete("", SECRETS, CANARY, f"{CANARY}-kubeconfig")
    with pytest.raises(NotFound, match=f"{CANARY}-kubeconfig"):
        fx.workload(CANARY)

    def drop_value(secret: dict[str, Any]) -> dict[str, Any]:
        secret["data"] = {"other": base64.b64encode(b"x").decode()}
        return secret

    fx.sim.store.mutate("", SECRETS, "prod-eu-1", "prod-eu-1-kubeconfig", drop_value)
    with pytest.raises(BadConfig, match="no key 'value'"):
        fx.workload("prod-eu-1")


# -- watch caches: one LIST, then watches ----------------------------------------------------


def test_repeated_observations_issue_no_new_list(synced: tuple[Fixture, Observer]) -> None:
    fx, observer = synced
    clusters = len(fx.fleet.clusters)
    expected_lists = MANAGEMENT_CACHES + CACHES_PER_CLUSTER * clusters
    first = observer.inventory()
    assert all(c.reachable for c in first.clusters)
    assert first.nodes == sum(len(fx.sim.store.list(c.name, NODES)[0]) for c in fx.fleet.clusters)
    lists = len(requests(fx.audit, "list"))
    assert lists == expected_lists
    for _ in range(5):
        again = observer.inventory()
        assert again.digest() == first.digest()
    assert len(requests(fx.audit, "list")) == lists
    assert observer.stats()["lists"] == expected_lists


def test_changes_arrive_through_watches_without_a_new_list(
    synced: tuple[Fixture, Observer],
) -> None:
    fx, observer = synced
    lists = len(requests(fx.audit, "list"))
    before = observer.inventory().cluster(CANARY)
    assert before is not None
    target = before.nodes[0].name
    assert not before.nodes[0].unschedulable

    kube = fx.workload(CANARY)
    try:
        actions.patch_node(kube, target, unschedulable=True)
    finally:
        kube.close()

    def cordoned() -> bool:
        observer.wait_changed(observer.generation(), 0.2)
        cluster = observer.inventory().cluster(CANARY)
        node = cluster.node(target) if cluster is not None else None
        return node is not None and node.unschedulable

    poll(cordoned, what=f"node {target} to show as cordoned")
    member = next(
        m
        for members in observer.inventory().cluster(CANARY).pools().values()  # type: ignore[union-attr]
        for m in members
        if m.name == target
    )
    assert not member.available

    # A change in the management cluster arrives through the Machine watch just the same.
    machine = before.machines[0]
    group, version, plural = machine_resource(fx.management)
    fx.management.custom.patch_namespaced_custom_object(
        group, version, machine.namespace, plural, machine.name,
        {"metadata": {"annotations": {"example.com/seen": "yes"}}},
    )  # fmt: skip

    def annotated() -> bool:
        cluster = observer.inventory().cluster(CANARY)
        assert cluster is not None
        return any(m.annotations.get("example.com/seen") == "yes" for m in cluster.machines)

    poll(annotated, what=f"machine {machine.name} to show its new annotation")
    assert len(requests(fx.audit, "list")) == lists
    assert len(requests(fx.audit, "watch")) == MANAGEMENT_CACHES + CACHES_PER_CLUSTER * len(
        fx.fleet.clusters
    )


# -- translation ------------------------------------------------------------------------------


def test_nodes_and_machines_are_translated_field_by_field(
    synced: tuple[Fixture, Observer],
) -> None:
    fx, observer = synced
    cluster = observer.inventory().cluster(CANARY)
    assert cluster is not None
    stored_nodes, _ = fx.sim.store.list(CANARY, NODES)
    stored_machines = {
        m["metadata"]["name"]: m
        for m in fx.sim.store.list("", SIM_MACHINES)[0]
        if m["spec"]["clusterName"] == CANARY
    }
    assert sorted(m.name for m in cluster.machines) == sorted(stored_machines)
    pools = {p.name: p for c in fx.fleet.clusters if c.name == CANARY for p in c.spec.node_pools}
    assert {n.name for n in cluster.nodes} == {n["metadata"]["name"] for n in stored_nodes}
    assert stored_nodes and cluster.machines  # the loops below have something to check
    for raw in stored_nodes:
        node = cluster.node(raw["metadata"]["name"])
        assert node is not None
        labels = raw["metadata"]["labels"]
        info = raw["status"]["nodeInfo"]
        assert node.pool == labels[POOL_LABEL]
        assert node.zone == labels[ZONE_LABEL]
        assert node.facts == (
            info["osImage"],
            info["kernelVersion"],
            info["kubeletVersion"],
            info["containerRuntimeVersion"],
        )
        assert dict(node.labels) == labels
        declared = pools[node.pool]
        assert node.taints == tuple(
            sorted(NodeTaint(t.key, t.effect, t.value or "") for t in declared.taints)
        )
        assert node.ready and not node.unschedulable and not node.deleting
        assert node.ready_since == translate.timestamp(
            next(c for c in raw["status"]["conditions"] if c["type"] == "Ready")[
                "lastTransitionTime"
            ]
        )
        assert node.created == translate.timestamp(raw["metadata"]["creationTimestamp"])
        assert {c.type for c in node.conditions} >= {"Ready", "MemoryPressure"}
        machine = stored_machines[node.machine]
        assert machine["status"]["nodeRef"]["name"] == node.name
    for machine in cluster.machines:
        raw = stored_machines[machine.name]
        assert machine.namespace == CANARY
        assert machine.phase == raw["status"]["phase"] == "Running"
        assert machine.node == raw["status"]["nodeRef"]["name"]
        assert machine.zone == raw["spec"]["failureDomain"]
        assert machine.pool == raw["metadata"]["labels"][POOL_LABEL]
        assert machine.image == raw["metadata"]["annotations"]["fleet.gitops.io/image"]
        assert machine.version == raw["spec"]["version"]
    # Nothing of the client's models survives the boundary.
    assert all(type(v).__module__.startswith(("gitops.", "builtins")) for v in cluster.nodes)


def test_a_node_without_pool_label_or_machine_annotation_is_joined_to_its_machine(
    fx: Fixture,
) -> None:
    """The Machine join of ``translate.cluster``, on objects exactly as the API served them."""
    kube = fx.workload(CANARY)
    try:
        nodes = kube.core.list_node(_preload_content=False)
        raw_nodes = yaml.safe_load(nodes.data)["items"]
    finally:
        kube.close()
    raw_machines = [
        m
        for m in fx.management.custom.list_cluster_custom_object(*machine_resource(fx.management))[
            "items"
        ]
        if m["spec"]["clusterName"] == CANARY
    ]
    stripped = raw_nodes[0]
    name = stripped["metadata"]["name"]
    for key in (POOL_LABEL, ZONE_LABEL):
        del stripped["metadata"]["labels"][key]
    del stripped["metadata"]["annotations"][MACHINE_ANNOTATION]
    cluster = translate.cluster(CANARY, raw_nodes, raw_machines, pdbs=[])
    node = cluster.node(name)
    owner = next(m for m in raw_machines if m["status"]["nodeRef"]["name"] == name)
    assert node is not None
    assert node.machine == owner["metadata"]["name"]
    assert node.pool == owner["metadata"]["labels"][POOL_LABEL]
    assert node.zone == owner["spec"]["failureDomain"]
    assert node.pool in {m.node.pool for ms in cluster.pools().values() for m in ms if m.node}


def test_the_caches_keep_compact_records_of_the_full_objects_and_never_list_pods(
    synced: tuple[Fixture, Observer],
) -> None:
    """What the observer keeps is the translation of each object as the API serves it (the
    inventory equals one built from the full objects), never the objects; strings repeated
    from node to node are one copy; and no Pod is ever listed or watched."""
    fx, observer = synced
    inventory = observer.inventory()
    for c in fx.fleet.clusters:
        full = translate.cluster(
            c.name,
            fx.sim.store.list(c.name, NODES)[0],
            fx.sim.store.list("", SIM_MACHINES, c.namespace)[0],
            fx.sim.store.list(c.name, PDBS)[0],
            fx.sim.store.list("", SIM_MACHINEDEPLOYMENTS, c.namespace)[0],
        )
        seen = inventory.cluster(c.name)
        assert seen is not None and seen.nodes and seen.machines and seen.pdbs
        assert (seen.nodes, seen.machines, seen.pdbs) == (full.nodes, full.machines, full.pdbs)
        assert seen.deployments == full.deployments
    workload = observer._workloads[CANARY]
    assert workload.nodes is not None and workload.pdbs is not None
    records = workload.nodes.objects()
    assert len(records) >= 2 and all(isinstance(n, Node) for n in records)
    first, second = records[0], records[1]
    assert first.labels[POOL_LABEL] is second.labels[POOL_LABEL] or (first.pool != second.pool)
    assert first.os_image is second.os_image
    assert all(isinstance(m.value, Machine) for m in observer.machines.objects())
    pods = [
        line
        for line in read(fx.audit)
        if line["kind"] == "request"
        and line.get("resource") == "pods"
        and line["userAgent"].startswith(USER_AGENT)
    ]
    assert pods == []


def test_a_selection_keeps_only_the_chosen_clusters_machines(
    fleet_sim: Callable[..., Fixture],
) -> None:
    """A sharded replica's observer: the API server selects the Machines, MachineSets and
    MachineDeployments of its clusters; a cluster not yet listed for reads unreachable (so
    nothing acts on its missing Machines) until a new selection has been listed."""
    fx = fleet_sim()
    names = sorted(c.name for c in fx.fleet.clusters)
    first, second = names[0], names[1]
    observer = Observer(fx.management, selected=[first])
    observer.track((c.name, c.namespace) for c in fx.fleet.clusters if c.name in (first, second))
    try:
        assert observer.wait_synced(SYNC_TIMEOUT)
        inventory = observer.inventory()
        assert inventory.cluster(first).reachable and inventory.cluster(first).machines
        unlisted = inventory.cluster(second)
        assert not unlisted.reachable and "not listed for" in unlisted.error
        assert {r.cluster for r in observer.machines.objects()} == {first}
        assert {r.cluster for r in observer.deployments.objects()} <= {first}

        observer.select([first, second])
        assert observer.wait_synced(SYNC_TIMEOUT)
        inventory = observer.inventory()
        assert all(inventory.cluster(n).reachable for n in (first, second))
        assert inventory.cluster(second).machines
        assert {r.cluster for r in observer.machines.objects()} == {first, second}

        observer.select([])
        assert observer.wait_synced(SYNC_TIMEOUT)
        assert observer.machines.objects() == []
        assert not observer.inventory().cluster(first).reachable
    finally:
        observer.stop()


# -- unreachable clusters ---------------------------------------------------------------------


def test_unreachable_clusters_are_reported_with_the_reason_and_the_others_observed(
    fx: Fixture,
) -> None:
    fx.sim.store.delete("", SECRETS, "prod-eu-1", "prod-eu-1-kubeconfig")
    dead = kubeconfig_text(f"http://127.0.0.1:{dead_port()}", "staging-eu-1")

    def point_to_dead_port(secret: dict[str, Any]) -> dict[str, Any]:
        secret["data"]["value"] = base64.b64encode(dead.encode()).decode()
        return secret

    fx.sim.store.mutate("", SECRETS, "staging-eu-1", "staging-eu-1-kubeconfig", point_to_dead_port)
    observer = fx.observer()
    try:
        assert not observer.wait_synced(1.0)  # the dead cluster never lists

        def failed() -> Inventory | None:
            inventory = observer.inventory()
            staging = inventory.cluster("staging-eu-1")
            return inventory if staging is not None and "refused" in staging.error else None

        inventory = poll(failed, timeout=15, what="staging-eu-1 to fail listing")
    finally:
        observer.stop()
    by_name = {c.name: c for c in inventory.clusters}
    assert not by_name["prod-eu-1"].reachable
    assert "prod-eu-1-kubeconfig" in by_name["prod-eu-1"].error
    assert "NotFound" in by_name["prod-eu-1"].error
    assert not by_name["staging-eu-1"].reachable
    assert "staging-eu-1" in by_name["staging-eu-1"].error
    assert by_name["staging-eu-1"].nodes == ()
    for name in (CANARY, "prod-us-1"):
        assert by_name[name].reachable and by_name[name].error == ""
        assert len(by_name[name].nodes) == len(fx.sim.store.list(name, NODES)[0])


# -- dropped watches and 410 ------------------------------------------------------------------


def test_a_dropped_watch_resumes_without_listing_again(fleet_sim: Callable[..., Fixture]) -> None:
    fx = fleet_sim(faults="watch-drop=1s")
    observer = fx.observer([CANARY])
    try:
        assert observer.wait_synced(SYNC_TIMEOUT)
        caches = [*observer._management_caches(), *observer._workloads[CANARY].caches]
        poll(lambda: all(c.watches >= 3 for c in caches), timeout=15, what="watches to resume")
        drops = [line for line in requests(fx.audit, "watch") if line["fault"] == "watch-drop"]
        assert len(drops) >= len(caches)
        assert len(requests(fx.audit, "list")) == len(caches) == observer.stats()["lists"]
        # Resuming from the last resourceVersion, not from scratch: changes still arrive.
        node = observer.inventory().cluster(CANARY).nodes[-1].name  # type: ignore[union-attr]
        kube = fx.workload(CANARY)
        try:
            actions.patch_node(kube, node, labels={"example.com/after-drop": "yes"})
        finally:
            kube.close()
        poll(
            lambda: (
                observer.inventory()
                .cluster(CANARY)
                .node(node)
                .labels.get(  # type: ignore[union-attr]
                    "example.com/after-drop"
                )
            ),
            what="the label set after the drops",
        )
        assert len(requests(fx.audit, "list")) == len(caches)
        resumed = [line for line in requests(fx.audit, "watch") if line["cluster"] == CANARY]
        assert len(resumed) >= 2 * CACHES_PER_CLUSTER
    finally:
        observer.stop()


def test_a_watch_too_far_behind_gets_410_and_lists_again(tmp_path: Path) -> None:
    """The only case that relists: the server no longer keeps the version the watch resumes at.

    The watch request is held back by injected latency while more changes happen than the
    server keeps (history 3), so it is answered ``410 Expired``.
    """
    audit = tmp_path / "audit.jsonl"
    with Simulator(
        clusters=("c1",),
        history=3,
        faults="latency.watch=1s",
        audit_log=audit,
        kubeconfig_out=tmp_path / "kubeconfig",
    ) as sim:
        kube = connect(sim.kubeconfig_path)
        sim.store.create("", NODES, {"metadata": {"name": "n-0"}})
        cache = WatchCache("Nodes of the management cluster", kube.core.list_node).start()
        try:
            assert cache.wait_synced(5)
            for i in range(1, 7):  # more changes than the history keeps, while the watch waits
                sim.store.create("", NODES, {"metadata": {"name": f"n-{i}"}})
            poll(lambda: cache.lists == 2, timeout=10, what="a relist after 410")
            assert [o["metadata"]["name"] for o in cache.objects()] == [f"n-{i}" for i in range(7)]
            assert len(requests(audit, "list", resource="nodes")) == 2
            # And the cache keeps following after its relist.
            sim.store.create("", NODES, {"metadata": {"name": "n-7"}})
            poll(lambda: cache.get("", "n-7"), timeout=10, what="n-7 through the new watch")
            assert cache.lists == 2
        finally:
            cache.stop()
            cache.join(5)
            kube.close()


# -- Cluster API versions -----------------------------------------------------------------------


def _machine_facts(inventory: Inventory) -> list[tuple[Any, ...]]:
    """What the inventory says of every Machine, but their creation times (two simulators
    started one after the other stamp different ones)."""
    return sorted(
        (
            cluster.name,
            m.name,
            m.pool,
            m.phase,
            m.node,
            m.zone,
            m.version,
            m.infrastructure,
            m.bootstrap,
            m.drain_timeout,
            m.infrastructure_ready,
            m.failure,
            tuple((c.type, c.status, c.reason) for c in m.conditions),
        )
        for cluster in inventory.clusters
        for m in cluster.machines
    )


def test_the_inventory_is_the_same_whichever_cluster_api_version_is_served(
    fleet_sim: Callable[..., Fixture],
) -> None:
    seen: dict[str, Inventory] = {}
    for version in ("v1beta2", "v1beta1"):
        fx = fleet_sim(capi_version=version)
        observer = fx.observer()
        try:
            assert observer.wait_synced(SYNC_TIMEOUT)
            seen[version] = observer.inventory()
        finally:
            observer.stop()
        # The Machines were listed and watched in the version discovery chose, asked once
        # for all the caches that speak Cluster API.
        lists = requests(fx.audit, "list", resource="machines", cluster="")
        assert lists and {line["path"].split("/")[3] for line in lists} == {version}
        discoveries = [
            line
            for line in read(fx.audit)
            if line["kind"] == "request"
            and line.get("path", "").rstrip("/") == "/apis"
            and line["userAgent"].startswith(USER_AGENT)
        ]
        assert len(discoveries) == 1
    facts = _machine_facts(seen["v1beta2"])
    assert len(facts) > 10
    assert facts == _machine_facts(seen["v1beta1"])
    # Read from either shape: infrastructure references, readiness and conditions are there.
    assert all(f[7] is not None and f[7].namespace for f in facts)
    assert any(f[10] for f in facts) and any(f[12] for f in facts)
    nodes = {v: sorted(n.name for c in i.clusters for n in c.nodes) for v, i in seen.items()}
    assert nodes["v1beta2"] and nodes["v1beta2"] == nodes["v1beta1"]
