"""The demo's story: one method per act, told on the stage to a view.

Demo layer. The acts, in order:

1. ``drift``: drift found and reported (a status-branch commit, a drift pull request), then
   remediated by replacement;
2. ``bump``: an engineer's pull request bumping every pool to the next image: the bot's plan
   comment, the merge, and the waves rolling canary -> staging -> prod;
3. ``broken``: a deliberately broken image in one pool: its nodes never come up, the wave's
   failure budget is spent, the rollout halts and the bot opens a revert pull request;
4. ``epilogue``: a final table and where to look.

Each act waits for what the controller does (through ``Stage``), records its outcome in the
``Summary`` and tells the ``View`` what to show. It decides no formatting and imports no
terminal library: the view (``gitops.cli.demo_view``) does the drawing.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops.demo.stage import SLUG, STATUS_BRANCH, DemoFailed, Stage, git
from gitops.demo.summary import (
    Broken,
    Bump,
    Converged,
    Injected,
    Paths,
    PoolOutcome,
    Pull,
    Summary,
    WindowShown,
)

WINDOW_NAME = "demo-window"
WINDOW_LEAD = 15.0  # seconds from writing the pull request to the window's opening
# The example's canary window (open at any hour), replaced in the bump's pull request by one
# that opens seconds later, so that the rollout is seen waiting for it.
_ANY_HOUR = re.compile(r"^( +)- name: any-hour\n(?:\1  .*\n)+", re.MULTILINE)

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


@dataclass
class PoolRow:
    """One pool as the status branch shows it, with when it started and finished moving."""

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

    def took(self, t0: float) -> float | None:
        """Seconds from ``t0`` until the pool converged, once it has."""
        return None if self.finished is None else round(self.finished - t0, 1)


@dataclass(frozen=True)
class HandMade:
    """A node the simulator patched by hand before the controller started, and how."""

    kind: str
    cluster: str
    node: str
    detail: str


class View(Protocol):
    """What the story shows; text may carry ``[style]...[/]`` markup for a terminal."""

    def act(self, title: str, text: str = "") -> None:
        """A new act begins."""

    def line(self, text: str) -> None:
        """One line of narration."""

    def injected(self, items: Sequence[HandMade]) -> None:
        """The drift the simulator started with."""

    def plan_comment(self, number: int, body: str) -> None:
        """The bot's plan comment on pull request ``number`` (Markdown)."""

    def rollout(
        self, rows: Sequence[PoolRow], t0: float
    ) -> AbstractContextManager[Callable[[], None]]:
        """A live view of ``rows`` while a rollout runs; call the callable to redraw it."""
        ...

    def fleet(self, rows: Sequence[PoolRow], now: Mapping[tuple[str, str], PoolRow]) -> None:
        """The fleet after the bump (``rows``), with the pools as they are ``now``."""

    def pulls(self, pulls: Sequence[Pull]) -> None:
        """Every pull request of the story."""


