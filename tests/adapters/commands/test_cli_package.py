"""The ``gitops`` command group loads each command's libraries only when that command runs.

``gitops --help`` and ``gitops validate`` run in a child process that then lists the heavy
libraries it imported: neither may load the Kubernetes client, gitpython, httpx or the
simulator. A command that does need the cluster shows that the listing sees those imports.
Every command (and ``sim serve``) still answers ``--help``, and the flags spelled out in the
CLI so that declaring them stays light agree with the modules they mirror.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gitops.cli import main
from tests.adapters.commands.conftest import EXAMPLE

HEAVY = ("kubernetes", "git", "httpx", "gitops.sim")

# Runs the entry point as `python -m gitops.cli ARGS` does, then prints (on stderr, after the
# command's own output) every heavy module the process imported.
PROBE = f"""
import json, runpy, sys
sys.argv = ["gitops", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("gitops.cli", run_name="__main__", alter_sys=True)
except SystemExit as done:
    code = done.code
heavy = {HEAVY!r}
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("\\nLOADED " + json.dumps({{"code": code, "modules": loaded}}), file=sys.stderr)
"""


def _probe(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    marker = done.stderr.rpartition("\nLOADED ")[2]
    assert marker != done.stderr, done.stderr[-3000:]
    report = json.loads(marker)
    return int(report["code"] or 0), list(report["modules"])


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("validate", str(EXAMPLE)), ("validate", "--format", "json", str(EXAMPLE))],
    ids=["help", "validate", "validate-json"],
)
def test_light_commands_load_no_adapter_nor_the_simulator(argv: tuple[str, ...]) -> None:
    code, modules = _probe(*argv)
    assert code == 0
    assert modules == []


def test_the_probe_sees_a_command_that_loads_the_kubernetes_client(tmp_path: Path) -> None:
    # A kubeconfig that names no reachable server: drift loads the client, then fails fast.
    missing = tmp_path / "absent.kubeconfig"
    code, modules = _probe("drift", "--fleet", str(EXAMPLE), "--kubeconfig", str(missing))
    assert code == 1
    assert "kubernetes" in modules


def _commands(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join(path)} lists {name} but cannot load it"
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(main, ()))


def test_the_group_lists_every_command() -> None:
    assert {("validate",), ("plan",), ("run",), ("sim", "serve"), ("demo",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="gitops")
    assert result.exit_code == 0, result.output
    assert f"Usage: gitops {' '.join(path)} [OPTIONS]" in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plna"], "Error: No such command 'plna'."),
        (["plan", "--no-such-flag"], "Error: No such option '--no-such-flag'."),
        (["validate", "--format", "xml"], "Error: Invalid value for '--format'"),
    ],
)
def test_usage_errors_exit_1_as_every_error_does(argv: list[str], message: str) -> None:
    # 2 is "drift or changes" to bots: a mistyped command or flag must not read as that.
    result = CliRunner().invoke(main, argv, prog_name="gitops")
    assert result.exit_code == 1
    assert "Usage: gitops" in result.output and message in result.output


def test_the_light_copies_of_the_forge_flags_match_the_modules_they_mirror() -> None:
    from gitops import forge
    from gitops.bot import driftpr
    from gitops.cli import forge_options

    assert forge_options.KINDS == forge.KINDS
    assert forge_options.DEFAULT_PERSISTENCE == driftpr.DEFAULT_PERSISTENCE
