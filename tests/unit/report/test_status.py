"""Status files: what each cluster's YAML and the README say, and that they carry no heartbeat."""

from __future__ import annotations

from ruamel.yaml import YAML

from gitops import plan as planner
from gitops.inventory import Node
from gitops.report.status import cluster_status, files, render_yaml
from tests.unit.core.factories import T0, declared, example


def _yaml(text: str) -> dict:
    return YAML(typ="safe").load(text)


def test_converged_fleet_reports_ready_and_every_node_on_target() -> None:
    fleet = example().with_revision("abc123")
    inventory = declared(fleet)
    plan = planner.make(fleet, inventory, planner.RolloutState(), T0)
    out = files(fleet, inventory, plan)
    assert sorted(out) == ["README.md", *sorted(f"status/{c.name}.yaml" for c in fleet.clusters)]
    doc = _yaml(out["status/prod-eu-1.yaml"])
    assert doc["fleetRevision"] == "abc123" and doc["planId"] == plan.id
    conditions = {c["type"]: c for c in doc["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Converged")
    assert (
        conditions["Reconciling"]["status"] == "False"
        and conditions["Stalled"]["status"] == "False"
    )
    general = next(p for p in doc["pools"] if p["name"] == "general")
    assert (general["nodesOnTarget"], general["replicas"]) == (40, 40)
    assert general["observedImages"] == {"talos-1.9.2": 40}
    assert (
        "| prod | prod-eu-1 | general | `talos-1.9.2` | 40/40 | True (Converged) |"
        in out["README.md"]
    )


def test_a_pending_image_bump_shows_progress_and_observed_images() -> None:
    fleet = example().with_revision("def456")
    inventory = declared(
        fleet, image=lambda c, p: fleet.previous_image(fleet.cluster(c).pool(p).image)
    )
    plan = planner.make(fleet, inventory, planner.RolloutState(), T0)
    canary = cluster_status(fleet, inventory, plan, "canary-eu-1")
    ready = next(c for c in canary["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Progressing")
    assert canary["rollout"] == {
        "wave": "canary",
        "waveStatus": "active",
        "phase": "active",
        "window": {"open": "true"},  # the example's canary ring: a window open at any hour
    }
    system = next(p for p in canary["pools"] if p["name"] == "system")
    assert system["observedImages"] == {"talos-1.8.4": 3} and system["nodesOnTarget"] == 0
    prod = cluster_status(fleet, inventory, plan, "prod-us-1")
    assert prod["rollout"]["phase"] == "pending"


def test_a_halt_is_reported_as_stalled_with_its_reason() -> None:
    fleet = example()
    inventory = declared(
        fleet, image=lambda c, p: fleet.previous_image(fleet.cluster(c).pool(p).image)
    )
    state = planner.RolloutState().halt("3 nodes failed in wave canary", T0)
    plan = planner.make(fleet, inventory, state, T0)
    stalled = next(
        c
        for c in cluster_status(fleet, inventory, plan, "canary-eu-1")["conditions"]
        if c["type"] == "Stalled"
    )
    assert stalled["status"] == "True" and stalled["reason"] == "Halted"
    assert "3 nodes failed" in stalled["message"]


def test_a_halted_cluster_off_its_declared_images_is_not_ready() -> None:
    # A stopped plan projects no batches: without work it must still not say Converged.
    fleet = example()
    inventory = declared(
        fleet, image=lambda c, p: fleet.previous_image(fleet.cluster(c).pool(p).image)
    )
    state = planner.RolloutState().halt("3 nodes failed in wave canary", T0)
    plan = planner.make(fleet, inventory, state, T0)
    doc = cluster_status(fleet, inventory, plan, "canary-eu-1")
    ready = next(c for c in doc["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Halted")
    assert ready["message"] == "0 of 7 nodes run their declared image; the rollout is halted"
    assert (
        "| canary | canary-eu-1 | general | `talos-1.9.2` | 0/4 | False (Halted) |"
        in (files(fleet, inventory, plan)["README.md"])
    )
    # A halted cluster that does run its declared images is still Ready.
    on_target = planner.make(fleet, declared(fleet), state, T0)
    converged = cluster_status(fleet, declared(fleet), on_target, "canary-eu-1")
    ready = next(c for c in converged["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Converged")


def test_the_same_state_renders_the_same_bytes_at_any_time() -> None:
    fleet = example()
    inventory = declared(fleet)
    first = files(fleet, inventory, planner.make(fleet, inventory, planner.RolloutState(), T0))
    later = files(
        fleet, inventory, planner.make(fleet, inventory, planner.RolloutState(), T0 + 3600)
    )
    assert first == later  # no heartbeat: an hour later with nothing changed, nothing to commit


def test_status_files_carry_each_pools_fingerprints_and_its_odd_nodes() -> None:
    from dataclasses import replace

    fleet = example().with_revision("abc123")
    driver = "nvidia.com/cuda.driver-version.full"

    def hand_driver(c: str, p: str, i: int, n: Node) -> Node:
        if (c, p, i) == ("prod-eu-1", "gpu-h100", 3):
            return replace(n, labels={**n.labels, driver: "550.144.03"})
        return n

    inventory = declared(fleet, hook=hand_driver)
    plan = planner.make(fleet, inventory, planner.RolloutState(), T0)
    doc = _yaml(files(fleet, inventory, plan)["status/prod-eu-1.yaml"])
    pools = {p["name"]: p for p in doc["pools"]}
    assert (pools["gpu-h100"]["fingerprints"], pools["gpu-h100"]["oddNodes"]) == (
        2,
        ["prod-eu-1-gpu-h100-003"],
    )
    assert pools["general"]["fingerprints"] == 1 and "oddNodes" not in pools["general"]
    (finding,) = [f for f in doc["findings"] if f["kind"] == "ImageMismatch"]
    assert (finding["node"], finding["fact"], finding["observed"]) == (
        "prod-eu-1-gpu-h100-003",
        f"label {driver}",
        "550.144.03",
    )


def test_an_unchanged_cluster_status_is_not_dumped_again_and_a_changed_one_is() -> None:
    fleet = example().with_revision("abc123")
    inventory = declared(fleet)
    plan = planner.make(fleet, inventory, planner.RolloutState(), T0)
    document = cluster_status(fleet, inventory, plan, "prod-eu-1")
    first = render_yaml(document)
    # an equal document (built again, not the same object) is answered with the same text
    again = render_yaml(cluster_status(fleet, inventory, plan, "prod-eu-1"))
    assert again is first
    moved = fleet.with_revision("def456")
    replanned = planner.make(moved, inventory, planner.RolloutState(), T0)
    changed = render_yaml(cluster_status(moved, inventory, replanned, "prod-eu-1"))
    assert changed is not first and _yaml(changed)["fleetRevision"] == "def456"
    assert render_yaml(document) == first  # and back: the text the document always had
