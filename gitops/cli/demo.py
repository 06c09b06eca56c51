"""``gitops demo``: the flags, the terminal, and the JSON summary of the story.

Entry layer. Builds the stage and the story (``gitops.demo``) and the rich view
(``gitops.cli.demo_view``), tells the story, always takes the stage down, and writes
``--json FILE``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


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
    time_scale: float, keep: bool, http_addr: str, json_path: Path | None, timeout: float
) -> None:
    """Tell the whole story on a simulated fleet: drift, a rollout in waves, a halt, a revert.

    Copies fleet-repo-example into a temporary git repository, starts the fleet simulator, a
    fake GitHub and the controller (gitops run), and narrates what they do. Nothing outside
    the temporary directory is touched and nothing is left running.

    Exit status: 0 when every step of the story happened, 1 otherwise.
    """
    import dataclasses
    import shutil
    import tempfile

    from rich.console import Console

    from gitops.cli.demo_view import RichView
    from gitops.demo.stage import DemoFailed, Stage, find_example
    from gitops.demo.story import Story
    from gitops.demo.summary import Summary
    from gitops.fleet import FleetError

    console = Console()
    if not console.is_terminal:
        console.width = 140
    root = Path(tempfile.mkdtemp(prefix="gitops-demo-"))
    started = time.monotonic()
    try:
        example = find_example()
    except DemoFailed as err:
        raise click.ClickException(str(err)) from err
    stage = Stage(example, root, time_scale, deadline=started + timeout, http_addr=http_addr)
    story = Story(stage, RichView(console), keep=keep)
    summary = Summary()
    failure = ""
    try:
        stage.start()
        summary = dataclasses.replace(story.tell(), ok=True)
    except (DemoFailed, FleetError) as err:
        failure = str(err)
        summary = dataclasses.replace(story.summary, ok=False, error=failure)
    except KeyboardInterrupt:
        failure = "interrupted"
        summary = dataclasses.replace(story.summary, ok=False, error=failure)
    finally:
        stage.stop()
        summary = dataclasses.replace(
            summary, seconds=round(time.monotonic() - started, 1), kept=keep
        )
        if json_path is not None:
            json_path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
        if keep:
            console.print(
                f"Kept: {root}\n  remote      {stage.bare}\n  clone       {stage.work}\n"
                f"  controller  {stage.log_path}\n  simulator   {stage.audit_path}"
            )
        else:
            shutil.rmtree(root, ignore_errors=True)
    console.print(f"demo took {summary.seconds or 0:.1f} s")
    if failure:
        raise click.ClickException(failure)
