"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Adapter layer. Of several controller replicas only the holder of the Lease acts. A candidate
takes the Lease when nobody holds it, when its holder released it, or when the holder has not
renewed it for ``leaseDurationSeconds``; the holder renews it every ``retry_period``. Every
write carries the resourceVersion it read, so two candidates racing for an expired Lease
cannot both win (the loser gets 409 Conflict). Time comes from an injected clock, and
``tick()`` makes one attempt, so the logic is tested without waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gitops.errors import GitopsError
from gitops.kube.client import REQUEST_TIMEOUT, Kube
from gitops.kube.errors import Conflict, NotFound, call, call_json

log = logging.getLogger(__name__)


def micro_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` as ``identity``."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.time,
        on_started: Callable[[], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.retry_period = retry_period
        self.clock = clock
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.leading = False
        self.last_error = ""
        self._last_renew = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one attempt ---------------------------------------------------------------------

    def tick(self) -> bool:
        """Try once to acquire or renew; returns whether this candidate leads now."""
        try:
            leads = self._try()
            self.last_error = ""
        except GitopsError as err:
            self.last_error = str(err)  # for /readyz: why this replica cannot lead
            log.warning(
                "Leader election for Lease %s/%s failed: %s", self.namespace, self.name, err
            )
            # A holder that cannot renew must assume it lost: another may take over once the
            # lease expires, and two leaders acting at once is the one thing to avoid.
            leads = self.leading and self._last_renew + self.lease_duration > self.clock()
        self._transition(leads)
        return leads

    def _try(self) -> bool:
        now = self.clock()
        try:
            lease = self._read()
        except NotFound:
            return self._write(None, now, transitions=0, acquire=now)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            return self._write(lease, now, transitions, parse_time(spec.get("acquireTime")) or now)
        if holder and renewed + duration > now:
            return False  # held by another, still valid
        return self._write(lease, now, transitions + 1, now)

    def _read(self) -> dict[str, Any]:
        return call_json(
            f"reading Lease {self.namespace}/{self.name}",
            self.kube.coordination.read_namespaced_lease,
            self.name,
            self.namespace,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _write(
        self, lease: dict[str, Any] | None, now: float, transitions: int, acquire: float
    ) -> bool:
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": micro_time(acquire),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions,
            },
        }
        # Written through the generic object API so the body goes out as built: the typed
        # client re-serializes MicroTimes with isoformat(), which drops the six fraction digits
        # at a whole second, and the server then refuses the Lease (its layout demands them).
        group, version = "coordination.k8s.io", "v1"
        try:
            if lease is None:
                call(
                    f"creating Lease {self.namespace}/{self.name}",
                    self.kube.custom.create_namespaced_custom_object,
                    group,
                    version,
                    self.namespace,
                    "leases",
                    body,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                call(
                    f"renewing Lease {self.namespace}/{self.name}",
                    self.kube.custom.replace_namespaced_custom_object,
                    group,
                    version,
                    self.namespace,
                    "leases",
                    self.name,
                    body,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except Conflict:
            return False  # another candidate wrote first
        self._last_renew = now
        return True

    def _transition(self, leads: bool) -> None:
        if leads and not self.leading:
            self.leading = True
            log.info(
                "%s became the leader (Lease %s/%s).", self.identity, self.namespace, self.name
            )
            if self.on_started is not None:
                self.on_started()
        elif not leads and self.leading:
            self.leading = False
            log.warning(
                "%s lost the leadership (Lease %s/%s).", self.identity, self.namespace, self.name
            )
            if self.on_stopped is not None:
                self.on_stopped()

    def release(self) -> None:
        """Give the Lease up at once (clean shutdown), so another replica need not wait."""
        if not self.leading:
            return
        try:
            lease = self._read()
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                call(
                    f"releasing Lease {self.namespace}/{self.name}",
                    self.kube.custom.replace_namespaced_custom_object,
                    "coordination.k8s.io",
                    "v1",
                    self.namespace,
                    "leases",
                    self.name,
                    lease,  # as read: the typed client would rewrite its MicroTimes (see _write)
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except GitopsError as err:
            log.warning("Could not release Lease %s/%s: %s", self.namespace, self.name, err)
        self._transition(False)

    # -- campaigning in the background ---------------------------------------------------

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name="leader election", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.retry_period)

    def stop(self, *, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_period + 5)
        if release:
            self.release()
