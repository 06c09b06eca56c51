"""Live progress of ``gitops apply``: bars per wave, cluster and pool, and an event log.

Entry layer (presentation only). Fed with each plan the executor acts on and each event it
emits (the executor's ``on_event`` is a plain callable); renders with rich on a terminal, or
one plain line per event when piped. It decides nothing and never touches the clusters.
"""

from __future__ import annotations

import collections
import threading
from datetime import UTC, datetime

import click
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from gitops.fleet import Fleet
from gitops.plan import Plan, PoolPlan
from gitops.rollout.executor import Event

_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}


def on_target(pool: PoolPlan) -> int:
    """Nodes of the pool that already run the declared image and configuration."""
    return max(0, min(pool.replicas, pool.machines) - pool.outdated - pool.drifted)


class Progress:
    """Holds the latest plan and the recent events; ``render`` draws them."""

    def __init__(self, events: int = 12) -> None:
        self._lock = threading.Lock()
        self.plan: Plan | None = None
        self.events: collections.deque[Event] = collections.deque(maxlen=events)

    def update(self, plan: Plan) -> None:
        with self._lock:
            self.plan = plan

    def event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def __rich__(self) -> RenderableType:
        return self.render()

    def render(self) -> RenderableType:
        with self._lock:
            plan, events = self.plan, list(self.events)
        parts: list[RenderableType] = []
        if plan is not None:
            table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
            for column in ("wave / cluster / pool", "progress", "nodes", "status"):
                table.add_column(column)
            for wave in plan.waves:
                pools = [p for c in wave.clusters for p in c.pools]
                done, total = sum(on_target(p) for p in pools), sum(p.replicas for p in pools)
                table.add_row(
                    Text(f"{wave.index}. {wave.name}", style="bold"),
                    _bar(done, total),
                    f"{done}/{total}",
                    wave.status,
                )
                for cluster in wave.clusters:
                    cdone = sum(on_target(p) for p in cluster.pools)
                    ctotal = sum(p.replicas for p in cluster.pools)
                    table.add_row(
                        f"   {cluster.name}",
                        _bar(cdone, ctotal),
                        f"{cdone}/{ctotal}",
                        cluster.status,
                    )
                    for pool in cluster.pools:
                        table.add_row(
                            f"      {pool.name} → {pool.image}",
                            _bar(on_target(pool), pool.replicas),
                            f"{on_target(pool)}/{pool.replicas}",
                            pool.status,
                        )
            parts.append(
                Text(
                    f"plan {plan.id}: {plan.status}" + (f" — {plan.reason}" if plan.reason else ""),
                    style="bold",
                )
            )
            parts.append(table)
        for event in events:
            stamp = datetime.fromtimestamp(event.time).strftime("%H:%M:%S")
            where = "/".join(x for x in (event.cluster, event.pool) if x)
            parts.append(
                Text(
                    f"{stamp} {where + ': ' if where else ''}{event.message}",
                    style=_STYLE.get(event.level, ""),
                )
            )
        return Group(*parts)


def _bar(done: int, total: int) -> ProgressBar:
    return ProgressBar(total=max(total, 1), completed=done, width=30)


class EventLines:
    """``apply``'s events as plain lines on stdout, for logs: time, wave, cluster, pool, node."""

    def __init__(self, fleet: Fleet, progress: Progress) -> None:
        self.progress = progress
        self.waves = {
            cluster: members.wave.name for members in fleet.waves for cluster in members.clusters
        }
        self.wave_names = {members.wave.name for members in fleet.waves}

    def __call__(self, event: Event) -> None:
        self.progress.event(event)
        stamp = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A wave's own events (started, converged, soaked) name the wave as their subject.
        wave_event = not event.cluster and event.subject in self.wave_names
        fields = [
            ("wave", event.subject if wave_event else self.waves.get(event.cluster, "")),
            ("cluster", event.cluster),
            ("pool", event.pool),
            ("node", "" if wave_event else event.subject),
        ]
        where = " ".join(f"{key}={value}" for key, value in fields if value)
        click.echo(f"{stamp} {event.level:<7} {where + ': ' if where else ''}{event.message}")
