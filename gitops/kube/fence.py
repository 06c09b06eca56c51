"""Fencing of a workload cluster's writes: the per-cluster epoch record in the state namespace.

Adapter layer, beside the shard manager (``gitops.kube.shards``). Owning a cluster's Lease says
who *should* act; the fence makes a replica that lost the Lease unable to act. Whoever takes a
cluster bumps the epoch in the ConfigMap ``gitops-cluster-<cluster>`` and remembers it; every
later write to that ConfigMap carries the resourceVersion it last saw, and ``check`` reads the
record before a step. A stale replica (paused, partitioned, clock stopped) that wakes up finds
a newer epoch or another owner there, and its writes fail the resourceVersion precondition.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.errors import GitopsError
from gitops.kube.actions import read_config_map, write_config_map
from gitops.kube.client import Kube
from gitops.kube.errors import Conflict, NotFound

LABELS = {"app.kubernetes.io/managed-by": "gitops", "gitops.io/cluster-state": "true"}
_RETRIES = 5  # 409s in a row before giving up: each one means another writer just won


class Fenced(GitopsError):
    """This replica may not act on the cluster: another took it, or its own hold lapsed."""


def fenced(held_epoch: int | None, stored_epoch: int, stored_owner: str, identity: str) -> str:
    """Why a replica holding ``held_epoch`` may not act given the stored record ("" if it may)."""
    if held_epoch is None:
        return (
            f"never took the cluster (stored epoch {stored_epoch}, owner {stored_owner or 'none'})"
        )
    if stored_owner != identity:
        return f"owner is {stored_owner or 'none'} at epoch {stored_epoch}, not {identity} (held epoch {held_epoch})"
    if stored_epoch != held_epoch:
        return f"epoch moved from {held_epoch} to {stored_epoch}"
    return ""


def record_name(cluster: str) -> str:
    return f"gitops-cluster-{cluster}"


@dataclass
class _Held:
    epoch: int
    resource_version: str


class ClusterFence:
    """Takes, checks and writes the fenced record of each cluster as ``identity``."""

    def __init__(self, kube: Kube, namespace: str, identity: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.identity = identity
        self.refusals = 0
        self._held: dict[str, _Held] = {}

    def _read(self, cluster: str) -> tuple[dict[str, str], str]:
        try:
            cm = read_config_map(self.kube, self.namespace, record_name(cluster))
        except NotFound:
            return {}, ""
        return dict(cm.data), cm.resource_version

    def take(self, cluster: str) -> int:
        """Bump the epoch and write this replica as owner; answers the new epoch."""
        for _ in range(_RETRIES):
            data, rv = self._read(cluster)
            epoch = int(data.get("epoch") or 0) + 1
            data.update(epoch=str(epoch), owner=self.identity, cluster=cluster)
            try:
                new_rv = write_config_map(
                    self.kube, self.namespace, record_name(cluster), data, rv or None, LABELS
                )
            except Conflict:
                continue  # someone wrote between our read and write: read again
            self._held[cluster] = _Held(epoch, new_rv)
            return epoch
        raise Fenced(f"cluster {cluster}: could not take its record after {_RETRIES} conflicts")

    def check(self, cluster: str) -> None:
        """Raise ``Fenced`` unless the stored record still carries our epoch and identity."""
        data, rv = self._read(cluster)
        held = self._held.get(cluster)
        why = fenced(
            held.epoch if held else None,
            int(data.get("epoch") or 0),
            data.get("owner", ""),
            self.identity,
        )
        if why:
            self.refusals += 1
            raise Fenced(f"cluster {cluster}: {why}")
        assert held is not None
        held.resource_version = rv

    def write(self, cluster: str, key: str, text: str) -> None:
        """Write one data key under the resourceVersion precondition; ``Fenced`` if no longer ours.

        The record is read and checked first, then replaced at the resourceVersion of that read,
        so a take by another replica in between makes the write fail rather than win.
        """
        for _ in range(_RETRIES):
            held = self._held.get(cluster)
            if held is None:
                self.refusals += 1
                raise Fenced(f"cluster {cluster}: never took the cluster, refusing to write {key}")
            data, rv = self._read(cluster)
            why = fenced(
                held.epoch, int(data.get("epoch") or 0), data.get("owner", ""), self.identity
            )
            if why:
                self.refusals += 1
                raise Fenced(f"cluster {cluster}: {why}; refusing to write {key}")
            data[key] = text
            try:
                held.resource_version = write_config_map(
                    self.kube, self.namespace, record_name(cluster), data, rv, LABELS
                )
                return
            except Conflict:
                continue  # written since our read: re-read, and retry only if still ours
        raise Fenced(f"cluster {cluster}: could not write {key} after {_RETRIES} conflicts")

    def held(self, cluster: str) -> int | None:
        entry = self._held.get(cluster)
        return entry.epoch if entry else None

    def forget(self, cluster: str) -> None:
        self._held.pop(cluster, None)
