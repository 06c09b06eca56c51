"""The demo's view: the story drawn on a terminal with rich (entry layer, presentation only).

Implements ``gitops.demo.story.View``: rules between acts, narration with rich markup, tables
of the injected drift, the rollout's live progress, the fleet at the end and the pull requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from gitops.demo.story import BROKEN_IMAGE, BROKEN_POOL, HandMade, PoolRow
from gitops.demo.summary import Pull

_EXCERPT_LINES = 28  # of the plan comment: enough to show its shape, short enough to read


class RichView:
    """Draws the story on ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def act(self, title: str, text: str = "") -> None:
        self.console.rule(f"[bold cyan]{title}")
        if text:
            self.console.print(text)

    def line(self, text: str) -> None:
        self.console.print(text)

    def injected(self, items: Sequence[HandMade]) -> None:
        table = Table("kind", "cluster", "node", "what changed", title="Drift injected by hand")
        for item in items:
            table.add_row(item.kind, item.cluster, item.node, item.detail)
        self.console.print(table)

    def plan_comment(self, number: int, body: str) -> None:
        lines = body.splitlines()
        excerpt = "\n".join(lines[:_EXCERPT_LINES])
        excerpt += "\n\n…" if len(lines) > _EXCERPT_LINES else ""
        self.console.print(
            Panel(Markdown(excerpt), title=f"plan comment on PR #{number}", expand=False)
        )

    @contextmanager
    def rollout(self, rows: Sequence[PoolRow], t0: float) -> Iterator[Callable[[], None]]:
        with Live(_progress(rows, t0), console=self.console, refresh_per_second=4) as live:
            yield lambda: live.update(_progress(rows, t0))

    def fleet(self, rows: Sequence[PoolRow], now: Mapping[tuple[str, str], PoolRow]) -> None:
        table = Table(title="The fleet after the Talos 1.9.2 rollout", title_justify="left")
        for column in ("wave", "cluster", "pool", "image", "nodes on target", "time taken"):
            table.add_column(column, no_wrap=True)
        for r in rows:
            note = ""
            if (r.cluster, r.pool) == BROKEN_POOL:
                on_target = now[(r.cluster, r.pool)].on_target
                note = f"  [red](halted on {BROKEN_IMAGE}: {on_target} on target)[/]"
            took = r.finished - r.started if r.finished and r.started else None
            table.add_row(
                r.wave,
                r.cluster,
                r.pool,
                r.declared,
                f"{r.on_target}/{r.replicas}{note}",
                _seconds(took),
            )
        self.console.print(table)

    def pulls(self, pulls: Sequence[Pull]) -> None:
        table = Table("#", "title", "branch", "state", title="Pull requests (fake GitHub)")
        for p in pulls:
            table.add_row(str(p.number), p.title, p.head, p.state)
        self.console.print(table)


def _progress(rows: Sequence[PoolRow], t0: float) -> Table:
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
            _seconds(r.took(t0)),
        )
    return table


def _seconds(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"
