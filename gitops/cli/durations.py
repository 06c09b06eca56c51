"""A click callback for duration flags (``30s``, ``5m``, ``1h``): entry layer, parsing only."""

from __future__ import annotations

import click

from gitops.fleet.quantities import parse_duration


def duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Seconds of a duration flag; a bad one is click's usage error naming the flag."""
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