@dataclass
class Story:
    """One telling of the story on ``stage``; ``tell()`` returns the summary."""

    stage: Stage
    view: View
    keep: bool = False
    summary: Summary = field(default_factory=Summary)
    bumped_rows: list[PoolRow] = field(default_factory=list)
    t0: float = 0.0

    def __post_init__(self) -> None:
        stage = self.stage
        self.record(
            paths=Paths(
                root=str(stage.root),
                remote=str(stage.bare),
                clone=str(stage.work),
                controller_log=str(stage.log_path),
                audit=str(stage.audit_path),
            )
        )

    def record(self, **parts: Any) -> None:
        """Add the outcome of an act to the summary."""
        self.summary = dataclasses.replace(self.summary, **parts)

    def tell(self) -> Summary:
        """Every act in order, on a started stage; DemoFailed names the first that failed."""
        self.setting()
        self.drift()
        self.bump()
        self.broken()
        self.epilogue()
        return self.summary

    # -- the acts ----------------------------------------------------------------------------

    def setting(self) -> None:
        """Who is on stage, and the drift the simulator was seeded with."""
        stage = self.stage
        assert stage.fleet is not None and stage.sim is not None and stage.forge is not None
        self.view.act(
            "The stage",
            f"{stage.fleet.summary()}\n"
            f"Git remote  file://{stage.bare}\nSimulator   {stage.sim.url} (seeded with the "
            f"previous images)\nFake GitHub {stage.forge.url} ({SLUG})\n"
            f"Controller  gitops run (pid {stage.controller.pid if stage.controller else '?'}), "
            f"policy time scale {stage.time_scale:g}",
        )
        world = stage.sim.world
        injected = [
            HandMade(kind=i.kind, cluster=i.cluster, node=i.node, detail=i.detail)
            for i in (world.injected if world is not None else [])
        ]
        self.view.injected(injected)
        url = stage.dashboard()
        self.view.line(f"Dashboard   [bold]open {url} to watch[/] (live until the story ends)")
        self.record(dashboard=url)
        self.record(drift_injected=tuple(Injected(i.kind, i.cluster, i.node) for i in injected))

    def drift(self) -> None:
        """1. The drift is reported on the status branch and a pull request, then replaced."""
        stage, view = self.stage, self.view
        view.act("1. Drift found and reported")
        first = stage.until("the first status commit", stage.status_commits, 60)
        view.line(f"status branch {STATUS_BRANCH}: [green]{first[-1]}[/]")
        drift_prs = stage.until("a drift pull request", lambda: stage.pulls("gitops/drift/"), 60)
        for pr in drift_prs:
            view.line(f"drift PR [bold]#{pr.number}[/] {pr.title}  ({pr.head_ref})")
        self.record(drift_pulls=tuple(pr.number for pr in drift_prs))
        rows = self.rows()
        start = git(stage.work, "rev-parse", "HEAD")

        def clean() -> bool:
            self.refresh(rows, start)
            return all(r.converged for r in rows)

        stage.until("drift remediated by replacement", clean, 90)
        replaced = stage.audit_count("machine-created")
        view.line(
            f"[green]drift remediated:[/] {replaced} node(s) replaced by fresh ones from the "
            "declared image; every pool is back on its declared image"
        )
        self.record(drift_replacements=replaced)

    def bump(self) -> None:
        """2. An engineer's pull request, the bot's plan comment, the merge, the waves."""
        stage, view = self.stage, self.view
        view.act("2. An engineer's pull request bumps the images")
        for path in sorted((stage.work / "clusters").glob("*.yaml")):
            shutil.copyfile(stage.example / "clusters" / path.name, path)
        opens = self.declare_window()
        bumped, number = self.pull_request(
            "talos-1.9.2",
            "Roll the fleet to Talos 1.9.2",
            f"Kernel 6.12, kubelet 1.31.4. Canaries change in {WINDOW_NAME} only.",
        )
        comment = stage.until("the bot's plan comment", lambda: stage.comments(number), 30)
        view.plan_comment(number, comment[-1])
        stage.merge(number, "talos-1.9.2")
        view.line(f"PR #{number} merged: main is now [bold]{bumped[:12]}[/]")
        self.record(bump=Bump(pull=number, revision=bumped))
        wait = opens - time.time()
        view.line(
            f"canary window [bold]{WINDOW_NAME}[/] opens at "
            f"{time.strftime('%H:%M:%S', time.gmtime(opens))} UTC"
            + (f" (in {wait:.0f} s): the canary waits for it" if wait > 0 else " (already open)")
            + "; the controller wakes itself then, it does not poll"
        )
        since = time.time()

        rows = self.rows()
        self.t0 = time.monotonic()
        with view.rollout(rows, self.t0) as redraw:

            def rolled() -> bool:
                self.refresh(rows, bumped)
                redraw()
                return all(r.converged for r in rows)

            stage.until("the fleet on Talos 1.9.2", rolled, 150)
        took = time.monotonic() - self.t0
        first = min(stage.audit_times("machine-created", since), default=math.inf)
        view.line(
            f"first replacement {first - opens:+.1f} s after {WINDOW_NAME} opened "
            "(batches start only when they can finish before it closes)"
        )
        self.record(
            window=WindowShown(
                name=WINDOW_NAME,
                opens=opens,
                first_replacement=first,
                comment_says_when="can start next" in comment[-1],
            )
        )
        view.line(f"[green]converged[/] at {bumped[:12]} in {took:.1f} s")
        self.record(converged=Converged(revision=bumped, seconds=round(took, 1)))
        self.bumped_rows = rows

    def broken(self) -> None:
        """3. A broken image in one pool: the halt and the bot's revert pull request."""
        stage, view = self.stage, self.view
        view.act("3. A broken image in one pool")
        cluster, pool = BROKEN_POOL
        fleet_yaml = stage.work / "fleet.yaml"
        text = fleet_yaml.read_text()
        anchor = "    # GPU nodes boot the same releases"
        fleet_yaml.write_text(text.replace(anchor, BROKEN_CATALOG + anchor, 1))
        path = stage.work / "clusters" / f"{cluster}.yaml"
        text = path.read_text()
        at = text.index(f"- name: {pool}")
        path.write_text(
            text[:at] + text[at:].replace("image: talos-1.9.2", f"image: {BROKEN_IMAGE}", 1)
        )
        broken, number = self.pull_request(
            "talos-rc", f"Try {BROKEN_IMAGE} on {cluster}/{pool}", "Should be fine."
        )
        stage.merge(number, "talos-rc")
        view.line(
            f"PR #{number} merged: {cluster}/{pool} declares [bold red]{BROKEN_IMAGE}[/], whose "
            "installer never boots"
        )
        rows = self.rows()
        t1 = time.monotonic()
        with view.rollout(rows, t1) as redraw:

            def reverted() -> list[Any]:
                self.refresh(rows, broken)
                redraw()
                return stage.pulls("gitops/revert/")

            revert = stage.until("the halt and the revert pull request", reverted, 90)[0]
        files = stage.status_files()
        doc = files.get(f"status/{cluster}.yaml") or {}
        halt = stage.halt_reason(files)
        view.line(f"[bold red]halted:[/] {halt}")
        view.line(f"created nodes that never became Ready: {stage.failed_nodes()}")
        view.line(f"revert PR [bold]#{revert.number}[/] {revert.title}  ({revert.head_ref})")
        self.record(
            broken=Broken(
                pull=number,
                revision=broken,
                cluster=cluster,
                pool=pool,
                image=BROKEN_IMAGE,
                halt=halt,
                cluster_status=_conditions(doc),
            ),
            revert_pull=Pull(
                number=revert.number, title=revert.title, head=revert.head_ref, state=revert.state
            ),
        )

    def epilogue(self) -> None:
        """4. Where things stand: the fleet, the pull requests, the status branch."""
        stage, view = self.stage, self.view
        view.act("4. Where things stand")
        now = {(r.cluster, r.pool): r for r in self.rows()}
        self.refresh(list(now.values()))
        view.fleet(self.bumped_rows, now)
        commits = stage.status_commits()
        pulls = stage.pulls()
        self.record(
            status_commits=len(commits),
            pools=tuple(
                PoolOutcome(
                    cluster=r.cluster,
                    pool=r.pool,
                    wave=r.wave,
                    image=r.declared,
                    replicas=r.replicas,
                    on_target=r.on_target,
                    converged=r.converged,
                    seconds=r.took(self.t0),
                )
                for r in self.bumped_rows
            ),
            pulls=tuple(
                Pull(number=p.number, title=p.title, head=p.head_ref, state=p.state) for p in pulls
            ),
        )
        view.pulls(
            [Pull(p.number, p.title, p.head_ref, "merged" if p.merged else p.state) for p in pulls]
        )
        view.line(
            f"Status branch: {len(commits)} commits; newest:\n  "
            + "\n  ".join(commits[:5])
            + f"\nRead it: git --git-dir {stage.bare} log --stat {STATUS_BRANCH}"
            + ("" if self.keep else "  (run gitops demo --keep to keep the repositories)")
        )
        assert self.summary.dashboard is not None
        page = stage.page_status(self.summary.dashboard)
        self.record(dashboard_page=page)
        view.line(
            f"Dashboard: {self.summary.dashboard} shows {page.status} at {page.revision[:12]}"
        )

    # -- helpers of the acts -----------------------------------------------------------------

    def declare_window(self) -> float:
        """Replace the canary ring's window in the clone by one opening ``WINDOW_LEAD`` seconds
        from now (a six-field schedule, to the second, in UTC); return when it opens."""
        path = self.stage.work / "fleet.yaml"
        text = path.read_text()
        match = _ANY_HOUR.search(text)
        if match is None:
            raise DemoFailed("fleet.yaml has no any-hour window on the canary ring to replace")
        opens = math.ceil(time.time() + WINDOW_LEAD)
        at = time.gmtime(opens)
        pad = match.group(1)
        window = (
            f"{pad}- name: {WINDOW_NAME}\n"
            f'{pad}  schedule: "{at.tm_sec} {at.tm_min} {at.tm_hour} * * *"\n'
            f"{pad}  duration: 30m\n"
            f"{pad}  covers: image\n"
        )
        path.write_text(text[: match.start()] + window + text[match.end() :])
        return float(opens)

    def pull_request(self, branch: str, title: str, body: str) -> tuple[str, int]:
        head, number = self.stage.pull_request(branch, title, body)
        self.view.line(f"PR [bold]#{number}[/] opened by dana: {title}")
        return head, number

    def rows(self) -> list[PoolRow]:
        """Every pool of the fleet, in wave order, not yet read from the status branch."""
        fleet = self.stage.fleet
        assert fleet is not None
        rows = []
        for members in fleet.waves:
            for name in sorted(members.clusters):
                doc = fleet.cluster(name)
                assert doc is not None
                for pool in doc.spec.node_pools:
                    rows.append(PoolRow(members.wave.name, name, pool.name, pool.replicas))
        return rows

    def refresh(self, rows: list[PoolRow], revision: str | None = None) -> None:
        """Read ``rows`` from the status branch (only status of ``revision``, when given)."""
        files = self.stage.status_files()
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


def _conditions(doc: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(c.get("type")): f"{c.get('status')} {c.get('reason', '')}".strip()
        for c in doc.get("conditions") or []
    }
