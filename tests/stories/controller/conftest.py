"""Fixtures of the controller stories: the ``world`` (a fleet remote and the simulator), a
``story`` in process and ``gitops run`` processes, shared with the controller's adapter tests.
"""

from tests.adapters.controller.conftest import gitops_run, story, world  # noqa: F401  (shared)
from tests.adapters.gitrepo.conftest import signers  # noqa: F401  (needed by the fixtures above)
