"""Membership and ownership of workload clusters among controller replicas, over Leases.

Adapter layer, used by the controller loop. Each replica keeps a member Lease
``gitops-member-<identity>`` renewed; the live members go into ``gitops.placement.place``; the
owner Lease ``gitops-owner-<cluster>`` names the replica that owns a cluster and is written
only on a hand-off (claim or hand-over), never renewed: an owner is alive while its member
Lease is. Before acting, a new owner takes the cluster's fence (``gitops.kube.fence``), which
bumps the epoch so a former owner that wakes up late is refused. A replica stops acting before
its member Lease can be seen expired by others (its monotonic deadline), so two replicas never
act on one cluster at once. All Leases are read from one label-selected watch: steady state
costs no LIST. ``tick()`` is one round with an injected clock, so tests need no waiting.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gitops.errors import GitopsError
from gitops.kube.cache import WatchCache
from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import Conflict, NotFound, call_json
from gitops.kube.fence import ClusterFence, Fenced
from gitops.kube.lease import micro_time, parse_time
from gitops.placement import place

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "coordination.k8s.io", "v1", "leases"
MANAGED = "app.kubernetes.io/managed-by"
KIND = "gitops.io/lease"
SELECTOR = f"{MANAGED}=gitops,{KIND}"
Safe = Callable[[str], bool]


def dns_label(identity: str, room: int = 63 - len("gitops-member-")) -> str:
    """``identity`` as a DNS label; a short hash keeps two identities that sanitise alike apart."""
    clean = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")
    if clean == identity and len(clean) <= room:
        return clean
    digest = hashlib.blake2b(identity.encode(), digest_size=4).hexdigest()
    return f"{clean[: room - 9].strip('-')}-{digest}".strip("-")


def _rv(obj: Mapping[str, Any]) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


class ShardManager:
    """Keeps this replica's member Lease and the owner Leases of the clusters placed on it."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        *,
        fence: ClusterFence,
        lease_duration: float = 15.0,
        renew_period: float = 2.0,
        max_handoffs: int = 2,
        slack: float = 0.25,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[frozenset[str]], None] | None = None,
    ) -> None:
        self.kube, self.namespace, self.identity, self.fence = kube, namespace, identity, fence
        self.lease_duration, self.renew_period = lease_duration, renew_period
        self.max_handoffs, self.slack = max_handoffs, slack
        self.clock, self.monotonic, self.on_change = clock, monotonic, on_change
        self.margin = max(2 * renew_period, 0.2 * lease_duration)
        self.member_name = f"gitops-member-{dns_label(identity)}"
        self.cache: WatchCache[dict[str, Any]] = WatchCache(
            f"gitops Leases in {namespace}",
            functools.partial(
                kube.coordination.list_namespaced_lease, namespace, label_selector=SELECTOR
            ),
        )
        self._mine: dict[str, dict[str, Any] | None] = {}  # own writes the watch may not show yet
        self._fenced: set[str] = set()
        self._deadline = float("-inf")
        self._owned: frozenset[str] = frozenset()
        self._refusals = 0
        self.handoffs = 0
        self.last_error = ""
        self._weights: dict[str, int] = {}
        self._safe: Safe = lambda _cluster: False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watching = False

    # -- reading the Leases ----------------------------------------------------------------

    def _leases(self) -> dict[str, dict[str, Any]]:
        if not self._watching:
            self._watching = True
            self.cache.start()
            self.cache.wait_synced(30)
        seen = {obj["metadata"]["name"]: obj for obj in self.cache.objects()}
        for name, obj in self._mine.items():
            if obj is None:
                seen.pop(name, None)
            elif name not in seen or _rv(obj) >= _rv(seen[name]):
                seen[name] = obj
        return seen

    def _members(self, leases: Mapping[str, dict[str, Any]], now: float) -> list[str]:
        live = set()
        for obj in leases.values():
            if (obj["metadata"].get("labels") or {}).get(KIND) != "member":
                continue
            spec = obj.get("spec") or {}
            renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
            if (
                spec.get("holderIdentity")
                and renewed + float(spec.get("leaseDurationSeconds") or 0) > now
            ):
                live.add(str(spec["holderIdentity"]))
        return sorted(live)

    @staticmethod
    def _owners(leases: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for obj in leases.values():
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get(KIND) == "owner":
                out[(meta.get("annotations") or {}).get("gitops.io/cluster", meta["name"][13:])] = (
                    obj
                )
        return out

    # -- writing the Leases ----------------------------------------------------------------

    def _write(
        self, name: str, kind: str, holder: str, old: dict[str, Any] | None, extra: dict[str, str]
    ) -> None:
        now = self.clock()
        spec = (old or {}).get("spec") or {}
        changed = spec.get("holderIdentity") != holder
        body: dict[str, Any] = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {MANAGED: "gitops", KIND: kind},
                "annotations": extra,
            },
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": micro_time(now) if changed or not spec else spec.get("acquireTime"),
                "renewTime": micro_time(now),
                "leaseTransitions": int(spec.get("leaseTransitions") or 0)
                + (1 if changed and old else 0),
            },
        }
        # the generic object API sends MicroTimes as built (see gitops.kube.lease)
        if old is None:
            written = call_json(
                f"creating Lease {self.namespace}/{name}",
                self.kube.custom.create_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, body,
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        else:
            body["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            written = call_json(
                f"writing Lease {self.namespace}/{name}",
                self.kube.custom.replace_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, name, body,
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        self._mine[name] = written

    def _delete(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            call_json(
                f"deleting Lease {self.namespace}/{name}",
                self.kube.custom.delete_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, name,
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        self._mine[name] = None

    def _renew(self, leases: Mapping[str, dict[str, Any]]) -> None:
        started = self.monotonic()
        try:
            self._write(self.member_name, "member", self.identity, leases.get(self.member_name), {})
        except Conflict:
            fresh = call_json(
                f"reading Lease {self.namespace}/{self.member_name}",
                self.kube.custom.get_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL, self.member_name,
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
            self._write(self.member_name, "member", self.identity, fresh, {})
        # measured from before the request: others may see the renewal no earlier than that
        self._deadline = started + self.lease_duration - self.margin

    # -- one round -------------------------------------------------------------------------

    def acting(self) -> bool:
        """Whether this replica may still act: its last renewal is fresh by its monotonic clock."""
        return self.monotonic() < self._deadline

    def tick(self, weights: Mapping[str, int], safe: Safe) -> None:
        """Renew, place, then claim, hand over and fence clusters; never sleeps."""
        self._weights, self._safe = dict(weights), safe
        try:
            self._renew(self._leases())
            self.last_error = ""
        except GitopsError as err:
            self.last_error = str(err)
            log.warning("Cannot renew member Lease %s: %s", self.member_name, err)
        if self.acting():
            self._round(weights, safe)
        self._publish()

    def _round(self, weights: Mapping[str, int], safe: Safe) -> None:
        leases = self._leases()
        live = self._members(leases, self.clock())
        if self.identity not in live:
            live = sorted([*live, self.identity])
        target = place(weights, live, slack=self.slack)
        owners = self._owners(leases)
        handed = 0
        for cluster in sorted(set(weights) | set(owners)):
            lease = owners.get(cluster)
            holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
            try:
                if cluster not in weights:
                    if holder == self.identity:
                        self._delete(lease["metadata"]["name"] if lease else "")
                    holder = ""
                elif holder not in live and target[cluster] == self.identity:
                    self._claim(cluster, lease, self.identity)
                    holder = self.identity
                elif (
                    holder == self.identity
                    and target[cluster] != self.identity
                    and handed < self.max_handoffs
                    and safe(cluster)
                ):
                    self._claim(cluster, lease, target[cluster])
                    handed += 1
                    self.handoffs += 1
                    holder = target[cluster]
                if holder != self.identity:
                    self._drop(cluster)
                elif cluster not in self._fenced:
                    self.fence.take(cluster)
                    self._fenced.add(cluster)
                    self.handoffs += 1  # taken (claimed, or handed to us)
            except Conflict:
                log.info(
                    "Lost the race for cluster %s's owner Lease; another replica won.", cluster
                )
            except GitopsError as err:
                log.warning("Cluster %s: %s", cluster, err)

    @staticmethod
    def _holder(lease: Mapping[str, Any]) -> str:
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def _claim(self, cluster: str, lease: dict[str, Any] | None, holder: str) -> None:
        self._write(
            f"gitops-owner-{cluster}", "owner", holder, lease, {"gitops.io/cluster": cluster}
        )

    def _drop(self, cluster: str) -> None:
        if cluster in self._fenced:
            self._fenced.discard(cluster)
            self.fence.forget(cluster)

    def _publish(self) -> None:
        now = frozenset(self._fenced) if self.acting() else frozenset()
        if now != self._owned:
            self._owned = now
            if self.on_change is not None:
                self.on_change(now)

    # -- answers ---------------------------------------------------------------------------

    def owned(self) -> frozenset[str]:
        """The clusters this replica may act on now (empty once its deadline has passed)."""
        return frozenset(self._fenced) if self.acting() else frozenset()

    def owner(self, cluster: str) -> str:
        """The live replica holding ``cluster``'s owner Lease, or ""."""
        lease = self._owners(self._leases()).get(cluster)
        holder = self._holder(lease) if lease else ""
        return holder if holder in self._members(self._leases(), self.clock()) else ""

    def unowned(self, weights: Mapping[str, int]) -> list[str]:
        """Clusters whose owner Lease is missing or held by a replica that is not live."""
        leases = self._leases()
        live = set(self._members(leases, self.clock()))
        owners = self._owners(leases)
        return [
            c for c in sorted(weights) if c not in owners or self._holder(owners[c]) not in live
        ]

    @property
    def fencing_refusals(self) -> int:
        return self._refusals + self.fence.refusals

    def check(self, cluster: str) -> None:
        """Raise ``Fenced`` unless this replica owns ``cluster`` now and its fence still holds."""
        if cluster not in self.owned():
            self._refusals += 1
            raise Fenced(
                f"cluster {cluster}: not owned by {self.identity} (held epoch {self.fence.held(cluster)},"
                f" owner {self.owner(cluster) or 'none'}, acting {self.acting()})"
            )
        self.fence.check(cluster)

    # -- stopping and running --------------------------------------------------------------

    def release_all(self) -> None:
        """On SIGTERM: hand every owned cluster to where placement without us puts it, then leave."""
        leases = self._leases()
        others = [m for m in self._members(leases, self.clock()) if m != self.identity]
        target = place(self._weights, others, slack=self.slack)
        owners = self._owners(leases)
        for cluster in sorted(self._fenced):
            lease = owners.get(cluster)
            if lease is not None and self._holder(lease) == self.identity:
                try:
                    if cluster in target:
                        self._claim(cluster, lease, target[cluster])
                    else:
                        self._delete(lease["metadata"]["name"])
                    self.handoffs += 1
                except GitopsError as err:
                    log.warning("Cannot hand cluster %s over: %s", cluster, err)
            self._drop(cluster)
        self._delete(self.member_name)
        self._deadline = float("-inf")
        self._publish()

    def set_inputs(self, weights: Mapping[str, int], safe: Safe) -> None:
        self._weights, self._safe = dict(weights), safe

    def start(self) -> ShardManager:
        self._leases()  # starts the watch and waits for its first LIST
        self._thread = threading.Thread(target=self._run, name="shards", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick(self._weights, self._safe)
            self._stop.wait(self.renew_period)

    def stop(self, *, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if release:
            self.release_all()
        self.cache.stop()
