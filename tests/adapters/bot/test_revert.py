"""Revert decisions: when, which pools, back to which image, and an edit that touches only that.

Pure functions; the diff is measured with real ``git diff`` on the example fleet's files.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from gitops.bot import revert
from gitops.fleet import load
from gitops.plan import RolloutState, make
from tests.conftest import EXAMPLE, git
from tests.unit.core.factories import T0, cluster, declared, fleet, machine, pool

FLOW = """\
# a cluster written compactly
apiVersion: fleet.gitops.io/v1alpha1
kind: Cluster
metadata: {name: edge, labels: {ring: prod}}
spec:
  kubernetesVersion: v1.31.4
  nodePools:
    - {name: small, image: "img-2", replicas: 1, zones: [a]}   # quoted, in a flow mapping
    - name: big
      image: 'img-2'     # single-quoted
      replicas: 2
      zones: [a]
"""


def test_the_edit_changes_only_the_image_scalar_whatever_its_style() -> None:
    edited = revert.edit_image(FLOW, "edge", "small", "img-1")
    edited = revert.edit_image(edited, "edge", "big", "img-1")
    before, after = FLOW.splitlines(), edited.splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert changed == [
        (
            before[7],
            '    - {name: small, image: "img-1", replicas: 1, zones: [a]}   # quoted, in a flow mapping',
        ),
        (before[9], "      image: 'img-1'     # single-quoted"),
    ]


def test_the_edit_refuses_a_pool_that_is_not_there() -> None:
    with pytest.raises(ValueError, match="no image"):
        revert.edit_image(FLOW, "edge", "nope", "img-1")


def test_a_revert_of_the_example_fleet_is_one_diff_line_per_pinned_pool(tmp_path: Path) -> None:
    work = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "example")
    current = load(work).with_revision("new")
    previous_docs = {
        c.name: c.model_copy(
            update={
                "spec": c.spec.model_copy(
                    update={
                        "node_pools": tuple(
                            p.model_copy(update={"image": "talos-1.8.4"})
                            if p.image == "talos-1.9.2"
                            else p
                            for p in c.spec.node_pools
                        )
                    }
                )
            }
        )
        for c in current.clusters
    }
    previous = replace(
        current, clusters=tuple(previous_docs[c.name] for c in current.clusters), revision="old"
    )
    pins, notes = revert.pins(current, previous, None)
    assert notes == ()
    assert pins and all(p.target == "talos-1.8.4" and p.current == "talos-1.9.2" for p in pins)
    files = {src: (work / src).read_text() for src in set(current.sources.values())}
    edited, edit_notes = revert.edit_files(files, current.sources, pins)
    assert edit_notes == ()
    for path, text in edited.items():
        (work / path).write_text(text)
    numstat = git(work, "diff", "--numstat").splitlines()
    added = sum(int(line.split()[0]) for line in numstat)
    removed = sum(int(line.split()[1]) for line in numstat)
    assert added == removed == len(pins)
    diff = git(work, "diff", "-U0")
    changed = [x for x in diff.splitlines() if x[:1] in "+-" and not x.startswith(("+++", "---"))]
    assert all("image: talos-1.8.4" in x for x in changed if x.startswith("+"))
    assert all("image: talos-1.9.2" in x for x in changed if x.startswith("-"))
    reloaded = load(work)
    assert {p.image for _, p in reloaded.pools() if p.name in {x.pool for x in pins}} >= {
        "talos-1.8.4"
    }


def _two_pools():  # type: ignore[no-untyped-def]
    return fleet(
        [
            cluster(
                "a", ring="canary", pools=[pool("web", image="img-2"), pool("db", image="img-2")]
            ),
            cluster("b", pools=[pool("web", image="img-2")]),
        ],
        revision="r2",
    )


def test_pins_from_the_previous_revision_cover_every_pool_it_changed_in_every_wave() -> None:
    current = _two_pools()
    older = fleet(
        [
            cluster(
                "a", ring="canary", pools=[pool("web", image="img-1"), pool("db", image="img-2")]
            ),
            cluster("b", pools=[pool("web", image="img-1")]),
        ],
        revision="r1",
    )
    pins, notes = revert.pins(current, older, None)
    assert [(p.cluster, p.pool, p.target) for p in pins] == [
        ("a", "web", "img-1"),
        ("b", "web", "img-1"),
    ]
    assert notes == ()
    assert "r1" in pins[0].basis


def test_without_a_previous_revision_the_healthy_nodes_tell_the_last_good_image() -> None:
    current = _two_pools()

    def image(c: str, p: str) -> str:
        return "img-1" if p == "web" else "img-2"

    pins, _ = revert.pins(current, None, declared(current, image=image))
    assert [(p.cluster, p.pool, p.target) for p in pins] == [
        ("a", "web", "img-1"),
        ("b", "web", "img-1"),
    ]
    assert pins[0].basis == "the image its healthy nodes run"


def test_a_pool_whose_old_image_left_the_catalog_is_noted_not_pinned() -> None:
    current = _two_pools()
    older = fleet(
        [cluster("a", ring="canary", pools=[pool("web", image="img-1")]), cluster("b")],
        revision="r1",
    )
    gone = replace(
        current,
        document=current.document.model_copy(
            update={
                "spec": current.document.spec.model_copy(
                    update={"images": {"img-2": current.images["img-2"]}}
                )
            }
        ),
    )
    pins, notes = revert.pins(gone, older, None)
    assert pins == () and notes and "no longer in the catalog" in notes[0]


def test_only_a_failure_budget_halt_asks_for_a_revert() -> None:
    f = fleet([cluster("a")], revision="r")
    inv = declared(f, image="img-1")
    budget = make(
        f, inv, RolloutState(revision="r").record_failure("prod").record_failure("prod"), T0
    )
    assert budget.status == "halted" and revert.is_budget_halt(budget)
    drain = make(f, inv, RolloutState(revision="r").halt("drain of n1 timed out", T0), T0)
    assert drain.status == "halted" and not revert.is_budget_halt(drain)
    assert not revert.is_budget_halt(make(f, inv, RolloutState(revision="r"), T0))


def test_failures_come_from_the_plan_and_from_machines_marked_failed() -> None:
    f = fleet([cluster("a")], revision="r")
    inv = declared(f)
    dead = machine("m-new", "workers", failed="not Ready within 10m", replaces="a-workers-000")
    seen = inv.cluster("a")
    assert seen is not None
    inv = replace(inv, clusters=(replace(seen, machines=(*seen.machines, dead)),))
    (failure,) = revert.failures(None, inv)
    assert failure == revert.Failure(
        "a", "workers", "m-new", "a-workers-000", "not Ready within 10m"
    )
    body = revert.render_body("r" * 40, "rollout halted: 2 nodes failed", [], [failure], [], 65_536)
    assert "| a | workers | m-new | a-workers-000 | not Ready within 10m |" in body
    assert "rollout halted: 2 nodes failed" in body
