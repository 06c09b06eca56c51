"""The ``gitops sim`` command group: serve a simulated fleet (see gitops.sim)."""

from __future__ import annotations

import click


@click.group()
def sim() -> None:
    """Run the fleet simulator: a Kubernetes-API-compatible simulated fleet."""
