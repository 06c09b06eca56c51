"""The rollout's durable record, kept in a ConfigMap in the management cluster.

Shell layer, writing through ``gitops.kube``. The record (``gitops.plan.RolloutState``) is
small: wave and cluster progress, failure counts, the halt. It is written with optimistic
concurrency (resourceVersion), so two writers never silently lose each other's progress, and
only when it changed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from gitops.errors import Stalled
from gitops.kube import actions
from gitops.kube.client import Kube
from gitops.kube.errors import Conflict, NotFound
from gitops.plan import RolloutState

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "gitops-system"
NAME = "gitops-rollout-state"
KEY = "state.json"


class StateStore:
    """Load and save the ``RolloutState`` in ConfigMap ``gitops-rollout-state``."""

    def __init__(
        self, management: Kube, namespace: str = DEFAULT_NAMESPACE, *, time_scale: float = 1.0
    ) -> None:
        self.kube = management
        self.namespace = namespace
        # Stamped on every record written: the timestamps in it belong to durations scaled so.
        self.time_scale = time_scale
        self._version: str | None = None
        self._last: RolloutState | None = None

    def load(self, *, refresh: bool = False) -> RolloutState:
        """The record; read from the cluster once, then kept (writes check it did not move)."""
        if self._last is not None and not refresh:
            return self._last
        try:
            obj = actions.read_config_map(self.kube, self.namespace, NAME)
        except NotFound:
            self._version, self._last = None, RolloutState()
            return self._last
        self._version = obj.resource_version
        text = obj.data.get(KEY, "")
        try:
            self._last = RolloutState.from_dict(json.loads(text))
        except (ValueError, TypeError) as err:
            raise Stalled(
                f"ConfigMap {self.namespace}/{NAME} does not hold a rollout state ({err}); "
                "fix or delete it"
            ) from err
        return self._last

    def save(self, state: RolloutState) -> None:
        """Write ``state`` if it differs from what was loaded (409 Conflict when someone else wrote)."""
        state = replace(state, time_scale=self.time_scale)
        if state == self._last:
            return
        data = {KEY: json.dumps(state.to_dict(), indent=1, sort_keys=False)}
        labels = {"app.kubernetes.io/managed-by": "gitops"}
        try:
            self._version = actions.write_config_map(
                self.kube, self.namespace, NAME, data, self._version, labels
            )
        except Conflict:
            self._last = None  # another writer moved the record: the next load reads it afresh
            raise
        except NotFound:
            actions.create_namespace(self.kube, self.namespace)
            self._version = actions.write_config_map(
                self.kube, self.namespace, NAME, data, self._version, labels
            )
        self._last = state
