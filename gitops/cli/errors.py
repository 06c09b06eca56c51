"""The command line's one-line failure (entry layer)."""

from __future__ import annotations

from typing import IO, Any

import click


class Failed(click.ClickException):
    """A failure the user must see as one clear message, with exit status 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)
