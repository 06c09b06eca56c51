"""The demo's typed summary serializes to the JSON keys ``gitops demo --json FILE`` documents.

Readers of that file (``tests/stories/demo/test_demo.py``, scripts around the demo) use these keys; a
field renamed in the dataclasses must not rename a key silently. A story cut short keeps what
it reached and leaves the rest out.
"""

from __future__ import annotations

import dataclasses
import json

from gitops.demo.summary import (
    Broken,
    Bump,
    Converged,
    Injected,
    Page,
    Paths,
    PoolOutcome,
    Pull,
    Summary,
)

PULL = Pull(number=3, title="Revert", head="gitops/revert/abc", state="open")
WHOLE = Summary(
    paths=Paths(
        root="/r", remote="/r/fleet.git", clone="/r/work", controller_log="/r/c", audit="/r/a"
    ),
    dashboard="http://127.0.0.1:8080/",
    drift_injected=(Injected(kind="kernel", cluster="canary-eu-1", node="n1"),),
    drift_pulls=(1,),
    drift_replacements=2,
    bump=Bump(pull=2, revision="abc"),
    converged=Converged(revision="abc", seconds=12.5),
    broken=Broken(
        pull=4,
        revision="def",
        cluster="canary-eu-1",
        pool="general",
        image="talos-1.9.3-rc.0",
        halt="rollout halted: ...",
        cluster_status={"Ready": "False RolloutHalted"},
    ),
    revert_pull=PULL,
    status_commits=5,
    pools=(
        PoolOutcome(
            cluster="canary-eu-1",
            pool="general",
            wave="canary",
            image="talos-1.9.2",
            replicas=3,
            on_target=3,
            converged=True,
            seconds=None,
        ),
    ),
    pulls=(PULL,),
    dashboard_page=Page(status="halted", revision="def", revision_url="http://forge/c/def"),
    ok=True,
    seconds=80.1,
    kept=False,
)


def test_the_whole_story_has_the_documented_keys() -> None:
    doc = json.loads(json.dumps(WHOLE.to_json()))
    assert list(doc) == [
        "paths",
        "dashboard",
        "driftInjected",
        "driftPulls",
        "driftReplacements",
        "bump",
        "converged",
        "broken",
        "revertPull",
        "statusCommits",
        "pools",
        "pulls",
        "dashboardPage",
        "ok",
        "seconds",
        "kept",
    ]
    assert set(doc["paths"]) == {"root", "remote", "clone", "controllerLog", "audit"}
    assert doc["driftInjected"] == [{"kind": "kernel", "cluster": "canary-eu-1", "node": "n1"}]
    assert doc["driftPulls"] == [1]
    assert doc["bump"] == {"pull": 2, "revision": "abc"}
    assert doc["converged"] == {"revision": "abc", "seconds": 12.5}
    assert set(doc["broken"]) == {
        "pull",
        "revision",
        "cluster",
        "pool",
        "image",
        "halt",
        "clusterStatus",
    }
    assert doc["broken"]["clusterStatus"] == {"Ready": "False RolloutHalted"}
    assert doc["revertPull"] == {
        "number": 3,
        "title": "Revert",
        "head": "gitops/revert/abc",
        "state": "open",
    }
    assert doc["pools"] == [
        {
            "cluster": "canary-eu-1",
            "pool": "general",
            "wave": "canary",
            "image": "talos-1.9.2",
            "replicas": 3,
            "onTarget": 3,
            "converged": True,
            "seconds": None,
        }
    ]
    assert doc["pulls"] == [doc["revertPull"]]
    assert doc["dashboardPage"] == {
        "status": "halted",
        "revision": "def",
        "revisionUrl": "http://forge/c/def",
    }


def test_a_story_cut_short_keeps_what_it_reached_and_says_why() -> None:
    cut = dataclasses.replace(
        Summary(paths=WHOLE.paths, drift_pulls=(1,)), error="not reached in time: x", seconds=3.0
    )
    doc = cut.to_json()
    assert list(doc) == ["paths", "driftPulls", "ok", "error", "seconds"]
    assert doc["ok"] is False and doc["error"] == "not reached in time: x"
