"""Fixtures of the rollout stories: the simulator-backed ``rollout`` of the rollout adapter tests.

The fixture lives beside the adapter tests that use it most and is shared here, not rebuilt.
"""

from tests.adapters.rollout.conftest import rollout  # noqa: F401  (shared fixture)
