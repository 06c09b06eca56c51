"""The simulator's object store: every object of every simulated cluster, as plain wire dicts.

Tool layer, the simulator's API machinery (``gitops.sim.api``), its base (above ``kinds.py``):
the HTTP server (``handler.py``) and the world (``gitops.sim.world``: seeding, physics) both read
and write through one ``Store``; the world hooks in through subscribers and subresource
handlers, so the store never imports it.
It holds the API server's semantics that do not depend on HTTP: a global resourceVersion
counter, 409 Conflict on stale writes, generation, finalizers and deletionTimestamp, status
subresources, graceful pod deletion, namespace lifecycle, owner-reference garbage collection,
a bounded event history per resource (by count and, optionally, age) with 410 Expired for
watches that resume too far back and the snapshots paged lists read from (``list_at``),
watch bookmarks, subscribers, validators (422) and subresource handlers (pods/eviction).

It must never speak HTTP, read the fleet, sleep, or call subscribers while holding its lock.
Every object it returns is a copy the caller may change freely; objects handed to subscribers
and watchers inside an ``Event`` are shared and must be treated as read-only.

Concurrency: one re-entrant lock guards everything; validators and ``mutate`` functions run
under it (they may read the store, they must not block). Subscribers run after the lock is
released, in resourceVersion order, on the writer's thread (a write made from inside a
subscriber is dispatched by the outer dispatch loop once the current subscriber returns).
A subscriber must therefore never wait for a lock that another thread holds while it writes to
the store.
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from gitops.sim.api import conversion, resources, selectors
from gitops.sim.api.kinds import ApiError, ResourceType

Obj = dict[str, Any]
Validator = Callable[[str, Obj, Obj | None], None]
SubresourceHandler = Callable[[str, str, str, Obj, str], Obj]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
T = TypeVar("T")

MANAGEMENT = ""  # the management cluster's name in the store
DEFAULT_POD_GRACE_SECONDS = 30  # the API's default for spec.terminationGracePeriodSeconds
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as apiserver's names.SimpleNameGenerator


@dataclass(frozen=True)
class Event:
    """One change, as watchers and subscribers see it."""

    type: str  # "ADDED" | "MODIFIED" | "DELETED" (| "BOOKMARK" from watch(bookmarks=...))
    cluster: str  # "" is the management cluster, else the workload cluster name
    resource: ResourceType
    object: Obj  # the object after the change (DELETED: its last state); read-only
    resource_version: int
    old: Obj | None = field(default=None, compare=False)  # state before (MODIFIED, DELETED)
    actor: str = "sim"  # who made the change: "api" for HTTP requests, else what the caller said


def now_rfc3339(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def copy_obj(value: T) -> T:
    """A deep copy of a JSON-shaped value (several times faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return cast(T, {k: copy_obj(v) for k, v in value.items()})
    if isinstance(value, list):
        return cast(T, [copy_obj(v) for v in value])
    return value


class _History:
    """The bounded event history of one resource in one cluster, with its own waiters."""

    def __init__(self, lock: threading.RLock) -> None:
        self.rvs: list[int] = []
        self.times: list[float] = []  # the store clock when each event was recorded
        self.events: list[Event] = []
        self.trimmed_upto = 0  # every event with rv <= this may be gone
        self.cond = threading.Condition(lock)


class Store:
    """The objects of every simulated cluster; thread-safe. See the module docstring."""

    def __init__(
        self,
        history: int = 10_000,
        *,
        history_seconds: float | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        builtin_validators: bool = True,
    ) -> None:
        # The watch window per (cluster, resource), as the apiserver's watch cache and etcd
        # compaction bound it: at least ``history`` events (at most twice that) and, with
        # ``history_seconds``, no event older than that on the store clock. A watch or a
        # continue token from before the window is answered 410 Expired.
        self.history = history
        self.history_seconds = history_seconds
        self.clock = clock  # creation and deletion timestamps; the world may swap in its own
        self._rng = random.Random(seed)  # uids and generated names, reproducible from the seed
        self._lock = threading.RLock()
        self._rv = 0
        self._clusters: dict[str, dict[str, dict[Key, Obj]]] = {MANAGEMENT: {}}
        self._types: dict[str, ResourceType] = {}
        self._histories: dict[tuple[str, str], _History] = {}
        self._validators: dict[str, list[Validator]] = {}
        self._handlers: dict[tuple[str, str], SubresourceHandler] = {}
        self._subscribers: list[Callable[[Event], None]] = []
        self._pending: deque[Event] = deque()
        self._dispatch_lock = threading.RLock()
        self._dispatching = threading.local()
        self._dry = threading.local()  # set while a dryRun write runs: nothing is committed
        # garbage collection: (cluster, uid) -> (rkey, key); (cluster, owner uid) -> dependents
        self._uids: dict[tuple[str, str], tuple[str, Key]] = {}
        self._dependents: dict[tuple[str, str], set[tuple[str, Key]]] = {}
        if builtin_validators:
            for rtype, fn in resources.builtin_validators():
                self.add_validator(rtype, fn)

    # ------------------------------------------------------------------ clusters, registration

    def add_cluster(self, name: str) -> None:
        with self._lock:
            self._clusters.setdefault(name, {})

    def clusters(self) -> list[str]:
        with self._lock:
            return sorted(self._clusters)

    def has_cluster(self, name: str) -> bool:
        with self._lock:
            return name in self._clusters

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def add_validator(self, rtype: ResourceType, fn: Validator) -> None:
        with self._lock:
            self._validators.setdefault(rtype.key, []).append(fn)

    def add_subresource_handler(
        self, rtype: ResourceType, name: str, fn: SubresourceHandler
    ) -> None:
        with self._lock:
            self._handlers[(rtype.key, name)] = fn

    def subresource_handler(self, rtype: ResourceType, name: str) -> SubresourceHandler | None:
        with self._lock:
            return self._handlers.get((rtype.key, name))

    def post_subresource(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str,
        name: str,
        subresource: str,
        body: Obj,
        *,
        actor: str = "api",
    ) -> Obj:
        """POST to ``.../<name>/<subresource>`` (pods/eviction): the registered handler decides.

        Without a handler, an eviction deletes the pod (what the API server does when no
        PodDisruptionBudget covers it) and answers a success Status.
        """
        handler = self.subresource_handler(rtype, subresource)
        if handler is not None:
            return handler(cluster, namespace, name, body, actor)
        if rtype.key == "pods" and subresource == "eviction":
            self.get(cluster, rtype, namespace, name)
            opts = body.get("deleteOptions") or {}
            self.delete(
                cluster,
                rtype,
                namespace,
                name,
                actor=actor,
                grace_period=opts.get("gracePeriodSeconds"),
            )
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            }
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # ------------------------------------------------------------------ reads

    def get(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        copy: bool = True,
    ) -> Obj:
        """One object; ``copy=False`` returns the stored dict itself, which must only be read
        (stored objects are replaced, never changed in place, so reading it later is safe)."""
        with self._lock:
            obj = self._bucket(cluster, rtype).get(self._key(rtype, namespace, name))
            if obj is None:
                raise ApiError.not_found(rtype, name)
            if rtype.key in conversion.CONVERTED:
                return _outgoing(rtype, obj)
            return copy_obj(obj) if copy else obj

    def list(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        copy: bool = True,
    ) -> tuple[list[Obj], int]:
        """Matching objects sorted by (namespace, name), and the list's resourceVersion.

        ``copy=False`` returns the stored dicts themselves, read-only (see ``get``)."""
        match = self._matcher(rtype, namespace, label_selector, field_selector)
        with self._lock:
            bucket = self._bucket(cluster, rtype)
            items = [bucket[k] for k in sorted(bucket) if match(bucket[k])]
            rv = self._rv
        if rtype.key in conversion.CONVERTED:
            return [_outgoing(rtype, i) for i in items], rv
        return ([copy_obj(i) for i in items] if copy else items), rv

    def list_at(
        self,
        cluster: str,
        rtype: ResourceType,
        resource_version: int,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        *,
        after: Key | None = None,
    ) -> builtins.list[Obj] | None:
        """Matching objects as they were at ``resource_version``, sorted, keys past ``after``.

        What a paged list's later pages read: every page of a list comes from the snapshot
        at its first page's resourceVersion, as etcd serves them. None when the watch window no
        longer reaches back that far (the server answers 410 Expired, as after a compaction).
        Objects are the stored dicts, read-only.
        """
        match = self._matcher(rtype, namespace, label_selector, field_selector)
        with self._lock:
            hist = self._history(cluster, rtype)
            self._trim(hist)
            if resource_version < hist.trimmed_upto:
                return None
            state = dict(self._bucket(cluster, rtype))
            # Undo, newest first, every change made after the snapshot.
            for ev in reversed(hist.events[bisect.bisect_right(hist.rvs, resource_version) :]):
                meta = ev.object["metadata"]
                key = self._key(rtype, meta.get("namespace"), meta["name"])
                if ev.type == "ADDED" or ev.old is None:
                    state.pop(key, None)
                else:
                    state[key] = ev.old
        return [
            _outgoing(rtype, state[k])
            for k in sorted(state)
            if (after is None or k > after) and match(state[k])
        ]

    def count(self, cluster: str, rtype: ResourceType) -> int:
        with self._lock:
            return len(self._bucket(cluster, rtype))

    # ------------------------------------------------------------------ writes

    def create(
        self,
        cluster: str,
        rtype: ResourceType,
        obj: Obj,
        *,
        actor: str = "sim",
        dry_run: bool = False,
    ) -> Obj:
        view, rtype, obj = rtype, _storage(rtype), _incoming(rtype, obj)
        with self._lock, self.dry_run_scope(dry_run):
            bucket = self._bucket(cluster, rtype)
            new: Obj = {"apiVersion": rtype.api_version, "kind": rtype.kind}
            new.update((k, copy_obj(v)) for k, v in obj.items() if k not in ("apiVersion", "kind"))
            meta = new.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError.bad_request("metadata must be an object")
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(8):
                    suffix = "".join(self._rng.choice(_GENERATE_ALPHABET) for _ in range(5))
                    candidate = str(meta["generateName"]) + suffix
                    if self._key(rtype, meta.get("namespace"), candidate) not in bucket:
                        break
                meta["name"] = candidate
            name = meta.get("name")
            if not name:
                raise ApiError.invalid(
                    rtype,
                    "",
                    [
                        (
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            if not isinstance(name, str) or len(name) > 253 or not _NAME_RE.match(name):
                raise ApiError.invalid(
                    rtype,
                    str(name),
                    [
                        (
                            "metadata.name",
                            "FieldValueInvalid",
                            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                            "lower case alphanumeric characters, '-' or '.', and must start and end "
                            "with an alphanumeric character",
                        )
                    ],
                )
            if rtype.namespaced:
                ns = meta.get("namespace") or "default"
                meta["namespace"] = ns
                namespace = self._clusters[cluster].get("namespaces", {}).get(("", ns))
                if namespace is None:
                    raise ApiError(
                        404,
                        "NotFound",
                        f'namespaces "{ns}" not found',
                        {"name": ns, "kind": "namespaces"},
                    )
                if namespace["metadata"].get("deletionTimestamp"):
                    raise ApiError.forbidden(
                        f'{rtype.qualified} "{name}" is forbidden: unable to create new content '
                        f"in namespace {ns} because it is being terminated"
                    )
            else:
                meta.pop("namespace", None)
            key = self._key(rtype, meta.get("namespace"), name)
            if key in bucket:
                raise ApiError.already_exists(rtype, name)
            for drop in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
                meta.pop(drop, None)
            meta["uid"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            meta["creationTimestamp"] = meta.get("creationTimestamp") or now_rfc3339(self.clock)
            meta["generation"] = 1
            if rtype.key == "namespaces":
                new.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
                new.setdefault("status", {})["phase"] = "Active"
            self._validate(cluster, rtype, new, None)
            self._commit(cluster, rtype, key, new, None, "ADDED", actor)
            result = _outgoing(view, new)
        self._dispatch()
        return result

    def update(
        self,
        cluster: str,
        rtype: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        actor: str = "sim",
        dry_run: bool = False,
    ) -> Obj:
        """PUT: replace the object (or only its status with ``subresource="status"``).

        A ``metadata.resourceVersion`` in ``obj`` must be the stored one (else 409 Conflict).
        """
        meta = obj.get("metadata") or {}
        view, rtype, obj = rtype, _storage(rtype), _incoming(rtype, obj, subresource)
        with self._lock, self.dry_run_scope(dry_run):
            old = self._bucket(cluster, rtype).get(
                self._key(rtype, meta.get("namespace"), meta.get("name", ""))
            )
            if old is None:
                raise ApiError.not_found(rtype, str(meta.get("name", "")))
            want = meta.get("resourceVersion")
            if want not in (None, "") and str(want) != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(rtype, meta["name"])
            result = self._replace(cluster, rtype, old, copy_obj(obj), subresource, actor)
        self._dispatch()
        return _outgoing(view, result, copy=False)

    def mutate(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        fn: Callable[[Obj], Obj],
        *,
        subresource: str | None = None,
        actor: str = "sim",
        dry_run: bool = False,
    ) -> Obj:
        """Read-modify-write under the lock: ``fn`` gets a copy and returns the new object.

        No resourceVersion check unless ``fn`` leaves a different one in the result (then 409,
        which is how a PATCH carrying a stale resourceVersion fails on a real server).
        """
        view, rtype = rtype, _storage(rtype)
        with self._lock, self.dry_run_scope(dry_run):
            old = self._bucket(cluster, rtype).get(self._key(rtype, namespace, name))
            if old is None:
                raise ApiError.not_found(rtype, name)
            # The result is copied too: it may share dicts with the caller's own state, and
            # stored objects must never change behind the store's back.
            if rtype.key not in conversion.CONVERTED:
                new = copy_obj(fn(copy_obj(old)))
            else:
                changed = fn(_outgoing(view, old))
                if not isinstance(changed, dict):
                    raise ApiError.bad_request("the patched object is not a JSON object")
                new = _incoming(view, changed, subresource)
            if not isinstance(new, dict):
                raise ApiError.bad_request("the patched object is not a JSON object")
            new_meta = new.setdefault("metadata", {})
            if not isinstance(new_meta, dict):
                raise ApiError.bad_request("metadata must be an object")
            want = new_meta.get("resourceVersion")
            if want not in (None, "") and str(want) != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(rtype, name)
            if new_meta.get("name", name) != name:
                raise ApiError.bad_request(
                    f"the name of the object ({new_meta.get('name')}) does not match the name "
                    f"on the URL ({name})"
                )
            new_meta["name"] = name
            if rtype.namespaced:
                new_meta["namespace"] = old["metadata"]["namespace"]
            result = self._replace(cluster, rtype, old, new, subresource, actor)
        self._dispatch()
        return _outgoing(view, result, copy=False)

    def delete(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        actor: str = "sim",
        dry_run: bool = False,
        grace_period: int | None = None,
        propagation: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Obj:
        """Delete now, or, when finalizers remain, set deletionTimestamp and return the object.

        ``propagation`` is "Orphan" to keep dependents (owner references removed); otherwise
        dependents whose owners are all gone are deleted too (the garbage collector's job).
        """
        view, rtype = rtype, _storage(rtype)
        with self._lock, self.dry_run_scope(dry_run):
            bucket = self._bucket(cluster, rtype)
            key = self._key(rtype, namespace, name)
            old = bucket.get(key)
            if old is None:
                raise ApiError.not_found(rtype, name)
            for field_name, value in (preconditions or {}).items():
                if value and old["metadata"].get(field_name) != value:
                    raise ApiError.conflict(
                        rtype,
                        name,
                        f"Precondition failed: {field_name} in precondition: {value}, "
                        f"{field_name} in object meta: {old['metadata'].get(field_name)}",
                    )
            result = self._delete_locked(cluster, rtype, key, old, actor, grace_period, propagation)
        self._dispatch()
        return _outgoing(view, result, copy=False)

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        cluster: str,
        rtype: ResourceType,
        namespace: str | None = None,
        resource_version: str | int | None = None,
        label_selector: str = "",
        field_selector: str = "",
        stop: threading.Event | None = None,
        timeout: float | None = None,
        bookmark_interval: float | None = None,
        bookmark_lead: float = 2.0,
    ) -> Iterator[Event]:
        """Events after ``resource_version``; None, "" or "0" first replays current objects.

        Raises ApiError 410 Expired (on the first ``next()``) when events after that version
        were already dropped from the history. Ends when ``stop`` is set or ``timeout``
        seconds have passed. With ``bookmark_interval``, the watch yields a BOOKMARK event (an
        object carrying only the resourceVersion the watch has reached) every
        ``bookmark_interval`` seconds and once ``bookmark_lead`` seconds before its timeout,
        as the apiserver's watch cache does (``cacheWatcher.nextBookmarkTime``).
        """
        match = self._matcher(rtype, namespace, label_selector, field_selector)
        view, rtype = rtype, _storage(rtype)
        with self._lock:
            self._bucket(cluster, rtype)  # 404 for an unknown cluster, before streaming starts
        events = self._watch(
            cluster, rtype, match, resource_version, stop, timeout, bookmark_interval, bookmark_lead
        )
        if view is rtype:
            return events
        return (_event_view(view, ev) for ev in events)

    def _watch(
        self,
        cluster: str,
        rtype: ResourceType,
        match: Callable[[Obj], bool],
        resource_version: str | int | None,
        stop: threading.Event | None,
        timeout: float | None,
        bookmark_interval: float | None,
        bookmark_lead: float,
    ) -> Iterator[Event]:
        deadline = None if timeout is None else time.monotonic() + timeout
        replay: list[Event] = []
        with self._lock:
            hist = self._history(cluster, rtype)
            if resource_version in (None, "", "0", 0):
                pos = self._rv
                bucket = self._bucket(cluster, rtype)
                replay = [
                    Event(
                        "ADDED",
                        cluster,
                        rtype,
                        copy_obj(bucket[k]),
                        int(bucket[k]["metadata"]["resourceVersion"]),
                    )
                    for k in sorted(bucket)
                    if match(bucket[k])
                ]
            else:
                try:
                    pos = int(str(resource_version))
                except ValueError:
                    raise ApiError.bad_request(
                        f'invalid resource version "{resource_version}"'
                    ) from None
                self._trim(hist)
                if pos < hist.trimmed_upto:
                    raise ApiError.expired(f"too old resource version: {pos} ({hist.trimmed_upto})")
        yield from replay
        next_bookmark = _next_bookmark(time.monotonic(), deadline, bookmark_interval, bookmark_lead)
        while True:
            with self._lock:
                while True:
                    if stop is not None and stop.is_set():
                        return
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        return
                    if pos < hist.trimmed_upto:
                        raise ApiError.expired(
                            f"too old resource version: {pos} ({hist.trimmed_upto})"
                        )
                    start = bisect.bisect_right(hist.rvs, pos)
                    if start < len(hist.events):
                        batch = hist.events[start:]
                        break
                    if next_bookmark is not None and now >= next_bookmark:
                        batch = []
                        pos = max(pos, self._rv)  # every event of ours up to now was sent
                        break
                    wait = 0.2 if stop is not None else None  # poll the stop flag
                    for limit in (deadline, next_bookmark):
                        if limit is not None:
                            left = limit - now
                            wait = left if wait is None else min(wait, left)
                    hist.cond.wait(wait)
            if not batch:
                next_bookmark = _next_bookmark(
                    time.monotonic(), deadline, bookmark_interval, bookmark_lead
                )
                yield _bookmark(cluster, rtype, pos)
                continue
            for ev in batch:
                pos = ev.resource_version
                out = _filtered(ev, match)
                if out is not None:
                    yield out
            if next_bookmark is not None and time.monotonic() >= next_bookmark:
                # A busy watch gets its bookmarks too (they are periodic, not only when quiet).
                next_bookmark = _next_bookmark(
                    time.monotonic(), deadline, bookmark_interval, bookmark_lead
                )
                yield _bookmark(cluster, rtype, pos)

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def dry_run_scope(self, active: bool = True) -> Iterator[None]:
        """While active, this thread's writes are validated and answered but neither stored
        nor announced (``dryRun=All``); used around subresource handlers such as evictions."""
        before = getattr(self._dry, "active", False)
        self._dry.active = active or before
        try:
            yield
        finally:
            self._dry.active = before

    def _bucket(self, cluster: str, rtype: ResourceType) -> dict[Key, Obj]:
        objects = self._clusters.get(cluster)
        if objects is None:
            raise ApiError(404, "NotFound", f'cluster "{cluster}" not found')
        bucket = objects.get(rtype.key)
        if bucket is None:
            bucket = objects[rtype.key] = {}
            self._types.setdefault(rtype.key, rtype)
        return bucket

    def _history(self, cluster: str, rtype: ResourceType) -> _History:
        hist = self._histories.get((cluster, rtype.key))
        if hist is None:
            hist = self._histories[(cluster, rtype.key)] = _History(self._lock)
        return hist

    def _trim(self, hist: _History, cut: int = 0) -> None:
        """Drop the first ``cut`` events, and those older than the time window."""
        if self.history_seconds is not None and hist.times:
            oldest = self.clock() - self.history_seconds
            cut = max(cut, bisect.bisect_left(hist.times, oldest))
        if cut <= 0:
            return
        hist.trimmed_upto = hist.rvs[cut - 1]
        del hist.rvs[:cut]
        del hist.times[:cut]
        del hist.events[:cut]

    @staticmethod
    def _key(rtype: ResourceType, namespace: str | None, name: str) -> Key:
        return ((namespace or "default") if rtype.namespaced else "", name)

    def _matcher(
        self, rtype: ResourceType, namespace: str | None, label_selector: str, field_selector: str
    ) -> Callable[[Obj], bool]:
        labels = selectors.parse_label_selector(label_selector or "")
        fields = selectors.parse_field_selector(field_selector or "", rtype)
        ns = namespace if rtype.namespaced and namespace else None

        def match(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if ns is not None and meta.get("namespace") != ns:
                return False
            if labels and not selectors.match_labels(labels, meta.get("labels") or {}):
                return False
            return not fields or selectors.match_fields(fields, obj)

        return match

    def _validate(self, cluster: str, rtype: ResourceType, new: Obj, old: Obj | None) -> None:
        for fn in self._validators.get(rtype.key, ()):
            fn(cluster, new, old)

    def _replace(
        self,
        cluster: str,
        rtype: ResourceType,
        old: Obj,
        new: Obj,
        subresource: str | None,
        actor: str,
    ) -> Obj:
        """Apply an update to ``old`` (stored), keeping what clients may not change."""
        if subresource is not None and (subresource != "status" or not rtype.has_status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource == "status":
            status = new.get("status")
            new = copy_obj(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            if rtype.has_status:
                if "status" in old:
                    new["status"] = copy_obj(old["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError.bad_request("metadata must be an object")
            old_meta = old["metadata"]
            if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
                raise ApiError.invalid(
                    rtype,
                    old_meta["name"],
                    [
                        (
                            "metadata.uid",
                            "FieldValueInvalid",
                            f'Invalid value: "{meta["uid"]}": field is immutable',
                        )
                    ],
                )
            for kept in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "generateName",
            ):
                if kept in old_meta:
                    meta[kept] = old_meta[kept]
                else:
                    meta.pop(kept, None)
            if "managedFields" not in meta and "managedFields" in old_meta:
                # As upstream: an update that leaves managedFields out keeps them.
                meta["managedFields"] = copy_obj(old_meta["managedFields"])
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise ApiError.invalid(
                        rtype,
                        old_meta["name"],
                        [
                            (
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {sorted(added)!r}",
                            )
                        ],
                    )
            if not meta.get("finalizers"):
                meta.pop("finalizers", None)
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy_obj(old)  # a no-op write changes nothing, as on a real server
        if _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 0)) + 1
        self._validate(cluster, rtype, new, old)
        key = self._key(rtype, new["metadata"].get("namespace"), new["metadata"]["name"])
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(cluster, rtype, key, new, old, actor, None)
            return copy_obj(new)
        self._commit(cluster, rtype, key, new, old, "MODIFIED", actor)
        return copy_obj(new)

    def _delete_locked(
        self,
        cluster: str,
        rtype: ResourceType,
        key: Key,
        old: Obj,
        actor: str,
        grace_period: int | None,
        propagation: str | None,
    ) -> Obj:
        meta = old["metadata"]
        if rtype.key == "namespaces":
            return self._delete_namespace(cluster, rtype, key, old, actor)
        grace = pod_grace_period(old, grace_period) if rtype.key == "pods" else 0
        if grace > 0:
            # Graceful deletion (the pod registry's strategy): the pod stays, Terminating,
            # until its kubelet (the world's physics) deletes it with grace 0 at the end of
            # the period. A later delete may shorten the period, never lengthen it.
            pending = meta.get("deletionGracePeriodSeconds")
            if meta.get("deletionTimestamp") and pending is not None and pending <= grace:
                return copy_obj(old)
            new = copy_obj(old)
            when = datetime.fromtimestamp(self.clock() + grace, UTC)
            new["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            if not meta.get("deletionTimestamp"):
                new["metadata"]["generation"] = int(meta.get("generation", 0)) + 1
            self._commit(cluster, rtype, key, new, old, "MODIFIED", actor)
            return copy_obj(new)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return copy_obj(old)
            new = copy_obj(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock)
            new["metadata"]["deletionGracePeriodSeconds"] = int(grace_period or 0)
            new["metadata"]["generation"] = int(meta.get("generation", 0)) + 1
            self._commit(cluster, rtype, key, new, old, "MODIFIED", actor)
            if propagation == "Orphan":
                self._collect(cluster, meta["uid"], orphan=True)
            return copy_obj(new)
        last = copy_obj(old)
        self._remove(cluster, rtype, key, last, old, actor, propagation)
        return copy_obj(last)

    def _delete_namespace(
        self, cluster: str, rtype: ResourceType, key: Key, old: Obj, actor: str
    ) -> Obj:
        """Namespace lifecycle: Terminating, contents deleted, then the namespace goes."""
        name = key[1]
        new = old
        if not old["metadata"].get("deletionTimestamp"):
            new = copy_obj(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            self._commit(cluster, rtype, key, new, old, "MODIFIED", actor)
        for rkey, bucket in list(self._clusters[cluster].items()):
            member_type = self._types[rkey]
            if not member_type.namespaced:
                continue
            for k in sorted(k for k in bucket if k[0] == name):
                obj = bucket.get(k)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    self._delete_locked(cluster, member_type, k, obj, actor, None, None)
        self._finish_namespace(cluster, name, actor)
        current = self._clusters[cluster]["namespaces"].get(key)
        return copy_obj(current if current is not None else new)

    def _finish_namespace(self, cluster: str, name: str, actor: str) -> None:
        namespaces = self._clusters[cluster].get("namespaces", {})
        ns = namespaces.get(("", name))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for rkey, bucket in self._clusters[cluster].items():
            if self._types[rkey].namespaced and any(k[0] == name for k in bucket):
                return
        self._remove(cluster, self._types["namespaces"], ("", name), copy_obj(ns), ns, actor, None)

    def _commit(
        self,
        cluster: str,
        rtype: ResourceType,
        key: Key,
        new: Obj,
        old: Obj | None,
        etype: str,
        actor: str,
    ) -> None:
        if getattr(self._dry, "active", False):
            if old is None:
                new["metadata"]["resourceVersion"] = ""
            return
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._clusters[cluster][rtype.key][key] = new
        uid = new["metadata"]["uid"]
        self._uids[(cluster, uid)] = (rtype.key, key)
        self._index_owners(cluster, rtype.key, key, old, new)
        self._record(Event(etype, cluster, rtype, copy_obj(new), self._rv, old, actor))

    def _remove(
        self,
        cluster: str,
        rtype: ResourceType,
        key: Key,
        last: Obj,
        old: Obj,
        actor: str,
        propagation: str | None,
    ) -> None:
        if getattr(self._dry, "active", False):
            return
        self._rv += 1
        last["metadata"]["resourceVersion"] = str(self._rv)
        del self._clusters[cluster][rtype.key][key]
        uid = last["metadata"]["uid"]
        self._uids.pop((cluster, uid), None)
        self._index_owners(cluster, rtype.key, key, old, None)
        self._record(Event("DELETED", cluster, rtype, copy_obj(last), self._rv, old, actor))
        self._collect(cluster, uid, orphan=propagation == "Orphan")
        if rtype.namespaced:
            self._finish_namespace(cluster, key[0], actor)

    def _index_owners(
        self, cluster: str, rkey: str, key: Key, old: Obj | None, new: Obj | None
    ) -> None:
        def owners(obj: Obj | None) -> set[str]:
            refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
            return {r["uid"] for r in refs if isinstance(r, dict) and r.get("uid")}

        before, after = owners(old), owners(new)
        for uid in before - after:
            deps = self._dependents.get((cluster, uid))
            if deps is not None:
                deps.discard((rkey, key))
                if not deps:
                    del self._dependents[(cluster, uid)]
        for uid in after - before:
            self._dependents.setdefault((cluster, uid), set()).add((rkey, key))

    def _collect(self, cluster: str, owner_uid: str, *, orphan: bool) -> None:
        """The garbage collector: dependents of a removed owner are orphaned or deleted.

        A dependent that still has a live owner only loses the dangling reference, as with
        the real collector; with ``orphan`` every dependent just loses the reference.
        """
        for rkey, key in sorted(self._dependents.pop((cluster, owner_uid), set())):
            rtype = self._types[rkey]
            obj = self._clusters[cluster].get(rkey, {}).get(key)
            if obj is None:
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != owner_uid]
            alive = [r for r in remaining if (cluster, r.get("uid")) in self._uids]
            if orphan or alive:
                new = copy_obj(obj)
                if remaining:
                    new["metadata"]["ownerReferences"] = remaining
                else:
                    new["metadata"].pop("ownerReferences", None)
                self._commit(cluster, rtype, key, new, obj, "MODIFIED", "garbage-collector")
                continue
            self._delete_locked(cluster, rtype, key, obj, "garbage-collector", None, None)

    def _record(self, ev: Event) -> None:
        hist = self._history(ev.cluster, ev.resource)
        hist.rvs.append(ev.resource_version)
        hist.times.append(self.clock())
        hist.events.append(ev)
        cut = len(hist.events) - self.history if len(hist.events) > 2 * self.history else 0
        self._trim(hist, cut)
        hist.cond.notify_all()
        if self._subscribers:
            self._pending.append(ev)

    def _dispatch(self) -> None:
        """Call subscribers for pending events, in order, outside the store lock."""
        if getattr(self._dispatching, "active", False):
            return  # a subscriber wrote: the outer loop on this thread delivers it next
        with self._dispatch_lock:
            self._dispatching.active = True
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            return
                        ev = self._pending.popleft()
                        subscribers = list(self._subscribers)
                    for fn in subscribers:
                        fn(ev)
            finally:
                self._dispatching.active = False


def pod_grace_period(pod: Obj, requested: int | None) -> int:
    """Seconds a pod's deletion waits for its kubelet, as the pod strategy's
    ``CheckGracefulDelete`` decides: the DeleteOptions' value, else the pod's
    ``terminationGracePeriodSeconds`` (defaulted to 30 at creation); 0 for a pod bound to no
    node or already finished; a negative request counts as 1."""
    spec = pod.get("spec") or {}
    if requested is not None:
        period = int(requested)
    else:
        period = int(spec.get("terminationGracePeriodSeconds", DEFAULT_POD_GRACE_SECONDS))
    if not spec.get("nodeName"):
        period = 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        period = 0
    return 1 if period < 0 else period


def _bookmark(cluster: str, rtype: ResourceType, position: int) -> Event:
    """A BOOKMARK event: the resourceVersion a watch has reached, and nothing else."""
    obj = {
        "apiVersion": rtype.api_version,
        "kind": rtype.kind,
        "metadata": {"resourceVersion": str(position)},
    }
    return Event("BOOKMARK", cluster, rtype, obj, position)


def _next_bookmark(
    now: float, deadline: float | None, interval: float | None, lead: float
) -> float | None:
    """When a watch sends its next bookmark: ``interval`` from now, or ``lead`` before its
    deadline if that comes first; None once that moment has passed (no more bookmarks)."""
    if interval is None:
        return None
    when = now + interval
    if deadline is not None:
        when = min(when, deadline - lead)
    return when if when >= now else None


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _filtered(ev: Event, match: Callable[[Obj], bool]) -> Event | None:
    """The event as a selector-filtered watcher sees it (objects moving in and out)."""
    now = match(ev.object)
    if ev.type == "MODIFIED" and ev.old is not None:
        before = match(ev.old)
        if now and not before:
            return Event(
                "ADDED", ev.cluster, ev.resource, ev.object, ev.resource_version, ev.old, ev.actor
            )
        if before and not now:
            return Event(
                "DELETED", ev.cluster, ev.resource, ev.object, ev.resource_version, ev.old, ev.actor
            )
    return ev if now else None


def _storage(rtype: ResourceType) -> ResourceType:
    """The resource type objects of ``rtype``'s kind are stored as (its storage version)."""
    if rtype.key in conversion.CONVERTED:
        return resources.RESOURCES[rtype.key]
    return rtype


def _incoming(rtype: ResourceType, obj: Obj, subresource: str | None = None) -> Obj:
    """A written object in the storage version: validated against the schema of the version
    it was written in (as the API server validates a request, before converting it for
    storage), then converted."""
    if rtype.key not in conversion.CONVERTED:
        return obj
    obj = {**obj, "apiVersion": rtype.api_version, "kind": rtype.kind}
    if subresource is None:
        # The check prunes unknown fields from what it is given: a copy of the spec only.
        checked = {**obj, "spec": copy_obj(obj["spec"])} if "spec" in obj else obj
        resources.validate_capi("", checked, None)
    if rtype.version == conversion.STORAGE_VERSION:
        return obj
    return conversion.to_v1beta2(obj)


def _outgoing(rtype: ResourceType, obj: Obj, *, copy: bool = True) -> Obj:
    """A stored object as ``rtype``'s version shows it (always a copy the caller may keep)."""
    if rtype.key not in conversion.CONVERTED or rtype.version == conversion.STORAGE_VERSION:
        return copy_obj(obj) if copy else obj
    return conversion.to_v1beta1(obj, resources.api_version_getter)


def _event_view(rtype: ResourceType, ev: Event) -> Event:
    if ev.type == "BOOKMARK":
        obj = {**ev.object, "apiVersion": rtype.api_version}
        return Event(ev.type, ev.cluster, rtype, obj, ev.resource_version, None, ev.actor)
    old = None if ev.old is None else _outgoing(rtype, ev.old)
    return Event(
        ev.type, ev.cluster, rtype, _outgoing(rtype, ev.object), ev.resource_version, old, ev.actor
    )
