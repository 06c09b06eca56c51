"""How many examples the property tests draw: all of them in ``make test``, a third in the quick loop.

``make test-fast`` sets ``GITOPS_TESTS=fast``; every other run (``make test``, CI, a bare
``pytest``) draws the full count each test names.
"""

from __future__ import annotations

import os

FAST = os.environ.get("GITOPS_TESTS") == "fast"


def examples(full: int) -> int:
    """``full`` examples, or a third of them (at least 20) in the quick loop."""
    return max(20, full // 3) if FAST else full
