"""The ``gitops`` command group: global options, logging, and commands loaded on demand.

Entry layer. ``COMMANDS`` names the module of each command; a module is imported only when its
command is asked for (to run it, or to list it in ``--help``), so a command pays for the
libraries it uses and no other.
"""

from __future__ import annotations

import importlib
import logging

import click

from gitops import __version__

# name -> "module:attribute"; the order of --help is sorted by name, as click does.
COMMANDS = {
    "apply": "gitops.cli.apply:apply",
    "demo": "gitops.cli.demo:demo",
    "describe": "gitops.cli.describe:describe",
    "drift": "gitops.cli.drift:drift",
    "plan": "gitops.cli.plan:plan",
    "run": "gitops.cli.run:run",
    "schema": "gitops.cli.schema:schema",
    "sim": "gitops.cli.sim:sim",
    "validate": "gitops.cli.validate:validate",
    "windows": "gitops.cli.windows:windows",
}


class LazyGroup(click.Group):
    """A group whose commands live in modules imported on first use.

    Usage errors exit 1 like every other error: 2 means "drift or changes" to bots.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, _, attribute = COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise _UsageError(err.format_message(), err.ctx) from err


class _UsageError(click.UsageError):
    """A usage error as click shows it (usage line, then the message), with exit status 1."""

    exit_code = 1


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="gitops")
def main() -> None:
    """Reconcile fleets of Kubernetes clusters on immutable node images from a git repository.

    A fleet repository declares clusters, node pools and the image each pool runs. gitops
    validates it, compares it with the live clusters, plans immutable replacements in waves
    and carries them out.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # urllib3 warns about every retried connection and every connection its pool drops; the
    # adapters turn the failures that matter into one message each, so its own are noise.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
