"""Fixtures for command tests: the example fleet served by a simulator, and a checked runner.

``gitops drift`` and ``gitops plan`` run in-process through click's ``CliRunner`` (one
subprocess test checks the real entry point), against a ``Simulator`` reached over HTTP with
the kubeconfig it writes. ``run`` fails any test whose command printed a traceback or died of
anything but its own exit: bad input must always get a clear message (DESIGN section 8).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gitops.cli import main
from gitops.sim import Simulator
from gitops.sim.api.audit import read

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "fleet-repo-example"
CLUSTERS = ("canary-eu-1", "prod-eu-1", "prod-us-1", "staging-eu-1")


@dataclass
class Result:
    """What a command printed and how it exited."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(*args: str) -> Result:
    """Run ``gitops ARGS`` in-process; assert it ended by exiting, with no traceback."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"gitops {' '.join(args)} raised {result.exception!r}"
        ) from result.exception
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream
    return Result(result.exit_code, result.stdout, result.stderr)


def without_now(text: str) -> str:
    """A JSON plan with the only clock-dependent field, ``now``, blanked."""
    doc = json.loads(text)
    assert set(doc["now"]) == {"epoch", "utc"}
    doc["now"] = None
    return json.dumps(doc, indent=2)


@dataclass
class Served:
    """A running simulator and what tests need to point commands at it."""

    sim: Simulator
    kubeconfig: str
    audit: Path

    def requests(self, verb: str) -> list[dict[str, Any]]:
        return [
            line for line in read(self.audit) if line["kind"] == "request" and line["verb"] == verb
        ]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start a simulator of the example fleet: ``serve(initial=..., drift=..., seed=...)``."""
    started: list[Simulator] = []

    def start(**options: Any) -> Served:
        index = len(started)
        audit = tmp_path / f"audit-{index}.jsonl"
        options.setdefault("seed", 5)
        sim = Simulator(
            EXAMPLE,
            time_scale=0.01,
            audit_log=audit,
            kubeconfig_out=tmp_path / f"sim-{index}" / "kubeconfig",
            **options,
        ).start()
        started.append(sim)
        return Served(sim, sim.kubeconfig_path, audit)

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def fleet_copy(tmp_path: Path) -> Path:
    """A writable copy of the example fleet."""
    target = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, target)
    return target


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def dead_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ANSI = re.compile(r"\x1b\[[0-9;]*m")
