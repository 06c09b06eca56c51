"""Pausing Python's cyclic garbage collector around batch work that builds many objects.

Used by the loader (hundreds of thousands of YAML nodes and values) and the planner (a plan
of 100,000 actions over an inventory of 50,000 nodes): the objects are acyclic and live
beyond the batch, so the collector's full passes over them find nothing and cost as much as
the work itself. Output never depends on it; only time does.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; restore its previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
