"""The rollout's durable record when clusters are sharded across replicas.

Shell layer, writing through ``gitops.kube``. With ``gitops run --sharding`` the record of
``gitops.rollout.store`` is split (``gitops.plan.shard``): each cluster's progress, failures,
halt and summary live in its own ConfigMap ``gitops-cluster-<cluster>`` (key
``progress.json``), written only by the replica that owns the cluster and only through the
cluster's fence (``gitops.kube.fence``: a resourceVersion precondition on the record whose
epoch the owner took, so a replica that lost the cluster cannot write it); the fleet's part
(waves, the halt, the coordinator's admissions) stays in ``gitops-rollout-state``, written only
by the coordinator. Every replica reads both kinds from one watch of the namespace's
ConfigMaps, so loading costs no request.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from gitops.errors import GitopsError
from gitops.fleet import Fleet
from gitops.kube.cache import WatchCache
from gitops.kube.client import Kube
from gitops.kube.fence import ClusterFence, Fenced
from gitops.plan import Plan, RolloutState
from gitops.plan.shard import ClusterRecord, ClusterSummary, Shard, compose, split
from gitops.rollout.store import KEY, NAME, StateStore

log = logging.getLogger(__name__)

RECORD_KEY = "progress.json"
STATUS_KEY = "status.json"  # the cluster's status document, for the coordinator's commit
RECORD_LABEL = "gitops.io/cluster-state"
MANAGED = "app.kubernetes.io/managed-by=gitops"


class ShardedStore:
    """Load and save the rollout's record split over the fleet's and each cluster's ConfigMap."""

    def __init__(
        self,
        management: Kube,
        namespace: str,
        *,
        identity: str,
        fence: ClusterFence,
        owned: Callable[[], frozenset[str]],
        coordinator: Callable[[], bool],
        time_scale: float = 1.0,
    ) -> None:
        self.fleet_store = StateStore(management, namespace, time_scale=time_scale)
        self.namespace = namespace
        self.identity = identity
        self.fence = fence
        self.owned = owned
        self.coordinator = coordinator
        self.time_scale = time_scale
        self.fenced = 0  # record writes the fence refused
        self._written: dict[str, str] = {}  # cluster -> the record text last written
        self._loaded: RolloutState | None = None
        self._coordinating = False  # at the last read of the fleet's record
        self._statuses: dict[str, tuple[str, float]] = {}  # cluster -> (text, when) published
        self.cache: WatchCache[dict[str, Any]] = WatchCache(
            f"rollout records in {namespace}",
            functools.partial(
                management.core.list_namespaced_config_map, namespace, label_selector=MANAGED
            ),
        ).start()

    def stop(self) -> None:
        self.cache.stop()
        self.cache.join(2.0)

    # -- reading -------------------------------------------------------------------------

    def records(self) -> dict[str, ClusterRecord]:
        """Every cluster's record as the watch shows it (unreadable ones are skipped, loudly)."""
        out: dict[str, ClusterRecord] = {}
        for obj in self.cache.objects():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            text = (obj.get("data") or {}).get(RECORD_KEY)
            if labels.get(RECORD_LABEL) != "true" or not text:
                continue
            try:
                record = ClusterRecord.from_dict(json.loads(text))
            except ValueError as err:
                log.warning("ConfigMap %s is not a cluster record: %s", _name(obj), err)
                continue
            out[record.cluster] = record
        return out

    def _fleet_record(self) -> RolloutState:
        coordinating = self.coordinator()
        was, self._coordinating = self._coordinating, coordinating
        if coordinating:
            # Its own writes, kept and checked by resourceVersion; read afresh on becoming
            # the coordinator, as another may have written it meanwhile.
            return self.fleet_store.load(refresh=not was)
        for obj in self.cache.objects():
            if _name(obj) == NAME:
                try:
                    return RolloutState.from_dict(json.loads((obj.get("data") or {})[KEY]))
                except (KeyError, ValueError, TypeError) as err:
                    log.warning("ConfigMap %s is not a rollout state: %s", NAME, err)
        return RolloutState()

    def load(self, *, revision: str, fleet: Fleet) -> RolloutState:
        """The record the planner reads: the fleet's, with every cluster's progress in it."""
        wave_of = {c: m.wave.name for m in fleet.waves for c in m.clusters}
        state = compose(self._fleet_record(), self.records().values(), revision, wave_of)
        self._loaded = state
        return state

    def shard(self, revision: str) -> Shard:
        """What the planner needs of the clusters this replica does not own."""
        owned = self.owned()
        remote: dict[str, ClusterSummary] = {}
        for name, record in self.records().items():
            if name not in owned and record.summary is not None:
                remote[name] = record.summary
        fleet = self._fleet_record()
        admitted = frozenset(fleet.admitted) if fleet.revision == revision else frozenset()
        if self.coordinator():
            return Shard(remote=remote, admitted=None, held=admitted)
        return Shard(remote=remote, admitted=admitted)

    # -- writing -------------------------------------------------------------------------

    def save(self, state: RolloutState, plan: Plan | None = None) -> None:
        """Write each owned cluster's share (fenced) and, on the coordinator, the fleet's."""
        owned = self.owned()
        summaries = {
            s.cluster: replace(s, owner=self.identity)
            for s in (plan.summaries if plan is not None else ())
            if s.cluster in owned
        }
        loaded = self._loaded
        halts: Mapping[str, str] = {}
        if state.halted and (loaded is None or not loaded.halted):
            halts = dict.fromkeys(owned, state.halt_reason)  # this replica's steps halted it
        for name, record in split(state, owned, summaries, halts).items():
            previous = self._written.get(name)
            if record.summary is None and previous is not None:
                # no fresh summary this time (a save between plans): keep the last one
                record = replace(record, summary=_summary(previous))
            text = json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"))
            if text == previous:
                continue
            try:
                self.fence.write(name, RECORD_KEY, text)
            except Fenced as err:
                self.fenced += 1
                log.warning("Not writing the record of cluster %s: %s", name, err)
                continue
            self._written[name] = text
        if self.coordinator():
            self._save_fleet(state, plan)

    def _save_fleet(self, state: RolloutState, plan: Plan | None) -> None:
        admitted = state.admitted
        if plan is not None:
            admitted = tuple(
                sorted(c.name for w in plan.waves for c in w.clusters if c.status == "active")
            )
        fleet = replace(state, clusters=(), pools=(), admitted=admitted)
        try:
            self.fleet_store.save(fleet)
        except GitopsError as err:  # Conflict: another coordinator wrote; read it next pass
            log.warning("Writing the fleet's rollout record failed: %s", err)

    def publish_status(
        self,
        cluster: str,
        report: Mapping[str, Any],
        *,
        now: float,
        every: float,
        urgent: bool = False,
    ) -> None:
        """Put ``cluster``'s status document in its record for the coordinator to commit:
        when it changed, at most once per ``every`` seconds unless ``urgent`` (a halt)."""
        text = json.dumps(report, sort_keys=True, separators=(",", ":"))
        last_text, last_time = self._statuses.get(cluster, ("", float("-inf")))
        if text == last_text or (not urgent and now - last_time < every):
            return
        try:
            self.fence.write(cluster, STATUS_KEY, text)
        except Fenced as err:
            self.fenced += 1
            log.warning("Not publishing the status of cluster %s: %s", cluster, err)
            return
        self._statuses[cluster] = (text, now)

    def reports(self, revision: str, exclude: frozenset[str]) -> dict[str, Any]:
        """The status documents other replicas published of their clusters at ``revision``."""
        out: dict[str, Any] = {}
        for obj in self.cache.objects():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            text = (obj.get("data") or {}).get(STATUS_KEY)
            if labels.get(RECORD_LABEL) != "true" or not text:
                continue
            try:
                report = json.loads(text)
                cluster = str(report["cluster"])
            except (ValueError, KeyError, TypeError):
                continue
            if cluster not in exclude and report.get("fleetRevision") == revision:
                out[cluster] = report
        return out

    def forget(self, cluster: str) -> None:
        """A cluster handed over: its next owner writes its record from what it reads."""
        self._written.pop(cluster, None)
        self._statuses.pop(cluster, None)


def _summary(text: str) -> ClusterSummary | None:
    return ClusterRecord.from_dict(json.loads(text)).summary


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
