"""The simulator's audit log: one JSON line per API request and per simulated state change.

Tool layer (``gitops.sim.api``). The HTTP server calls ``request(...)`` once per answered request;
the world calls ``change(...)`` for what happens "physically" (a machine created, a node
registered or Ready, a pod evicted ...). Tests and benchmarks read the file from outside the
controller to count requests and check rollout invariants. It must never read the store or
decide anything; it only writes, and flushes each line as it is written, so a reader tailing
the file (or a test reading it after a request returned) sees every line complete.

Format (one JSON object per line, keys always present as listed):

* every line: ``time`` (float, seconds since the epoch, wall clock), ``kind``
  (``"request"`` or ``"change"``), ``cluster`` (``""`` for the management cluster, else the
  workload cluster's name).
* ``kind: "request"``: ``verb`` (get, list, watch, create, update, patch, delete,
  deletecollection, as in the kube-apiserver's audit log; ``get`` also for discovery and other
  non-resource paths), ``resource`` (plural, e.g. ``nodes``, ``machines``; ``""`` for
  non-resource requests), ``group`` (``""`` for core), ``subresource`` (``""``, ``status``,
  ``eviction`` ...), ``namespace`` (``""`` when cluster-scoped or all namespaces), ``name``
  (``""`` for collections), ``path`` (the URL path without the query), ``userAgent``, ``user``
  (the bearer token's user, ``""`` when none), ``code`` (the HTTP status answered; for a watch,
  200 when the stream started), and ``fault`` (``""``, or ``"error"`` / ``"latency"`` /
  ``"watch-drop"`` when the answer was shaped by injected faults).
* ``kind: "change"``: ``event``, one of ``machine-created``, ``machine-deleted``,
  ``node-registered``, ``node-ready``, ``node-removed``, ``node-boot-failed``, ``pod-evicted``,
  ``pod-terminated``, ``pod-rescheduled``, ``pod-deleted``, ``node-cordoned``,
  ``node-uncordoned`` (the world may add
  others), then whatever fields the caller gives (``namespace``, ``name``, ``node``,
  ``machine``, ``pool``, ``pdb`` ...).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

CHANGE_EVENTS = (
    "machine-created",
    "machine-deleted",
    "node-registered",
    "node-ready",
    "node-removed",
    "node-boot-failed",
    "pod-evicted",
    "pod-terminated",
    "pod-rescheduled",
    "pod-deleted",
    "node-cordoned",
    "node-uncordoned",
)


class AuditLog:
    """Append JSON lines to ``path``; with ``path`` None nothing is kept."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def request(
        self,
        *,
        cluster: str,
        verb: str,
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        user_agent: str,
        code: int,
        user: str = "",
        group: str = "",
        path: str = "",
        fault: str = "",
    ) -> None:
        self._write(
            {
                "time": time.time(),
                "kind": "request",
                "cluster": cluster,
                "verb": verb,
                "resource": resource,
                "group": group,
                "subresource": subresource,
                "namespace": namespace,
                "name": name,
                "path": path,
                "userAgent": user_agent,
                "user": user,
                "code": code,
                "fault": fault,
            }
        )

    def change(self, *, cluster: str, event: str, **fields: Any) -> None:
        line = {"time": time.time(), "kind": "change", "cluster": cluster, "event": event}
        line.update(fields)
        self._write(line)

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        text = json.dumps(line, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(text)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every line of an audit log, parsed (for tests and benchmarks)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
