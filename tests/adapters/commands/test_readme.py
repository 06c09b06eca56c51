"""The README's command reference names every command and every option that exists.

The reference is the table under "## Commands": one row (or more) per command, starting with
`` `gitops <command>``. Walking click's command tree finds each command's options; each must
appear in that command's own rows, so an option added in code without a word in the README
fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest

from gitops.cli import main
from tests.adapters.commands.conftest import ROOT


def _commands(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        if len(path) == 1:
            yield " ".join(path), command  # the top level has options of its own (--version)
        ctx = click.Context(command)  # the group loads its commands on demand: ask it for them
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"`{' '.join(path)}` lists {name} but cannot load it"
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


COMMANDS = dict(_commands(main, ("gitops",)))


def _reference() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]


def _rows(name: str) -> str:
    pattern = re.compile(r"\| `" + re.escape(name) + r"[ `]")
    return "\n".join(line for line in _reference().splitlines() if pattern.match(line))


def test_the_tree_is_walked() -> None:
    assert {"gitops plan", "gitops run", "gitops sim serve", "gitops apply"} <= set(COMMANDS)
    assert sum(len(c.params) for c in COMMANDS.values()) > 50


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_every_command_is_in_the_readme(name: str) -> None:
    rows = _rows(name)
    assert rows, f"the README's command table has no row for `{name}`"
    options = [
        opt
        for param in COMMANDS[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
    ]
    missing = [
        o for o in options if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", rows)
    ]
    assert missing == [], f"`{name}` options missing from its README row: {missing}"
