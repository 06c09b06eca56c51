"""``gitops demo``: the whole story on a laptop, with no cluster and no network.

Demo layer (between the CLI and the controller). It copies ``fleet-repo-example`` into a
temporary git repository (a bare remote served over ``file://`` and an engineer's clone, every
pool on the previous image of its family), starts the fleet simulator seeded with those
previous images and some hand-made drift, starts the simulator's stand-in for GitHub, and runs
the real controller (``gitops run``) as a child process against them. Then it tells what
happens:

1. drift found and reported (a status-branch commit, a drift pull request), then remediated by
   replacement;
2. an engineer's pull request bumping every pool to the next image: the bot's plan comment,
   the merge, and the waves rolling canary -> staging -> prod;
3. a deliberately broken image in one pool: its nodes never come up, the wave's failure budget
   is spent, the rollout halts and the bot opens a revert pull request;
4. a final table and where to look.

All along, the controller's dashboard shows the same story live: the demo prints its address
("open http://127.0.0.1:PORT/ to watch") as soon as the controller listens, and the page stays
up until the story ends.

Everything it starts is stopped in ``finally``; ``--keep`` keeps the temporary directory.
It drives git through the ``git`` command line (never the ``git`` package).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from ruamel.yaml import YAML

from gitops.fleet import Fleet, FleetError, load
from gitops.sim.forges import FakeGitHub, FakePull
from gitops.sim.server import TOKEN as SIM_TOKEN
from gitops.sim.server import Simulator

SLUG = "acme/fleet"
TOKEN = "demo-token"  # the fake forge's token: a stand-in, not a secret
STATUS_BRANCH = "gitops/status"
DRIFT = "kernel:2,taint:1"  # hand-patched nodes the simulator starts with
BROKEN_IMAGE = "talos-1.9.3-rc.0"
BROKEN_POOL = ("canary-eu-1", "general")
BROKEN_CATALOG = f"""\
    # A release candidate built by hand: its installer image never boots (the demo's bad day).
    {BROKEN_IMAGE}:
      family: talos
      osImage: Talos (v1.9.3-rc.0)
      kernelVersion: 6.12.11-talos
      kubeletVersion: v1.31.5
      containerRuntimeVersion: containerd://2.0.2
      source: ghcr.io/acme/installer:v1.9.3-rc.0-broken
