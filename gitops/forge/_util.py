"""Small helpers the three adapters share when reading the platforms' JSON."""

from __future__ import annotations

from typing import Any

from gitops.forge.errors import BadConfig


def text(value: Any) -> str:
    """A JSON string field, ``null`` read as empty."""
    return "" if value is None else str(value)


def split_slug(slug: str) -> tuple[str, str]:
    """``owner/name`` split in two; ``BadConfig`` for anything else."""
    owner, _, name = slug.strip("/").partition("/")
    if not owner or not name or "/" in name:
        raise BadConfig(f"The repository slug {slug!r} is not of the form OWNER/NAME.")
    return owner, name
