"""List-then-watch caches of Kubernetes objects, kept as compact records.

Adapter layer. A cache LISTs its resource once, in pages (``limit``/``continue``, so no answer
holds a whole fleet's objects at once), then follows a WATCH with bookmarks from the list's
resourceVersion, resuming from the last version it saw when the stream ends or drops, and
LISTs again only when the server answers 410 Gone. Repeated observations therefore cost no
requests at all.

Objects are parsed from the JSON as it arrives (the client's generated models are far too slow
at fleet scale) and handed to the cache's ``project``: what the cache keeps is its result, for
the observer a ``gitops.inventory`` record built by ``gitops.kube.translate`` holding only what
drift, plan and rollout read. Without ``project`` the plain dicts are kept (small caches: Leases,
ConfigMaps); readers must treat them as read-only. With ``quiet``, a modification whose record
equals the one kept (a kubelet's heartbeat on a Node) is stored without waking anyone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import tenacity
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from gitops.errors import Transient
from gitops.kube.errors import Gone, KubeError, call, retry_after_of, translate

log = logging.getLogger(__name__)

WATCH_TIMEOUT_SECONDS = 300  # ask the server to end each watch after this; we resume at once
# Objects per LIST page: what the API server's own clients use, and small enough that one
# page of Nodes (a few MB of JSON) is all that is ever held undigested.
PAGE_SIZE = 500
ListFunction = Callable[..., Any]
Key = tuple[str, str]  # (namespace, name)
R = TypeVar("R")


class WatchCache(Generic[R]):
    """The objects of one resource in one cluster, kept current by a background watch."""

    def __init__(
        self,
        what: str,
        list_fn: ListFunction,
        *,
        on_change: Callable[[str, R], None] | None = None,
        backoff_max: float = 10.0,
        project: Callable[[dict[str, Any]], R] | None = None,
        quiet: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.what = what
        self._project: Callable[[dict[str, Any]], R] = project or (lambda obj: cast(R, obj))
        # quiet: a modification whose record equals the kept one (no reader decides on it):
        # the record is replaced, but the generation does not move and on_change is not
        # called, so nothing wakes for it.
        self._quiet = quiet
        self.page_size = page_size
        self._list_fn = list_fn
        self._on_change = on_change
        self._objects: dict[Key, R] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None  # the open watch response (urllib3), for stop()
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=0.1, max=backoff_max, jitter=0.5
        )
        self.resource_version = ""
        # An extra label selector for LIST and WATCH (``select``), and the one the objects
        # kept were last listed with (None until the first list completes).
        self._selector = ""
        self._reselect = False
        self.listed_selector: str | None = None
        self._streamed = False  # the current watch delivered at least one event
        self._opened = False  # the current watch's response arrived
        self.lists = 0  # LIST requests, one per page
        self.watches = 0
        self.events = 0
        self.quiet_events = 0
        self.last_error = ""

    # -- reading -------------------------------------------------------------------------

    def objects(self) -> list[R]:
        """The current records, sorted by namespace and name (read-only)."""
        with self._lock:
            return [self._objects[k] for k in sorted(self._objects)]

    def get(self, namespace: str, name: str) -> R | None:
        with self._lock:
            return self._objects.get((namespace, name))

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def generation(self) -> int:
        """Grows by one with every change seen; see ``wait_changed``."""
        return self._generation

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the cache has listed with its current selector (see ``select``)."""
        with self._changed:
            return (
                self._changed.wait_for(
                    lambda: self.listed_selector == self._selector or self._stop.is_set(), timeout
                )
                and self.listed_selector == self._selector
            )

    def wait_changed(self, since: int, timeout: float) -> int:
        """Block until the generation moves past ``since`` or ``timeout`` passes; return it."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation > since or self._stop.is_set(), timeout)
            return self._generation

    # -- running -------------------------------------------------------------------------

    def start(self) -> WatchCache[R]:
        if self._thread is not None:
            return self  # one reading thread per cache
        self._thread = threading.Thread(target=self._run, name=f"watch {self.what}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._cut()
        with self._changed:
            self._changed.notify_all()

    def select(self, selector: str) -> None:
        """List and watch only objects matching the label ``selector`` from now on.

        The current watch is cut and the cache lists again; until that list completes, it
        keeps the objects of the previous selection (``listed_selector`` says which).
        """
        with self._lock:
            if selector == self._selector:
                return
            self._selector, self._reselect = selector, True
        self._cut()

    def _cut(self) -> None:
        response = self._response
        if response is not None:
            # Unblock the reading thread now rather than at the next event. Shut the socket
            # down rather than close the response: closing takes the buffered reader's lock,
            # which the reading thread holds while it waits, and would hang until an event.
            with contextlib.suppress(Exception):
                response.connection.sock.shutdown(socket.SHUT_RDWR)

    def _selected(self) -> dict[str, str]:
        return {"label_selector": self._selector} if self._selector else {}

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        attempt = 0
        need_list = True
        while not self._stop.is_set():
            try:
                if self._reselect:
                    need_list = True
                if need_list:
                    self._relist()
                    need_list = False
                self._follow()
                attempt = 0
                continue  # the server ended the watch (timeoutSeconds): resume at once
            except Gone:
                log.info("%s: 410 Gone (history expired); listing again.", self.what)
                need_list = True
            except Transient as err:
                if self._stop.is_set():
                    break  # stop() closed the stream under us
                if self._reselect:
                    continue  # select() did: list with the new selector at once
                # A watch whose stream was open (the server or a proxy cut it) resumes at
                # once; only failures to open one, in a row, back off.
                established = self._streamed or self._opened
                attempt = 1 if established else attempt + 1
                self.last_error = str(err)
                # and never sooner than a 429's Retry-After asks
                delay = max(self._backoff(_state(attempt)), retry_after_of(err))
                # A dropped watch is routine (servers end them, proxies cut them): say so
                # quietly the first time, loudly when it keeps failing.
                level = logging.INFO if attempt == 1 else logging.WARNING
                log.log(level, "Watching %s failed: %s; retrying in %.1fs.", self.what, err, delay)
                self._stop.wait(delay)
            except KubeError as err:  # Forbidden, NotFound: a human must act, keep trying slowly
                attempt += 1
                self.last_error = str(err)
                log.error("Cannot watch %s: %s", self.what, err)
                self._stop.wait(self._backoff(_state(attempt + 5)))

    def _relist(self) -> None:
        with self._lock:
            selector, self._reselect = self._selector, False
        fresh, version = self._list_pages(selector)
        with self._changed:
            old = self._objects
            self._objects = fresh
            self.listed_selector = selector
            self.resource_version = version
            self._generation += 1
            self._changed.notify_all()
        self.last_error = ""
        self._synced.set()
        if self._on_change is not None:
            for key in sorted(set(old) | set(fresh)):
                if old.get(key) is not fresh.get(key):
                    self._on_change(
                        "DELETED" if key not in fresh else "MODIFIED", fresh.get(key) or old[key]
                    )

    def _list_pages(self, selector: str) -> tuple[dict[Key, R], str]:
        """Every object, page by page, projected as each page arrives; and the list's
        resourceVersion. A continue token that expired mid-way is a 410 like an expired watch's:
        ``_run`` starts the list over (the pages read belong to a snapshot the server dropped)."""
        fresh: dict[Key, R] = {}
        token = ""
        while True:
            page: dict[str, Any] = {"limit": self.page_size} if self.page_size else {}
            if selector:
                page["label_selector"] = selector
            if token:
                page["_continue"] = token
            response = call(
                f"listing {self.what}",
                self._list_fn,
                _preload_content=False,
                _request_timeout=(5, 60),
                **page,
            )
            body = json.loads(response.data)
            self.lists += 1
            for obj in body.get("items") or []:
                fresh[_key(obj)] = self._project(obj)
            meta = body.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                return fresh, str(meta.get("resourceVersion", ""))

    def _follow(self) -> None:
        # The watch is read here rather than through ``kubernetes.watch.Watch.stream``: with
        # ``deserialize=False`` that generator fails on an ERROR event with a KeyError
        # ('raw_object') instead of reporting the 410 Expired it carries, which killed this
        # thread and left the cache silently stale. An ERROR event becomes a typed error here.
        self.watches += 1
        self._streamed = self._opened = False
        with translate(f"watching {self.what}"):
            response = self._list_fn(
                watch=True,
                resource_version=self.resource_version,
                timeout_seconds=WATCH_TIMEOUT_SECONDS,
                allow_watch_bookmarks=True,
                _preload_content=False,
                _request_timeout=(5, WATCH_TIMEOUT_SECONDS + 30),
                **self._selected(),
            )
            self._response = response
            self._opened = True  # the server answered: what fails from here on is a dropped stream
            try:
                if self._stop.is_set() or self._reselect:
                    return
                for line in iter_resp_lines(response):
                    if self._stop.is_set() or self._reselect:
                        break
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        raise _status_error(event.get("object") or {})
                    self._streamed = True
                    self._apply(event)
            finally:
                self._response = None
                # Close first: a stream left unread must not go back to the pool for reuse.
                with contextlib.suppress(Exception):
                    response.close()
                with contextlib.suppress(Exception):
                    response.release_conn()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        version = str(obj.get("metadata", {}).get("resourceVersion", ""))
        if kind == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        key = _key(obj)
        record = self._project(obj)
        with self._changed:
            old = self._objects.get(key)
            if kind == "MODIFIED" and self._quiet and old is not None and old == record:
                self._objects[key] = record
                self.resource_version = version or self.resource_version
                self.quiet_events += 1
                return
            if kind == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = record
            self.resource_version = version or self.resource_version
            self._generation += 1
            self.events += 1
            self._changed.notify_all()
        if self._on_change is not None:
            self._on_change(str(kind), record)


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _status_error(status: dict[str, Any]) -> ApiException:
    """The ApiException a watch's ERROR event (a v1 Status) stands for; ``translate`` types it."""
    error = ApiException(
        status=int(status.get("code") or 500), reason=str(status.get("reason", ""))
    )
    error.body = json.dumps(status)
    return error


_RETRYING = tenacity.Retrying()  # only what a RetryCallState must point at; never run


def _state(attempt: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(_RETRYING, None, (), {})
    state.attempt_number = attempt
    return state
