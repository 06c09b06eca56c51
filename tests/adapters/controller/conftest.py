"""Fixtures of the controller stories: a fleet remote, the simulator, and ``gitops run``.

The fleet is the rollout tests' small three-wave fleet (``tests.adapters.rollout.conftest``), every pool
on ``os-1`` and a third image ``os-3`` in the catalog, pushed to a bare repository served over
``file://``; the simulator (in this process, with an audit log) starts with that fleet's nodes.
Controllers run either in a thread of this process (``story``) or as real ``gitops run``
processes (``gitops_run``) whose JSON log lines the tests read. Every wait polls a condition
with a deadline: the controller runs in real time in another thread or process, so there is no
clock of ours to advance.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitops.controller.loop import Controller
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import CoalescingWriter, StatusWriter
from gitops.kube.client import connect
from gitops.sim import Simulator
from tests.adapters.gitrepo.conftest import signers  # noqa: F401  (the session's signing keys)
from tests.adapters.rollout.conftest import POLICY_SCALE, SIM_SCALE, write_fleet
from tests.conftest import git

OS3 = (
    "    os-3: {family: os, osImage: OS (v3), kernelVersion: 6.13.2, kubeletVersion: v1.31.5,\n"
    "           containerRuntimeVersion: containerd://2.0.3, source: registry/os:v3}\n"
)
CLUSTERS = ("canary", "staging", "prod-a", "prod-b")


def until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or fail at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what or condition}"
        time.sleep(0.05)  # another thread or process moves the world; nothing to advance here


def set_image(work: Path, old: str, new: str, *files: str) -> None:
    """Declare ``new`` where ``old`` is declared, in ``files`` (default: every file)."""
    for path in sorted(p for pattern in files or ("*.yaml",) for p in work.glob(pattern)):
        path.write_text(path.read_text().replace(f"image: {old}", f"image: {new}"))


def commit(work: Path, message: str, *, push: bool = True) -> str:
    """Commit everything in ``work`` (and push it to ``origin main``); the new revision."""
    git(work, "add", "-A")
    git(work, "commit", "-qm", message)
    if push:
        git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD")


def status_doc(writer: StatusWriter, name: str) -> dict[str, Any]:
    """A YAML file of the status branch (``status/<cluster>.yaml``, ``controller.yaml``)."""
    text = writer.read().get(name)
    return YAML(typ="safe").load(text) if text else {}


def condition(doc: dict[str, Any], kind: str) -> dict[str, str]:
    return next(c for c in doc.get("conditions") or [] if c["type"] == kind)


def phase(doc: dict[str, Any], name: str) -> dict[str, str]:
    """One phase of ``controller.yaml``."""
    return next((p for p in doc.get("phases") or [] if p["phase"] == name), {})


def converged_at(writer: StatusWriter, revision: str) -> bool:
    """Whether the status branch shows every cluster Ready at ``revision``, every node on its
    pool's declared image."""
    files = writer.read()
    for name in CLUSTERS:
        text = files.get(f"status/{name}.yaml")
        if not text:
            return False
        doc = YAML(typ="safe").load(text)
        if doc.get("fleetRevision") != revision or condition(doc, "Ready")["status"] != "True":
            return False
        if any(p["observedImages"] != {p["declaredImage"]: p["replicas"]} for p in doc["pools"]):
            return False
    return True


@dataclass
class World:
    """The fleet repository (bare remote and an engineer's clone) and the simulator."""

    root: Path
    bare: Path
    work: Path
    sim: Simulator
    audit: Path
    status: StatusWriter  # reads the status branch, as a person would

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def audit_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line]

    def created(self) -> list[dict[str, Any]]:
        return [e for e in self.audit_events() if e.get("event") == "machine-created"]


@pytest.fixture
def world(tmp_path: Path, fleet_remote: Callable[..., tuple[Path, Path]]) -> Iterator[World]:
    made = build_world(tmp_path, fleet_remote)
    yield made
    made.sim.stop()


