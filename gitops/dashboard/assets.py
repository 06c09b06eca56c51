"""The page's files, shipped as package data in ``gitops/dashboard/static``.

Served by name from a fixed table (no path from a request ever reaches the file system), each
with its content type. Read once and kept: they never change while the process runs.
"""

from __future__ import annotations

import functools
from importlib import resources

FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@functools.cache
def read(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of the shipped file ``name`` (None when there is none)."""
    ctype = FILES.get(name)
    if ctype is None:
        return None
    return resources.files("gitops.dashboard").joinpath("static", name).read_bytes(), ctype
