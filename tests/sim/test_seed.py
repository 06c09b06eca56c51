"""Seeding from the fleet: what exists per cluster, pool and zone, and that it is reproducible."""

from __future__ import annotations

import base64
from collections import Counter

import pytest
import yaml

from gitops.fleet.wellknown import (
    CLUSTER_NAME_LABEL,
    IMAGE_ANNOTATION,
    MACHINE_ANNOTATION,
    POOL_LABEL,
    ZONE_LABEL,
)
from gitops.sim.api.resources import (
    MACHINES,
    NODES,
    PODS,
    SECRETS,
    SIMMACHINES,
    SIMMACHINETEMPLATES,
)
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads
from tests.sim.helpers import example_fleet, make_world

NOW = 1_767_225_600.0


def build(**kwargs: object) -> seed_.Seeding:
    return seed_.build(example_fleet(), now=NOW, server_url="http://sim:1", **kwargs)  # type: ignore[arg-type]


def objects(seeding: seed_.Seeding, resource: str, cluster: str | None = None) -> list[dict]:
    return [
        o.obj
        for o in seeding.objects
        if o.resource == resource and (cluster is None or o.cluster == cluster)
    ]


def test_every_pool_gets_its_replicas_spread_round_robin_over_its_zones() -> None:
    seeding = build()
    fleet = example_fleet()
    assert len(fleet.pools()) == 12  # the loop below has pools to check
    for cluster, pool in fleet.pools():
        nodes = [
            n
            for n in objects(seeding, seed_.NODES, cluster.name)
            if n["metadata"]["labels"].get(POOL_LABEL) == pool.name
        ]
        assert len(nodes) == pool.replicas
        zones = Counter(n["metadata"]["labels"][ZONE_LABEL] for n in nodes)
        expected = Counter(pool.zones[i % len(pool.zones)] for i in range(pool.replicas))
        assert zones == expected, (cluster.name, pool.name)
    # prod-eu-1/general: 40 nodes over 3 zones -> 14, 13, 13
    general = fleet.cluster("prod-eu-1").pool("general")  # type: ignore[union-attr]
    assert sorted(Counter(general.zones[i % 3] for i in range(40)).values()) == [13, 13, 14]


def test_nodes_carry_pool_labels_taints_machine_and_image_facts() -> None:
    seeding = build()
    fleet = example_fleet()
    machines = {m["metadata"]["name"]: m for m in objects(seeding, seed_.MACHINES)}
    assert len(seeding.nodes) == len(machines) == 122
    for seeded in seeding.nodes:
        cluster = fleet.cluster(seeded.cluster)
        pool = cluster.pool(seeded.pool)  # type: ignore[union-attr]
        node = seeded.node
        name = node["metadata"]["name"]
        labels = node["metadata"]["labels"]
        assert name.startswith(f"{seeded.cluster}-{seeded.pool}-") and len(name) <= 63
        assert labels["kubernetes.io/hostname"] == name
        assert {k: labels[k] for k in pool.labels} == dict(pool.labels)  # type: ignore[union-attr]
        assert labels[POOL_LABEL] == pool.name  # type: ignore[union-attr]
        assert [
            (t["key"], t.get("value"), t["effect"]) for t in node["spec"].get("taints", [])
        ] == [
            (t.key, t.value, t.effect)
            for t in pool.taints  # type: ignore[union-attr]
        ]
        image = fleet.images[pool.image]  # type: ignore[union-attr]
        info = node["status"]["nodeInfo"]
        assert (
            info["osImage"],
            info["kernelVersion"],
            info["kubeletVersion"],
            info["containerRuntimeVersion"],
        ) == (
            image.os_image,
            image.kernel_version,
            image.kubelet_version,
            image.container_runtime_version,
        )
        assert info["operatingSystem"] == "linux" and info["architecture"] == "amd64"
        assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == [
            "True"
        ]
        assert node["status"]["addresses"][0]["type"] == "InternalIP"
        assert node["status"]["allocatable"]["pods"] == "110"
        machine = machines[node["metadata"]["annotations"][MACHINE_ANNOTATION]]
        assert machine["status"]["nodeRef"]["name"] == name
        assert node["spec"]["providerID"] == machine["spec"]["providerID"]
        assert machine["spec"]["failureDomain"] == labels[ZONE_LABEL]


