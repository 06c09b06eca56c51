"""The invariant checker itself: each violation it exists to catch is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.fleet import load
from tests.adapters.rollout.conftest import write_fleet
from tests.adapters.rollout.invariants import Snapshot, _Pool, check


def _snap() -> Snapshot:
    pool = _Pool(
        replicas=2,
        surge=1,
        unavailable=0,
        machines={"old-1", "old-2"},
        ready={"old-1", "old-2"},
        nodes={"old-1", "old-2"},
    )
    return Snapshot(
        {("canary", "workers"): pool},
        {("canary", "old-1"): "workers", ("canary", "old-2"): "workers"},
        {("canary", "old-1"): "workers", ("canary", "old-2"): "workers"},
    )


def _change(t: float, event: str, **fields: str) -> dict[str, object]:
    return {"time": t, "kind": "change", "cluster": "canary", "event": event, **fields}


GOOD = [
    _change(1, "machine-created", machine="new-1", pool="workers", replaces="old-1"),
    _change(2, "node-registered", node="new-1", machine="new-1", pool="workers"),
    _change(3, "node-ready", node="new-1", pool="workers"),
    _change(4, "node-cordoned", node="old-1"),
    _change(5, "node-removed", node="old-1"),
    _change(6, "machine-deleted", machine="old-1"),
]

BAD = {
    "surge exceeded": [
        _change(1, "machine-created", machine="new-1", pool="workers", replaces="old-1"),
        _change(1.5, "machine-created", machine="new-2", pool="workers", replaces="old-2"),
    ],
    "retired before its replacement was ready": [
        _change(1, "machine-created", machine="new-1", pool="workers", replaces="old-1"),
        _change(2, "node-cordoned", node="old-1"),
    ],
    "availability broken": [_change(1, "node-cordoned", node="old-1")],
    "duplicate replacement": [
        _change(1, "machine-created", machine="new-1", pool="workers", replaces="old-1"),
        _change(2, "machine-deleted", machine="old-2"),
        _change(3, "machine-created", machine="new-2", pool="workers", replaces="old-1"),
    ],
    "pdb bypassed": [
        {
            "time": 1,
            "kind": "request",
            "cluster": "canary",
            "verb": "delete",
            "resource": "pods",
            "namespace": "shop",
            "name": "web-1",
            "userAgent": "gitops/0.1.0",
            "subresource": "",
        }
    ],
}


def _write(tmp_path: Path, lines: list[dict[str, object]]) -> Path:
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_clean_replacement_passes(tmp_path: Path) -> None:
    fleet = load(write_fleet(tmp_path / "fleet"))
    assert check(_write(tmp_path, GOOD), _snap(), fleet) == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_violation_is_caught(tmp_path: Path, name: str) -> None:
    fleet = load(write_fleet(tmp_path / "fleet"))
    violations = check(_write(tmp_path, BAD[name]), _snap(), fleet)
    assert len(violations) >= 1, name