def build_world(
    tmp_path: Path, fleet_remote: Callable[..., tuple[Path, Path]], *, md: bool = False
) -> World:
    """The controller stories' world, started; with ``md`` its pools are MachineDeployments."""
    source = write_fleet(tmp_path / "source", md=md)
    set_image(source, "os-2", "os-1")
    fleet_yaml = source / "fleet.yaml"
    fleet_yaml.write_text(fleet_yaml.read_text().replace("  rollout:\n", OS3 + "  rollout:\n"))
    bare, work = fleet_remote(source)
    audit = tmp_path / "audit.jsonl"
    sim = Simulator(
        work,
        initial="declared",
        time_scale=SIM_SCALE,
        audit_log=audit,
        kubeconfig_out=tmp_path / "kubeconfig",
    ).start()
    status = StatusWriter(tmp_path / "reader", Remote(f"file://{bare}"), branch="gitops/status")
    return World(tmp_path, bare, work, sim, audit, status)


# -- a controller in a thread of this process ------------------------------------------------


@dataclass
class Story:
    world: World
    controller: Controller
    status: StatusWriter


@contextlib.contextmanager
def run_story(world: World, url: str | None = None) -> Iterator[Story]:
    """The loop in a thread, polling ``url`` (default: the bare repository) every 0.2 s and
    writing status at once."""
    remote = Remote(url or world.url, branch="main")
    status = StatusWriter(world.root / "status-cache", remote, branch="gitops/status")
    controller = Controller(
        Mirror(world.root / "cache", remote),
        connect(world.sim.kubeconfig_path),
        writer=CoalescingWriter(status, interval=0.0),
        time_scale=POLICY_SCALE,
    )
    thread = threading.Thread(target=lambda: controller.run(interval=0.2), daemon=True)
    thread.start()
    try:
        yield Story(world, controller, status)
    finally:
        controller.stop()
        thread.join(10)


@pytest.fixture
def story(world: World) -> Iterator[Story]:
    with run_story(world) as running:
        yield running


# -- gitops run as a process -----------------------------------------------------------------

_BANNER = re.compile(r"gitops run: .*; http (?P<address>\S+); identity (?P<identity>\S+)")


@dataclass
class RunProcess:
    """One ``gitops run`` child process, its stderr in ``log_path`` (JSON lines)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _banner: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def find(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return next((line for line in self.logs() if predicate(line)), None)

    def wait_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0, what: str = ""
    ) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            assert self.proc.poll() is None, f"{self.name} exited: {self.text()[-3000:]}"
            return self.find(predicate)

        return until(seen, timeout, what or f"a log line of {self.name}")  # type: ignore[no-any-return]

    def _parsed_banner(self) -> dict[str, str]:
        if not self._banner:
            match = until(lambda: _BANNER.search(self.text()), 60, f"{self.name} to start")
            self._banner = match.groupdict()
        return self._banner

    @property
    def address(self) -> str:
        return self._parsed_banner()["address"]

    @property
    def identity(self) -> str:
        return self._parsed_banner()["identity"]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.address + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.address + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return err.code

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (no status flush, the Lease is not released)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


Launch = Callable[..., RunProcess]


def run_argv(world: World, name: str, *extra: str, repo: str | None = None) -> list[str]:
    """``gitops run`` for ``world`` with fast test settings; ``extra`` flags come last."""
    return [
        sys.executable,
        "-m",
        "gitops.cli",
        "run",
        "--repo",
        repo or world.url,
        "--kubeconfig",
        world.sim.kubeconfig_path,
        "--interval",
        "1s",
        "--status-interval",
        "0.5s",
        "--http-addr",
        "127.0.0.1:0",
        "--cache-dir",
        str(world.root / f"cache-{name}"),
        "--lease-namespace",
        "default",
        "--state-namespace",
        "default",
        "--time-scale",
        str(POLICY_SCALE),
        *extra,
    ]


@pytest.fixture
def gitops_run(world: World) -> Iterator[Launch]:
    """Start ``gitops run`` processes against ``world``; each is killed at the end if alive."""
    started: list[RunProcess] = []

    def launch(name: str = "a", *extra: str, repo: str | None = None) -> RunProcess:
        log_path = world.root / f"{name}-{len(started)}.log"
        with log_path.open("wb") as stderr:
            proc = subprocess.Popen(
                run_argv(world, name, *extra, repo=repo),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # a fatal error (SIGABRT, SIGSEGV) prints every thread's stack into the log
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
            )
        run = RunProcess(name, proc, log_path)
        started.append(run)
        return run

    yield launch
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)


def in_force(revision: str) -> Callable[[dict[str, Any]], bool]:
    """A log-line predicate: the controller put ``revision`` in force."""
    return lambda line: line["message"].startswith(f"Fleet revision {revision[:12]} is in force")