"""
_IMAGE_LINE = re.compile(r"^(\s*(?:-\s+)?image:\s*)(\S+)", re.MULTILINE)
_BANNER = re.compile(
    r"gitops run: .*; http (\S+); identity"
)  # the controller says where it listens
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


def _git(cwd: Path, *args: str) -> str:
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
    for candidate in (Path("fleet-repo-example"), Path(__file__).parents[1] / "fleet-repo-example"):
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
class PoolRow:
    wave: str
    cluster: str
    pool: str
    replicas: int
    declared: str = ""
    observed: dict[str, int] = field(default_factory=dict)
    on_target: int = 0
    status: str = ""
    started: float | None = None
    finished: float | None = None

    @property
    def converged(self) -> bool:
        return self.observed == {self.declared: self.replicas} and self.on_target == self.replicas


@dataclass
class Demo:
    """One run of the story; ``run()`` returns the JSON summary."""

    example: Path
    root: Path
    time_scale: float
    console: Console
    deadline: float
    keep: bool = False
    http_addr: str = "127.0.0.1:0"
    sim: Simulator | None = None
    forge: FakeGitHub | None = None
    controller: subprocess.Popen[bytes] | None = None
    fleet: Fleet | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def bare(self) -> Path:
        return self.root / "fleet.git"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def log_path(self) -> Path:
        return self.root / "controller.log"

    # -- setting the stage -------------------------------------------------------------------

    def setup(self) -> None:
        self.fleet = load(self.example)
        fleet = self.fleet
        shutil.copytree(self.example, self.work)
        _set_images(self.work, lambda _c, image: fleet.previous_image(image) or image)
        _git(self.work, "init", "-q", "-b", "main")
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-qm", "Acme fleet: every pool on the previous Talos release")
        _git(self.root, "clone", "-q", "--bare", str(self.work), str(self.bare))
        _git(self.work, "remote", "add", "origin", f"file://{self.bare}")
        _git(self.work, "fetch", "-q", "origin")
        self.summary["paths"] = {
            "root": str(self.root),
            "remote": str(self.bare),
            "clone": str(self.work),
            "controllerLog": str(self.log_path),
            "audit": str(self.root / "audit.jsonl"),
        }
        self.sim = Simulator(
            self.example,
            initial="previous",
            drift=DRIFT,
            seed=7,
            time_scale=self.time_scale * 2,
            audit_log=self.root / "audit.jsonl",
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

    def until(self, what: str, condition: Callable[[], Any], timeout: float) -> Any:
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

    def page_status(self, url: str) -> dict[str, str]:
        """What the page's data says of the fleet now (from /api/v1/fleet)."""
        with urllib.request.urlopen(url + "api/v1/fleet", timeout=5) as response:
            doc = json.load(response)
        return {
            "status": doc["status"],
            "revision": doc["revision"]["text"],
            "revisionUrl": doc["revision"]["url"],
        }

    def status_files(self) -> dict[str, Any]:
        listing = _git_or_none(self.bare, "ls-tree", "-r", "--name-only", STATUS_BRANCH)
        if not listing:
            return {}
        files: dict[str, Any] = {}
        for name in listing.split():
            if name.endswith(".yaml"):
                text = _git_or_none(self.bare, "show", f"{STATUS_BRANCH}:{name}")
                if text:
                    files[name] = YAML(typ="safe").load(text)
        return files

    def status_commits(self) -> list[str]:
        text = _git_or_none(self.bare, "log", "--format=%h %s", STATUS_BRANCH)
        return text.splitlines() if text else []

    def rows(self) -> list[PoolRow]:
        assert self.fleet is not None
        rows = []
        for members in self.fleet.waves:
            for name in sorted(members.clusters):
                doc = self.fleet.cluster(name)
                assert doc is not None
                for pool in doc.spec.node_pools:
                    rows.append(PoolRow(members.wave.name, name, pool.name, pool.replicas))
        return rows

    def refresh(self, rows: list[PoolRow], revision: str | None = None) -> dict[str, Any]:
        files = self.status_files()
        now = time.monotonic()
        for row in rows:
            doc = files.get(f"status/{row.cluster}.yaml") or {}
            if revision is not None and doc.get("fleetRevision") != revision:
                continue
            pool = next((p for p in doc.get("pools") or [] if p.get("name") == row.pool), None)
            if pool is None:
                continue
            row.declared = str(pool.get("declaredImage", ""))
            row.observed = {str(k): int(v) for k, v in (pool.get("observedImages") or {}).items()}
            row.on_target = int(pool.get("nodesOnTarget", 0))
            row.status = str(pool.get("status", ""))
            if row.started is None and row.observed != {row.declared: row.replicas}:
                row.started = now
            if row.converged and row.finished is None and row.started is not None:
                row.finished = now
        return files

    def pulls(self, prefix: str) -> list[FakePull]:
        assert self.forge is not None
        return [p for p in self.forge.pulls() if p.head_ref.startswith(prefix)]

    # -- the story ---------------------------------------------------------------------------

    def say(self, title: str, text: str = "") -> None:
        self.console.rule(f"[bold cyan]{title}")
        if text:
            self.console.print(text)

    def run(self) -> dict[str, Any]:
        c = self.console
        assert self.fleet is not None and self.sim is not None and self.forge is not None
        self.say(
            "The stage",
            f"{self.fleet.summary()}\n"
            f"Git remote  file://{self.bare}\nSimulator   {self.sim.url} (seeded with the "
            f"previous images)\nFake GitHub {self.forge.url} ({SLUG})\n"
            f"Controller  gitops run (pid {self.controller.pid if self.controller else '?'}), "
            f"policy time scale {self.time_scale:g}",
        )
        world = self.sim.world
        injected = list(world.injected) if world is not None else []
        table = Table("kind", "cluster", "node", "what changed", title="Drift injected by hand")
        for item in injected:
            table.add_row(item.kind, item.cluster, item.node, item.detail)
        c.print(table)
        url = self.dashboard()
        self.summary["dashboard"] = url
        c.print(f"Dashboard   [bold]open {url} to watch[/] (live until the story ends)")
        self.summary["driftInjected"] = [
            {"kind": i.kind, "cluster": i.cluster, "node": i.node} for i in injected
        ]

        # 1. drift
        self.say("1. Drift found and reported")
        first = self.until("the first status commit", self.status_commits, 60)
        c.print(f"status branch {STATUS_BRANCH}: [green]{first[-1]}[/]")
        drift_prs = self.until("a drift pull request", lambda: self.pulls("gitops/drift/"), 60)
        for pr in drift_prs:
            c.print(f"drift PR [bold]#{pr.number}[/] {pr.title}  ({pr.head_ref})")
        self.summary["driftPulls"] = [pr.number for pr in drift_prs]
        rows = self.rows()
        start = _git(self.work, "rev-parse", "HEAD")

        def clean() -> bool:
            self.refresh(rows, start)
            return all(r.converged for r in rows)

        self.until("drift remediated by replacement", clean, 90)
        replaced = self._audit_count("machine-created")
        c.print(
            f"[green]drift remediated:[/] {replaced} node(s) replaced by fresh ones from the "
            "declared image; every pool is back on its declared image"
        )
        self.summary["driftReplacements"] = replaced

        # 2. the engineer's bump
        self.say("2. An engineer's pull request bumps the images")
        example = self.example
        for path in sorted((self.work / "clusters").glob("*.yaml")):
            shutil.copyfile(example / "clusters" / path.name, path)
        bumped, number = self.pull_request(
            "talos-1.9.2", "Roll the fleet to Talos 1.9.2", "Kernel 6.12, kubelet 1.31.4."
        )
        comment = self.until("the bot's plan comment", lambda: self.forge_comments(number), 30)
        body = comment[-1]
        lines = body.splitlines()
        excerpt = "\n".join(lines[:28]) + ("\n\n…" if len(lines) > 28 else "")
        c.print(Panel(Markdown(excerpt), title=f"plan comment on PR #{number}", expand=False))
        self.merge(number, "talos-1.9.2")
        c.print(f"PR #{number} merged: main is now [bold]{bumped[:12]}[/]")
        self.summary["bump"] = {"pull": number, "revision": bumped}

        rows = self.rows()
        t0 = time.monotonic()
        with Live(self.progress(rows, t0), console=c, refresh_per_second=4) as live:

            def rolled() -> bool:
                self.refresh(rows, bumped)
                live.update(self.progress(rows, t0))
                return all(r.converged for r in rows)

            self.until("the fleet on Talos 1.9.2", rolled, 150)
        took = time.monotonic() - t0
        c.print(f"[green]converged[/] at {bumped[:12]} in {took:.1f} s")
        self.summary["converged"] = {"revision": bumped, "seconds": round(took, 1)}
        final_rows = rows

        # 3. a broken image
        self.say("3. A broken image in one pool")
        cluster, pool = BROKEN_POOL
        fleet_yaml = self.work / "fleet.yaml"
        text = fleet_yaml.read_text()
        anchor = "    # GPU nodes boot the same releases"
        fleet_yaml.write_text(text.replace(anchor, BROKEN_CATALOG + anchor, 1))
        path = self.work / "clusters" / f"{cluster}.yaml"
        text = path.read_text()
        at = text.index(f"- name: {pool}")
        path.write_text(
            text[:at] + text[at:].replace("image: talos-1.9.2", f"image: {BROKEN_IMAGE}", 1)
        )
        broken, number = self.pull_request(
            "talos-rc", f"Try {BROKEN_IMAGE} on {cluster}/{pool}", "Should be fine."
        )
        self.merge(number, "talos-rc")
        c.print(
            f"PR #{number} merged: {cluster}/{pool} declares [bold red]{BROKEN_IMAGE}[/], whose "
            "installer never boots"
        )
        rows = self.rows()
        t1 = time.monotonic()
        with Live(self.progress(rows, t1), console=c, refresh_per_second=4) as live:

            def reverted() -> list[FakePull]:
                self.refresh(rows, broken)
                live.update(self.progress(rows, t1))
                return self.pulls("gitops/revert/")

            revert = self.until("the halt and the revert pull request", reverted, 90)[0]
        files = self.status_files()
        doc = files.get(f"status/{cluster}.yaml") or {}
        halt = self._halt_reason(files)
        c.print(f"[bold red]halted:[/] {halt}")
        c.print(f"created nodes that never became Ready: {self._audit_failed()}")
        c.print(f"revert PR [bold]#{revert.number}[/] {revert.title}  ({revert.head_ref})")
        self.summary["broken"] = {
            "pull": number,
            "revision": broken,
            "cluster": cluster,
            "pool": pool,
            "image": BROKEN_IMAGE,
            "halt": halt,
            "clusterStatus": _conditions(doc),
        }
        self.summary["revertPull"] = {
            "number": revert.number,
            "title": revert.title,
            "head": revert.head_ref,
            "state": revert.state,
        }

        # 4. the end
        self.say("4. Where things stand")
        c.print(self.final_table(final_rows))
        commits = self.status_commits()
        self.summary["statusCommits"] = len(commits)
        self.summary["pools"] = [
            {
                "cluster": r.cluster,
                "pool": r.pool,
                "wave": r.wave,
                "image": r.declared,
                "replicas": r.replicas,
                "onTarget": r.on_target,
                "converged": r.converged,
                "seconds": _took(r, t0),
            }
            for r in final_rows
        ]
        self.summary["pulls"] = [
            {"number": p.number, "title": p.title, "head": p.head_ref, "state": p.state}
            for p in self.forge.pulls()
        ]
        pulls = Table("#", "title", "branch", "state", title="Pull requests (fake GitHub)")
        for p in self.forge.pulls():
            state = "merged" if p.merged else p.state
            pulls.add_row(str(p.number), p.title, p.head_ref, state)
        c.print(pulls)
        c.print(
            f"Status branch: {len(commits)} commits; newest:\n  "
            + "\n  ".join(commits[:5])
            + f"\nRead it: git --git-dir {self.bare} log --stat {STATUS_BRANCH}"
            + ("" if self.keep else "  (run gitops demo --keep to keep the repositories)")
        )
        page = self.page_status(self.summary["dashboard"])
        self.summary["dashboardPage"] = page
        c.print(
            f"Dashboard: {self.summary['dashboard']} shows {page['status']} at "
            f"{page['revision'][:12]}"
        )
        return self.summary

    # -- helpers of the story -------------------------------------------------------------

    def pull_request(self, branch: str, title: str, body: str) -> tuple[str, int]:
        assert self.forge is not None
        _git(self.work, "checkout", "-q", "-b", branch)
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-qm", title)
        _git(self.work, "push", "-q", "origin", branch)
        head = _git(self.work, "rev-parse", "HEAD")
        self.forge.set_branch(branch, head)
        pull = self.forge.open_pull(branch, title=title, body=body, author="dana")
        self.console.print(f"PR [bold]#{pull.number}[/] opened by dana: {title}")
        return head, pull.number

    def merge(self, number: int, branch: str) -> None:
        assert self.forge is not None
        _git(self.work, "checkout", "-q", "main")
        _git(self.work, "merge", "-q", "--ff-only", branch)
        _git(self.work, "push", "-q", "origin", "main")
        self.forge.merge(number)

    def forge_comments(self, number: int) -> list[str]:
        assert self.forge is not None
        return [c.body for c in self.forge.comments(number)]

    def _audit(self) -> list[dict[str, Any]]:
        path = self.root / "audit.jsonl"
        events = []
        for line in path.read_text(errors="replace").splitlines():
            if '"change"' in line:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def _audit_count(self, event: str) -> int:
        return sum(1 for e in self._audit() if e.get("event") == event)

    def _audit_failed(self) -> int:
        assert self.sim is not None
        failed = 0
        for (_ns, _name), obj in self._machines():
            status = obj.get("status") or {}
            if status.get("phase") == "Failed" or status.get("failureReason"):
                failed += 1
        return failed + self._audit_count("node-boot-failed")

    def _machines(self) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        import urllib.request

        assert self.sim is not None
        url = self.sim.url + "/apis/cluster.x-k8s.io/v1beta1/machines"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {SIM_TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                items = json.loads(response.read()).get("items") or []
        except (OSError, ValueError):
            return []
        return [((m["metadata"]["namespace"], m["metadata"]["name"]), m) for m in items]

    def _halt_reason(self, files: dict[str, Any]) -> str:
        for name in sorted(files):
            blob = json.dumps(files[name])
            match = re.search(r"rollout halted: [^\"]*", blob)
            if match:
                return match.group(0)
        log = self.log_path.read_text(errors="replace")
        match = re.search(r"rollout halted: [^\"\n]*", log)
        return match.group(0) if match else "halted (reason not found on the status branch)"

    def progress(self, rows: list[PoolRow], t0: float) -> Table:
        table = Table(title="Rollout progress (status branch)", title_justify="left")
        for column in ("wave", "cluster", "pool", "declared", "on target", "", "time"):
            table.add_column(column, no_wrap=True)
        for r in rows:
            done = r.on_target if r.declared else 0
            bar = ProgressBar(total=max(r.replicas, 1), completed=done, width=24)
            style = "green" if r.converged else ("red" if "halt" in r.status.lower() else "")
            table.add_row(
                r.wave,
                r.cluster,
                r.pool,
                r.declared or "?",
                f"[{style}]{done}/{r.replicas}[/]" if style else f"{done}/{r.replicas}",
                bar,
                _fmt(_took(r, t0)),
            )
        return table

    def final_table(self, rows: list[PoolRow]) -> Group:
        table = Table(title="The fleet after the Talos 1.9.2 rollout", title_justify="left")
        for column in ("wave", "cluster", "pool", "image", "nodes on target", "time taken"):
            table.add_column(column, no_wrap=True)
        current = {(r.cluster, r.pool): r for r in self.rows()}
        self.refresh(list(current.values()))
        for r in rows:
            now = current[(r.cluster, r.pool)]
            note = ""
            if (r.cluster, r.pool) == BROKEN_POOL:
                note = f"  [red](halted on {BROKEN_IMAGE}: {now.on_target} on target)[/]"
            table.add_row(
                r.wave,
                r.cluster,
                r.pool,
                r.declared,
                f"{r.on_target}/{r.replicas}{note}",
                _fmt(r.finished - r.started if r.finished and r.started else None),
            )
        return Group(table)


def _took(row: PoolRow, t0: float) -> float | None:
    if row.finished is not None:
        return round(row.finished - t0, 1)
    return None


def _fmt(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"


def _conditions(doc: dict[str, Any]) -> dict[str, str]:
    return {
        str(c.get("type")): f"{c.get('status')} {c.get('reason', '')}".strip()
        for c in doc.get("conditions") or []
    }


@click.command()
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.0, min_open=True),
    default=0.005,
    show_default=True,
    help="Multiply every policy duration (soak, timeouts) by X; the simulator runs at 2X.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary repositories and print their paths.")
