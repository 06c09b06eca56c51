"""``gitops schema``: the JSON Schema of fleet documents on stdout (entry layer)."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of fleet documents, for editors and CI."""
    from gitops.fleet.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=False))