def test_machines_are_cluster_api_machines_running_their_node() -> None:
    seeding = build()
    fleet = example_fleet()
    infra = {
        (m["metadata"]["namespace"], m["metadata"]["name"]): m
        for m in objects(seeding, seed_.SIM_MACHINES)
    }
    assert len(objects(seeding, seed_.MACHINES)) == len(infra) == 122
    for machine in objects(seeding, seed_.MACHINES):
        meta, spec, status = machine["metadata"], machine["spec"], machine["status"]
        cluster = fleet.cluster(spec["clusterName"])
        assert cluster is not None and meta["namespace"] == cluster.namespace
        assert meta["labels"][CLUSTER_NAME_LABEL] == cluster.name
        pool = cluster.pool(meta["labels"][POOL_LABEL])
        assert pool is not None
        assert meta["finalizers"] == ["machine.cluster.x-k8s.io"]
        if pool.machine_deployment is None:
            assert meta["annotations"][IMAGE_ANNOTATION] == pool.image
        else:  # made by its deployment's MachineSet: that set's, not gitops' annotations
            assert [o["kind"] for o in meta["ownerReferences"]] == ["MachineSet"]
        assert spec["version"] == cluster.spec.kubernetes_version
        assert spec["bootstrap"]["dataSecretName"] == f"{cluster.name}-{pool.name}-bootstrap"
        assert spec["providerID"] == f"sim://{cluster.name}/{meta['name']}"
        ref = spec["infrastructureRef"]
        assert ref["kind"] == "SimMachine"
        sim = infra[(ref["namespace"], ref["name"])]
        assert sim["spec"]["image"] == fleet.images[pool.image].source
        # SimMachines follow the v1beta2 infrastructure contract by default.
        assert sim["status"]["initialization"] == {"provisioned": True}
        assert status["phase"] == "Running"
        assert status["bootstrapReady"] is True and status["infrastructureReady"] is True


def test_a_template_per_pool_names_the_image_source_and_catalog_name() -> None:
    seeding = build()
    fleet = example_fleet()
    templates = {
        (t["metadata"]["namespace"], t["metadata"]["name"]): t
        for t in objects(seeding, seed_.SIM_TEMPLATES)
    }
    # One per pool, and the clone the topology controller made for prod-us-1's gpu-a100 worker.
    assert len(templates) == len(fleet.pools()) + 1 == 13
    for cluster, pool in fleet.pools():
        template = templates[(cluster.namespace, seed_.template_name(pool))]
        assert template["kind"] == "SimMachineTemplate"
        assert template["apiVersion"] == "infrastructure.cluster.x-k8s.io/v1alpha1"
        assert template["spec"]["template"]["spec"] == {
            "image": fleet.images[pool.image].source,
            "imageName": pool.image,
        }


def test_kubeconfig_secrets_point_at_each_workload_cluster() -> None:
    _, store, _, _ = make_world()
    assert example_fleet().clusters  # the loop below has clusters to check
    for cluster in example_fleet().clusters:
        secret = store.get("", SECRETS, cluster.namespace, f"{cluster.name}-kubeconfig")
        config = yaml.safe_load(base64.b64decode(secret["data"]["value"]))
        (entry,) = config["clusters"]
        assert entry["cluster"]["server"] == f"http://127.0.0.1:6443/clusters/{cluster.name}"
        assert config["current-context"] in {c["name"] for c in config["contexts"]}
        assert secret["metadata"]["labels"][CLUSTER_NAME_LABEL] == cluster.name


def test_initial_previous_seeds_every_pool_on_the_image_before_its_own() -> None:
    fleet = example_fleet()
    seeding = build(initial="previous")
    assert len(seeding.nodes) == 122
    for seeded in seeding.nodes:
        pool = fleet.cluster(seeded.cluster).pool(seeded.pool)  # type: ignore[union-attr]
        previous = fleet.previous_image(pool.image)  # type: ignore[union-attr]
        assert previous != pool.image  # type: ignore[union-attr]
        assert seeded.image == previous
        assert (
            seeded.node["status"]["nodeInfo"]["kernelVersion"]
            == fleet.images[previous].kernel_version
        )
        if pool.machine_deployment is None:  # type: ignore[union-attr]
            assert seeded.machine["metadata"]["annotations"][IMAGE_ANNOTATION] == previous  # type: ignore[index]
    kernels = {n.node["status"]["nodeInfo"]["kernelVersion"] for n in seeding.nodes}
    assert kernels == {"6.6.64-talos"}


def test_same_seed_same_fleet_other_seed_other_names() -> None:
    def names(seed: int) -> list[str]:
        return [n.node["metadata"]["name"] for n in build(seed=seed).nodes]

    assert names(7) == names(7)
    assert names(7) != names(8)
    assert len(set(names(7))) == 122


