"""The controller loop end to end: real git (a bare repository over file://), the simulator.

An engineer's commit bumping the image rolls through the waves and the converged state shows
on the status branch; a malformed commit is reported Stalled while the last good revision
stays in force; the main branch is never written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from gitops.controller.loop import Controller
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import CoalescingWriter, StatusWriter, trailers
from gitops.kube.client import connect
from gitops.sim.server import Simulator
from tests.conftest import git
from tests.rollout.conftest import POLICY_SCALE, SIM_SCALE, write_fleet


@pytest.fixture
def story(
    tmp_path: Path, fleet_remote: Callable[..., tuple[Path, Path]]
) -> Iterator[dict[str, object]]:
    source = write_fleet(tmp_path / "source")
    for path in source.glob("*.yaml"):
        path.write_text(path.read_text().replace("image: os-2", "image: os-1"))
    bare, work = fleet_remote(source)
    sim = Simulator(
        work,
        initial="declared",
        time_scale=SIM_SCALE,
        audit_log=tmp_path / "audit.jsonl",
        kubeconfig_out=tmp_path / "kubeconfig",
    ).start()
    remote = Remote(f"file://{bare}", branch="main")
    status = StatusWriter(tmp_path / "status-cache", remote, branch="gitops/status")
    controller = Controller(
        Mirror(tmp_path / "cache", remote),
        connect(sim.kubeconfig_path),
        writer=CoalescingWriter(status, interval=0.0),
        time_scale=POLICY_SCALE,
    )
    thread = threading.Thread(target=lambda: controller.run(interval=0.2), daemon=True)
    thread.start()
    yield {"work": work, "bare": bare, "controller": controller, "status": status, "sim": sim}
    controller.stop()
    thread.join(10)
    sim.stop()


def _until(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)  # polling a real controller thread: there is no clock to advance here


def _status(story: dict[str, object], cluster: str) -> dict:
    files = story["status"].read()  # type: ignore[attr-defined]
    text = files.get(f"status/{cluster}.yaml")
    return YAML(typ="safe").load(text) if text else {}


def test_a_pushed_image_bump_rolls_out_and_the_status_branch_shows_it(
    story: dict[str, object],
) -> None:
    work, controller = story["work"], story["controller"]
    first = git(work, "rev-parse", "HEAD")
    _until(lambda: _status(story, "prod-b").get("fleetRevision") == first)
    for path in Path(work).glob("*.yaml"):
        path.write_text(path.read_text().replace("image: os-1", "image: os-2"))
    git(work, "commit", "-qam", "Roll the fleet to os-2")
    git(work, "push", "-q", "origin", "main")
    bumped = git(work, "rev-parse", "HEAD")

    def converged() -> bool:
        doc = _status(story, "prod-b")
        pools = doc.get("pools") or []
        return (
            doc.get("fleetRevision") == bumped
            and all(p["observedImages"] == {"os-2": p["replicas"]} for p in pools)
            and next(c for c in doc["conditions"] if c["type"] == "Ready")["status"] == "True"
        )

    _until(converged)
    tip = story["status"].tip()  # type: ignore[attr-defined]
    assert trailers(tip.message)["Fleet-Revision"] == bumped
    assert git(Path(story["bare"]), "rev-parse", "main") == bumped  # main never written by us
    assert controller.state.history == [first, bumped]  # type: ignore[attr-defined]


def test_a_malformed_commit_is_stalled_and_the_last_good_revision_stays(
    story: dict[str, object],
) -> None:
    work, controller = story["work"], story["controller"]
    good = git(work, "rev-parse", "HEAD")
    _until(lambda: _status(story, "canary").get("fleetRevision") == good)
    (Path(work) / "canary.yaml").write_text(
        "apiVersion: fleet.gitops.io/v1alpha1\nkind: Cluster\nspec: [\n"
    )
    git(work, "commit", "-qam", "Break the canary file")
    git(work, "push", "-q", "origin", "main")
    bad = git(work, "rev-parse", "HEAD")
    _until(lambda: "Stalled" in story["status"].read().get("README.md", b"").decode())  # type: ignore[attr-defined]
    readme = story["status"].read()["README.md"].decode()  # type: ignore[attr-defined]
    assert f"revision {bad[:12]} is invalid" in readme and "canary.yaml" in readme
    assert controller.state.fleet.revision == good  # type: ignore[attr-defined]
    stalled = next(c for c in _status(story, "canary")["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RevisionNotApplied"
    assert controller.ready()[0]  # type: ignore[attr-defined]  # the last good revision runs on