@click.option(
    "--http-addr",
    default="127.0.0.1:0",
    show_default=True,
    help="Where the controller's dashboard listens (port 0: a free one, printed).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JSON summary of the story to this file.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=170.0,
    show_default=True,
    help="Give up (exit 1) after this many seconds.",
)
def demo(
    time_scale: float,
    keep: bool,
    http_addr: str,
    json_path: Path | None,
    timeout: float,
) -> None:
    """Tell the whole story on a simulated fleet: drift, a rollout in waves, a halt, a revert.

    Copies fleet-repo-example into a temporary git repository, starts the fleet simulator, a
    fake GitHub and the controller (gitops run), and narrates what they do. Nothing outside
    the temporary directory is touched and nothing is left running.

    Exit status: 0 when every step of the story happened, 1 otherwise.
    """
    console = Console()
    if not console.is_terminal:
        console.width = 140
    root = Path(tempfile.mkdtemp(prefix="gitops-demo-"))
    started = time.monotonic()
    try:
        example = find_example()
    except DemoFailed as err:
        raise click.ClickException(str(err)) from err
    story = Demo(
        example,
        root,
        time_scale,
        console,
        deadline=started + timeout,
        keep=keep,
        http_addr=http_addr,
    )
    summary: dict[str, Any] = {"ok": False}
    failure = ""
    try:
        story.setup()
        summary = story.run()
        summary["ok"] = True
    except (DemoFailed, FleetError) as err:
        failure = str(err)
        summary = {**story.summary, "ok": False, "error": failure}
    except KeyboardInterrupt:
        failure = "interrupted"
        summary = {**story.summary, "ok": False, "error": failure}
    finally:
        story.stop()
        summary["seconds"] = round(time.monotonic() - started, 1)
        summary["kept"] = keep
        if json_path is not None:
            json_path.write_text(json.dumps(summary, indent=2) + "\n")
        if keep:
            console.print(
                f"Kept: {root}\n  remote      {story.bare}\n  clone       {story.work}\n"
                f"  controller  {story.log_path}\n  simulator   {root / 'audit.jsonl'}"
            )
        else:
            shutil.rmtree(root, ignore_errors=True)
    console.print(f"demo took {summary['seconds']:.1f} s")
    if failure:
        raise click.ClickException(failure)