def test_creation_times_are_spread_over_the_past() -> None:
    _, store, clock, _ = make_world()
    stamps = {n["metadata"]["creationTimestamp"] for n in store.list("prod-eu-1", NODES)[0]}
    assert len(stamps) > 50
    assert max(seed_.parse_rfc3339(s) for s in stamps) < clock.now() - 3000
    machine = store.list("", MACHINES, "prod-eu-1")[0][0]
    assert seed_.parse_rfc3339(machine["metadata"]["creationTimestamp"]) < clock.now()


def test_workloads_land_on_schedulable_nodes_they_tolerate() -> None:
    _, store, _, _ = make_world()
    assert example_fleet().clusters  # the loop below has clusters to check
    assert sum(d.replicas for d in workloads.DEPLOYMENTS_SEEDED) > 0  # and pods in each
    for cluster in example_fleet().clusters:
        nodes = {n["metadata"]["name"]: n for n in store.list(cluster.name, NODES)[0]}
        shop = store.list(cluster.name, PODS, "shop")[0]
        assert len(shop) == sum(d.replicas for d in workloads.DEPLOYMENTS_SEEDED)
        for pod in shop:
            node = nodes[pod["spec"]["nodeName"]]
            # general pools are the only untainted ones in the example fleet
            assert node["metadata"]["labels"][POOL_LABEL] == "general"
            assert not node["spec"].get("taints")
            assert pod["status"]["phase"] == "Running"
        agents = store.list(cluster.name, PODS, "kube-system")[0]
        assert sorted(p["spec"]["nodeName"] for p in agents) == sorted(nodes)


def test_checkout_has_a_node_holding_two_of_its_pods_in_the_canary() -> None:
    """The tight PDB only blocks a drain where a node holds two of its pods: make sure one does."""
    _, store, _, _ = make_world()
    pods = store.list("canary-eu-1", PODS, "shop", label_selector="app=checkout")[0]
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert max(per_node.values()) >= 2


def test_pending_pods_when_no_node_fits() -> None:
    """A cluster whose every pool is tainted leaves the Deployment pods Pending, as a scheduler would."""
    seeding = build()
    for n in seeding.nodes:
        n.node["spec"]["taints"] = [{"key": "dedicated", "effect": "NoSchedule"}]
    workloads.seed(seeding, seed_value=0, now=NOW)
    shop = [
        o.obj
        for o in seeding.objects
        if o.resource == seed_.PODS and o.obj["metadata"]["namespace"] == "shop"
    ]
    assert shop and all(
        p["status"]["phase"] == "Pending" and "nodeName" not in p["spec"] for p in shop
    )
    assert "untolerated taint" in shop[0]["status"]["conditions"][0]["message"]


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("ghcr.io/siderolabs/installer:v1.9.2", "talos-1.8.4", "talos-1.9.2"),  # source wins
        ("", "talos-1.8.4", "talos-1.8.4"),
        ("quay.io/unknown:v1", "", None),
    ],
)
def test_the_image_booted_is_matched_by_source_first(
    source: str, name: str, expected: str | None
) -> None:
    assert seed_.image_for(example_fleet(), source, name) == expected


def test_seeded_objects_exist_in_the_store_with_their_kinds() -> None:
    _, store, _, _ = make_world()
    assert store.count("", SIMMACHINETEMPLATES) == 13  # 12 pools, 1 topology clone
    sim = store.list("", SIMMACHINES, "canary-eu-1")[0][0]
    assert sim["kind"] == "SimMachine" and sim["spec"]["providerID"].startswith(
        "sim://canary-eu-1/"
    )


def test_initial_previous_reads_as_a_pending_rollout_not_as_drift() -> None:
    """Read back as the controller reads it, every node is Outdated and nothing else."""
    translate = pytest.importorskip("gitops.kube.translate")
    from gitops import drift as finder
    from gitops.inventory import Inventory
    from gitops.sim.api.resources import PDBS

    _, store, _, _ = make_world(initial="previous")
    fleet = example_fleet()
    inventory = Inventory(
        tuple(
            translate.cluster(
                c.name,
                store.list(c.name, NODES)[0],
                store.list("", MACHINES, c.namespace)[0],
                store.list(c.name, PDBS)[0],
            )
            for c in fleet.clusters
        )
    )
    findings = finder.find(fleet, inventory)
    assert {f.kind for f in findings} == {"Outdated"}
    assert len(findings) == 122
