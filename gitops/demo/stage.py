"""The demo's stage: the repositories, the simulator, the fake forge and the controller.

Demo layer. ``Stage.start`` copies ``fleet-repo-example`` into a temporary git repository (a
bare remote served over ``file://`` and an engineer's clone, every pool on the previous image
of its family), starts the fleet simulator seeded with those previous images and some
hand-made drift, starts the simulator's stand-in for GitHub, and runs the real controller
(``gitops run``) as a child process against them; ``stop`` stops all of them. In between it
answers the story's questions about the world (status branch, pull requests, audit log) and
acts as the engineer (branches, pull requests, merges). It prints nothing and drives git
through the ``git`` command line (never the ``git`` package).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML

from gitops.demo.summary import Page
from gitops.fleet import Fleet, load
from gitops.kube import capi
from gitops.kube.errors import BadConfig
from gitops.sim import TOKEN as SIM_TOKEN
from gitops.sim import Simulator
from gitops.sim.forges import FakeGitHub, FakePull

T = TypeVar("T")

SLUG = "acme/fleet"
TOKEN = "demo-token"  # the fake forge's token: a stand-in, not a secret
STATUS_BRANCH = "gitops/status"
DRIFT = "kernel:2,taint:1"  # hand-patched nodes the simulator starts with
_IMAGE_LINE = re.compile(r"^(\s*(?:-\s+)?image:\s*)(\S+)", re.MULTILINE)
_BANNER = re.compile(r"gitops run: .*; http (\S+); identity")  # where the controller listens
_ENV = {
    "GIT_AUTHOR_NAME": "Dana Engineer",
    "GIT_AUTHOR_EMAIL": "dana@acme.example",
    "GIT_COMMITTER_NAME": "Dana Engineer",
    "GIT_COMMITTER_EMAIL": "dana@acme.example",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


class DemoFailed(Exception):
    """A step of the story did not happen in time; the message says which."""


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` as the demo's engineer; its output, or DemoFailed."""
    env = {**os.environ, **_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoFailed(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _git_or_none(cwd: Path, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def find_example() -> Path:
    """``fleet-repo-example`` of the working directory, else of the source checkout."""
    for candidate in (Path("fleet-repo-example"), Path(__file__).parents[2] / "fleet-repo-example"):
        if (candidate / "fleet.yaml").is_file():
            return candidate.resolve()
    raise DemoFailed("cannot find fleet-repo-example/: run the demo from the project's root")


def _set_images(root: Path, choose: Callable[[str, str], str]) -> None:
    """Rewrite every ``image:`` line of the cluster files: ``choose(file, image)``."""
    for path in sorted((root / "clusters").glob("*.yaml")):
        cluster = path.stem

        def swap(m: re.Match[str]) -> str:
            return m.group(1) + choose(cluster, m.group(2))  # noqa: B023  (called at once)

        path.write_text(_IMAGE_LINE.sub(swap, path.read_text()))


@dataclass
class Stage:
    """The processes and repositories of one run of the demo, under ``root``."""

    example: Path
    root: Path
    time_scale: float
    deadline: float
    http_addr: str = "127.0.0.1:0"
    sim: Simulator | None = None
    forge: FakeGitHub | None = None
    controller: subprocess.Popen[bytes] | None = None
    fleet: Fleet | None = None
    _status_read: tuple[str, dict[str, Any]] = field(default=("", {}), repr=False)

    @property
    def bare(self) -> Path:
        return self.root / "fleet.git"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def log_path(self) -> Path:
        return self.root / "controller.log"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"

    # -- setting the stage and taking it down -----------------------------------------------

    def start(self) -> None:
        """Repositories, simulator, fake GitHub and the controller, in that order."""
        self.fleet = load(self.example)
        fleet = self.fleet
        shutil.copytree(self.example, self.work)
        _set_images(self.work, lambda _c, image: fleet.previous_image(image) or image)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "Acme fleet: every pool on the previous Talos release")
        git(self.root, "clone", "-q", "--bare", str(self.work), str(self.bare))
        git(self.work, "remote", "add", "origin", f"file://{self.bare}")
        git(self.work, "fetch", "-q", "origin")
        self.sim = Simulator(
            self.example,
            initial="previous",
            drift=DRIFT,
            seed=7,
            time_scale=self.time_scale * 2,
            audit_log=self.audit_path,
            kubeconfig_out=self.root / "kubeconfig",
        ).start()
        self.forge = FakeGitHub((SLUG,), token=TOKEN)
        self.forge.start()
        token = self.root / "forge-token"
        token.write_text(TOKEN)
        argv = [
            sys.executable,
            "-m",
            "gitops.cli",
            "run",
            "--repo",
            f"file://{self.bare}",
            "--kubeconfig",
            self.sim.kubeconfig_path,
            "--interval",
            "0.5s",
            "--status-interval",
            "0.5s",
            "--http-addr",
            self.http_addr,
            "--cache-dir",
            str(self.root / "cache"),
            "--lease-namespace",
            "default",
            "--state-namespace",
            "default",
            "--time-scale",
            str(self.time_scale),
            "--forge",
            "github",
            "--forge-url",
            self.forge.url,
            "--forge-token-file",
            str(token),
            "--repo-slug",
            SLUG,
            "--drift-persistence",
            "1",
            "--pr-sweep-interval",
            "1s",
        ]
        with self.log_path.open("wb") as stderr:
            self.controller = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
            )

    def stop(self) -> None:
        """Stop the controller (SIGTERM, so it flushes its status), the forge, the simulator."""
        proc, self.controller = self.controller, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.forge is not None:
            self.forge.stop()
        if self.sim is not None:
            self.sim.stop()

    # -- reading the world -------------------------------------------------------------------

    def until(self, what: str, condition: Callable[[], T], timeout: float) -> T:
        """``condition()`` once it is truthy; DemoFailed after ``timeout`` or the deadline."""
        limit = min(time.monotonic() + timeout, self.deadline)
        while True:
            value = condition()
            if value:
                return value
            if self.controller is not None and self.controller.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise DemoFailed(f"the controller exited while waiting for {what}:\n{tail}")
            if time.monotonic() > limit:
                raise DemoFailed(f"not reached in time: {what}")
            time.sleep(0.1)

    def dashboard(self) -> str:
        """The address of the controller's page, once the controller says where it listens."""

        def banner() -> str:
            match = _BANNER.search(self.log_path.read_text(errors="replace"))
            return match.group(1) + "/" if match else ""

        return str(self.until("the controller's HTTP listener", banner, 60))

    def page_status(self, url: str) -> Page:
        """What the page's data says of the fleet now (from /api/v1/fleet)."""
        with urllib.request.urlopen(url + "api/v1/fleet", timeout=5) as response:
            doc = json.load(response)
        return Page(
            status=doc["status"],
            revision=doc["revision"]["text"],
            revision_url=doc["revision"]["url"],
        )

    def status_files(self) -> dict[str, Any]:
        """The YAML files of the status branch, parsed, by path.

        Read again only when the branch moved: the story polls this ten times a second, and
        reading a dozen files through git each time took a core from the controller it watches.
        """
        tip = (_git_or_none(self.bare, "rev-parse", "--verify", "-q", STATUS_BRANCH) or "").strip()
        if not tip:
            return {}
        if self._status_read[0] == tip:
            return self._status_read[1]
        listing = _git_or_none(self.bare, "ls-tree", "-r", "--name-only", tip) or ""
        files: dict[str, Any] = {}
        for name in listing.split():
            if name.endswith(".yaml"):
                text = _git_or_none(self.bare, "show", f"{tip}:{name}")
                if text:
                    files[name] = YAML(typ="safe").load(text)
        self._status_read = (tip, files)
        return files

    def status_commits(self) -> list[str]:
        """``<short sha> <subject>`` of the status branch, newest first."""
        text = _git_or_none(self.bare, "log", "--format=%h %s", STATUS_BRANCH)
        return text.splitlines() if text else []

    def pulls(self, prefix: str = "") -> list[FakePull]:
        """The fake forge's pull requests whose head branch starts with ``prefix``."""
        assert self.forge is not None
        return [p for p in self.forge.pulls() if p.head_ref.startswith(prefix)]

    def comments(self, number: int) -> list[str]:
        """The bodies of the comments on pull request ``number``."""
        assert self.forge is not None
        return [c.body for c in self.forge.comments(number)]

    def audit_count(self, event: str) -> int:
        """Simulated state changes of kind ``event`` in the simulator's audit log."""
        return sum(1 for e in self._audit() if e.get("event") == event)

    def audit_times(self, event: str, since: float) -> list[float]:
        """When simulated state changes of kind ``event`` happened, from ``since`` on."""
        return [
            float(e["time"])
            for e in self._audit()
            if e.get("event") == event and float(e.get("time", 0.0)) >= since
        ]

    def failed_nodes(self) -> int:
        """Machines that failed, and nodes that never booted, in the simulated fleet."""
        failed = 0
        for obj in self._machines():
            if (obj.get("status") or {}).get("phase") == "Failed" or capi.failure(obj):
                failed += 1
        return failed + self.audit_count("node-boot-failed")

    def halt_reason(self, files: dict[str, Any]) -> str:
        """The rollout's halt as the status branch (else the controller's log) states it."""
        for name in sorted(files):
            blob = json.dumps(files[name])
            match = re.search(r"rollout halted: [^\"]*", blob)
            if match:
                return match.group(0)
        log = self.log_path.read_text(errors="replace")
        match = re.search(r"rollout halted: [^\"\n]*", log)
        return match.group(0) if match else "halted (reason not found on the status branch)"

    def _audit(self) -> list[dict[str, Any]]:
        events = []
        for line in self.audit_path.read_text(errors="replace").splitlines():
            if '"change"' in line:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def _machines(self) -> list[dict[str, Any]]:
        """Every Machine, in the Cluster API version the simulator serves best (as the
        controller chooses it: v1beta2 when served, else v1beta1)."""
        try:
            version = capi.choose(capi.served(self._get("/apis")))
            items = self._get(f"/apis/{capi.GROUP}/{version}/machines").get("items") or []
        except (OSError, ValueError, BadConfig):  # BadConfig: no Cluster API version served
            return []
        return list(items)

    def _get(self, path: str) -> dict[str, Any]:
        assert self.sim is not None
        request = urllib.request.Request(
            self.sim.url + path, headers={"Authorization": f"Bearer {SIM_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
        return body

    # -- the engineer ------------------------------------------------------------------------

    def pull_request(self, branch: str, title: str, body: str) -> tuple[str, int]:
        """Commit the clone's changes on ``branch``, push it, open a pull request: (sha, #)."""
        assert self.forge is not None
        git(self.work, "checkout", "-q", "-b", branch)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", title)
        git(self.work, "push", "-q", "origin", branch)
        head = git(self.work, "rev-parse", "HEAD")
        self.forge.set_branch(branch, head)
        pull = self.forge.open_pull(branch, title=title, body=body, author="dana")
        return head, pull.number

    def merge(self, number: int, branch: str) -> None:
        """Fast-forward main to ``branch``, push it, and mark the pull request merged."""
        assert self.forge is not None
        git(self.work, "checkout", "-q", "main")
        git(self.work, "merge", "-q", "--ff-only", branch)
        git(self.work, "push", "-q", "origin", "main")
        self.forge.merge(number)
