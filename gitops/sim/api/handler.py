"""The simulator's HTTP front: the Kubernetes API over HTTP/1.1.

Tool layer, the simulator's API machinery (``gitops.sim.api``), its top. ``ApiHandler`` turns requests into store
calls: the management cluster is served at ``/`` and each workload cluster at
``/clusters/<name>/``; discovery, get, list (with selectors and limit/continue), watch (chunked
JSON lines, ``ERROR`` events with a Status for 410 Expired), create, update, patch (merge,
strategic merge, JSON patch), delete (DeleteOptions), deletecollection, status subresources,
pods/eviction, and ``Table`` output for kubectl. Every failure is answered with a
``Status`` body carrying the server's reason and code. Injected faults (``faults.py``) shape
resource requests; every request is written to the audit log (``audit.py``). Who may do what
is ``authz.py``'s decision: ServiceAccount tokens and impersonated users are held to RBAC
(401/403), the admin token is not, and a request without credentials is 401 (but on the health
and version paths). Bodies are decoded against the kinds' schemas (``schema.py``), apply
patches go through ``apply.py``, OpenAPI documents come from ``openapi.py``. With ``tls`` the
same port also speaks https (``tls.py``) and the kubeconfigs point there.

It must never import or decide anything about the simulated world (``gitops.sim.world``: the
world hooks itself into the store, e.g. as the pods/eviction handler) and never let an exception
escape as a traceback to a client: anything unexpected becomes a 500 Status. ``Simulator``
(``gitops.sim.simulator``) runs it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from gitops.sim.api import authz, discovery, openapi, reviews, schema, tables
from gitops.sim.api.apply import apply as apply_config
from gitops.sim.api.audit import AuditLog
from gitops.sim.api.faults import Decision, Injector
from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.patch import APPLY, apply_patch
from gitops.sim.api.resources import (
    CAPI_VERSIONS,
    NAMESPACES,
    NODES,
    PODS,
    REVIEWS,
    SERVED,
    SERVICEACCOUNTS,
    groups,
    pod_update_problems,
    resource_at,
)
from gitops.sim.api.store import MANAGEMENT, Store, copy_obj, now_rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TOKEN = "gitops-sim-admin-token"
USER = "sim-admin"
DEFAULT_VERSION = "v1.31.4"
WATCH_DEFAULT_TIMEOUT = 1800.0  # the real server's --min-request-timeout
BOOKMARK_INTERVAL = 60.0  # the watch cache's bookmark frequency, at time scale 1
BOOKMARK_BEFORE_TIMEOUT = 2.0  # and one bookmark this long before a watch's timeout
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)
STANDARD_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource")


class _WatchStop:
    """Tells a store watch to end: server stopping, client gone, or an injected drop due."""

    def __init__(self, server_stop: threading.Event, sock: socket.socket, drop_at: float | None):
        self.server_stop = server_stop
        self.sock = sock
        self.drop_at = drop_at
        self.dropped = False

    def is_set(self) -> bool:
        if self.server_stop.is_set():
            return True
        if self.drop_at is not None and time.monotonic() >= self.drop_at:
            self.dropped = True
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable and isinstance(self.sock, ssl.SSLSocket):
                return True  # a watching https client sends nothing but its close (no peeking)
            if readable and not self.sock.recv(1, socket.MSG_PEEK):
                return True  # the client closed its end
        except (OSError, ValueError):
            return True
        return False


class _Request:
    """What a resource request is about, once its path is parsed."""

    def __init__(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
    ) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.name = name
        self.subresource = subresource


class ApiServer(ThreadingHTTPServer):
    """The HTTP server; its handler reads ``store``, ``audit``, ``faults`` from here."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a controller opens many watches at once; 5 would reset some

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        *,
        audit: AuditLog | None = None,
        faults: Injector | None = None,
        versions: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        capi_versions: tuple[str, ...] = CAPI_VERSIONS,
    ) -> None:
        super().__init__(address, ApiHandler)
        self.store = store
        # The cluster.x-k8s.io versions served: both (v1beta2 preferred), or v1beta1 only as an
        # old management cluster (before Cluster API v1.11) serves.
        self.capi_versions = capi_versions
        self.tls = tls
        self.authorizer = authz.Authorizer(store, admin_tokens={TOKEN: USER})
        self.audit = audit or AuditLog(None)
        self.faults = faults or Injector("")
        self.versions = versions or {}
        self.stopping = threading.Event()
        # Bookmark frequency of watches (the Simulator scales it by its time scale).
        self.bookmark_interval = BOOKMARK_INTERVAL
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def address(self) -> str:
        """host:port actually bound (port 0 resolved)."""
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"{host}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With ``tls``, a connection opening with a TLS handshake (0x16) is served over TLS."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(10)
            first = request.recv(1, socket.MSG_PEEK)
            request.settimeout(None)
            if first == b"\x16":
                with self._conn_lock:
                    self._connections.discard(request)
                request = self.tls.wrap_socket(request, server_side=True)
                with self._conn_lock:
                    self._connections.add(request)
        except (OSError, ssl.SSLError) as err:
            log.debug("A connection from %s failed before its request: %s", client_address, err)
            return
        try:
            super().finish_request(request, client_address)
        finally:
            if isinstance(request, ssl.SSLSocket):
                with self._conn_lock:
                    self._connections.discard(request)
                request.close()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class ApiHandler(BaseHTTPRequestHandler):
    """One connection; one ``_handle`` per request (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers written in two sends would wait for ACKs
    server: ApiServer
    server_version = "gitops-sim"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _handle(self, method: str) -> None:
        self._audit: Obj = {
            "cluster": "",
            "verb": method.lower() if method != "GET" else "get",
            "resource": "",
            "group": "",
            "subresource": "",
            "namespace": "",
            "name": "",
            "fault": "",
        }
        self._audited = False
        self._streaming = False
        self._principal: authz.UserInfo | None = None
        self._dups: dict[int, list[str]] = {}  # repeated keys of the decoded body (by dict id)
        self._warnings: list[str] = []  # Warning headers of the answer
        split = urlsplit(self.path)
        self._query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self._path = split.path
        try:
            body = self._read_body()
            self._route(method, split.path, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # a bug of ours must still answer as a server would
            if self._streaming:  # a watch already answered 200: all we can do is hang up
                log.exception("The simulator failed during a watch on %s.", self.path)
                self.close_connection = True
                return
            if not isinstance(err, ApiError):
                log.exception("The simulator failed on %s %s.", method, self.path)
                err = ApiError.internal(f"simulator error: {err!r}")
            self._send_error(err)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> str:
        if self._principal is not None:
            return self._principal.name
        auth = self.headers.get("Authorization", "")
        if auth == f"Bearer {TOKEN}":
            return USER
        return "system:anonymous" if not auth else "unknown"

    def _log_request(self, code: int) -> None:
        if self._audited:
            return
        self._audited = True
        a = self._audit
        self.server.audit.request(
            cluster=a["cluster"],
            verb=a["verb"],
            resource=a["resource"],
            subresource=a["subresource"],
            namespace=a["namespace"],
            name=a["name"],
            user_agent=self.headers.get("User-Agent", ""),
            code=code,
            user=self._user(),
            group=a["group"],
            path=self._path,
            fault=a["fault"],
        )

    def _send_json(
        self,
        code: int,
        obj: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        self._log_request(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for text in self._warnings:
            self.send_header("Warning", '299 - "' + text.replace('"', '\\"') + '"')
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, code: int, data: bytes, content_type: str = "application/json") -> None:
        """An answer already serialized (the cached OpenAPI documents)."""
        self._log_request(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        headers = {}
        if err.retry_after is not None:
            headers["Retry-After"] = str(err.retry_after)
        try:
            self._send_json(err.code, err.status_body(), headers)
        except OSError:
            self.close_connection = True

    # ------------------------------------------------------------------ routing

    def _route(self, method: str, path: str, body: bytes) -> None:
        parts = [unquote(p) for p in path.split("/") if p]
        cluster = MANAGEMENT
        if len(parts) >= 2 and parts[0] == "clusters":
            cluster = parts[1]
            parts = parts[2:]
            self._audit["cluster"] = cluster
            if not self.server.store.has_cluster(cluster):
                raise ApiError(404, "NotFound", f'cluster "{cluster}" not found')
        self._principal = self._identify(cluster, parts)
        if method == "GET" and self._non_resource(cluster, parts):
            return
        req = self._parse(parts)
        if req is None:
            raise NOT_FOUND
        self._serve(method, cluster, req, body)

    def _identify(self, cluster: str, parts: list[str]) -> authz.UserInfo:
        """Who the request is: its bearer token (401 without one, but on the public health and
        version paths), then whoever it impersonates if it may (403 otherwise)."""
        authorizer = self.server.authorizer
        authorization = self.headers.get("Authorization", "")
        if not authorization and authz.is_public("/" + "/".join(parts)):
            return authz.anonymous()
        user = authorizer.authenticate(authorization, cluster)
        name = self.headers.get("Impersonate-User", "")
        groups = self.headers.get_all("Impersonate-Group") or []
        if name or groups:
            self._principal = user  # a refusal is audited as the caller's
            user = authorizer.impersonate(user, cluster, name, list(groups))
        return user

    def _non_resource(self, cluster: str, parts: list[str]) -> bool:
        """Discovery and health; True when answered."""
        doc: Any = None
        if parts == ["version"]:
            doc = discovery.version(self.server.versions.get(cluster, DEFAULT_VERSION))
        elif parts and parts[0] in ("healthz", "livez", "readyz"):
            self._log_request(200)
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        elif parts == ["api"]:
            doc = discovery.api_versions(self.server.address)
        elif parts == ["api", "v1"]:
            doc = discovery.resource_list("", "v1", self.server.capi_versions)
        elif parts == ["apis"]:
            doc = discovery.api_group_list(self.server.capi_versions)
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(parts[1], self.server.capi_versions)
            if doc is None:
                raise NOT_FOUND
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(parts[1], parts[2], self.server.capi_versions)
            if doc is None:
                raise NOT_FOUND
        elif parts == ["openapi", "v3"]:
            doc = openapi.v3_index(self.server.capi_versions)
        elif parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            gv = parts[2:]
            document: bytes | None = None
            if gv[0] == "api" and len(gv) == 2:
                document = openapi.v3("", gv[1])
            elif (
                gv[0] == "apis"
                and len(gv) == 3
                and groups(self.server.capi_versions).get(gv[1], []).count(gv[2])
            ):
                document = openapi.v3(gv[1], gv[2])
            if document is None:
                raise NOT_FOUND
            self._send_bytes(200, document)
            return True
        elif parts == ["openapi", "v2"]:
            accept = self.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                raise ApiError(
                    406,
                    "NotAcceptable",
                    f"only application/json is served, not {accept!r} (protobuf is not served)",
                )
            self._send_bytes(200, openapi.v2(self.server.capi_versions))
            return True
        elif parts and parts[0] == "openapi":
            raise NOT_FOUND
        else:
            return False
        self._send_json(200, doc)
        return True

    def _parse(self, parts: list[str]) -> _Request | None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        namespace = None
        served = self.server.capi_versions
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and resource_at(group, version, rest[2], served)
        ):
            namespace, rest = rest[1], rest[2:]
        rtype = resource_at(group, version, rest[0], served)
        if rtype is None or len(rest) > 3:
            return None
        if namespace is not None and not rtype.namespaced:
            return None
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and sub not in rtype.subresources:
            return None
        if rtype is NAMESPACES and name is not None:
            namespace = None
        self._audit.update(
            resource=rtype.plural,
            group=rtype.group,
            namespace=namespace or "",
            name=name or "",
            subresource=sub or "",
        )
        return _Request(rtype, namespace, name, sub)

    def _attributes(self, verb: str, req: _Request) -> authz.Attributes:
        name = req.name or ""
        if verb in ("list", "watch"):  # as upstream: a list of one name is authorized by name
            for term in self._query.get("fieldSelector", "").split(","):
                key, _, value = term.partition("=")
                if key.strip() == "metadata.name":
                    name = value.removeprefix("=").strip()  # "=" and "==" alike
        namespace = req.namespace or ""
        if req.rtype is NAMESPACES and name:
            namespace = name  # upstream authorizes a namespace in itself
        return authz.Attributes(
            verb, req.rtype.group, req.rtype.plural, req.subresource or "", namespace, name
        )

    def _verb(self, method: str, req: _Request) -> str:
        if method == "GET":
            if req.name is None:
                return "watch" if self._query.get("watch") in ("true", "1") else "list"
            return "get"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        return "delete" if req.name is not None else "deletecollection"

    def _serve(self, method: str, cluster: str, req: _Request, body: bytes) -> None:
        verb = self._verb(method, req)
        self._audit["verb"] = verb
        # As the default system:basic-user binding: any authenticated user may ask can-i.
        review = req.rtype in REVIEWS and self._principal is not None
        if self._principal is not None and not self._principal.privileged and not review:
            self.server.authorizer.authorize(self._principal, cluster, self._attributes(verb, req))
        decision = self.server.faults.decide(verb, req.rtype.plural, req.name or "")
        if decision.delay:
            self._audit["fault"] = "latency"
            time.sleep(decision.delay)
        if decision.error is not None:
            self._audit["fault"] = "error"
            raise decision.error
        store = self.server.store
        rtype, ns, name, sub = req.rtype, req.namespace, req.name, req.subresource
        if rtype in REVIEWS:
            if verb != "create" or name is not None:
                raise ApiError.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            assert self._principal is not None
            self._send_json(
                201,
                reviews.answer(
                    self.server.authorizer, self._principal, cluster, rtype, self._decode(body)
                ),
            )
            return
        dry = self._dry_run() if verb not in ("get", "list", "watch") else False
        if verb == "watch":
            self._watch(cluster, req, decision)
        elif verb == "list":
            self._list(cluster, req)
        elif verb == "get":
            self._respond_object(200, store.get(cluster, rtype, ns, name or "", copy=False))
        elif verb == "create":
            obj = self._decode(body)
            if name is not None:
                if sub is None:
                    raise ApiError.method_not_allowed(
                        "the server does not allow this method on the requested resource"
                    )
                with store.dry_run_scope(dry):
                    self._subresource_post(cluster, req, obj)
                return
            self._admit(rtype, obj)
            self._send_json(
                201,
                store.create(cluster, rtype, self._for_create(req, obj), actor="api", dry_run=dry),
            )
        elif verb == "update":
            obj = self._decode(body)
            meta = obj.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError.bad_request("metadata must be an object")
            if meta.get("name") not in (None, name):
                raise ApiError.bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on "
                    f"the URL ({name})"
                )
            self._check_namespace(req, meta)
            meta["name"] = name
            if rtype.namespaced:
                meta["namespace"] = ns or "default"
            self._checked_update(req, store.get(cluster, rtype, ns, name or "", copy=False), obj)
            self._send_json(
                200, store.update(cluster, rtype, obj, subresource=sub, actor="api", dry_run=dry)
            )
        elif verb == "patch":
            content_type = self.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() == APPLY:
                self._apply(cluster, req, body, dry)
                return
            result = store.mutate(
                cluster,
                rtype,
                ns,
                name or "",
                lambda current: self._checked_update(
                    req, current, apply_patch(content_type, current, body, rtype)
                ),
                subresource=sub,
                actor="api",
                dry_run=dry,
            )
            self._send_json(200, result)
        elif verb == "delete":
            opts = self._delete_options(body)
            dry = dry or _dry_run_value(opts.get("dryRun"), "dryRun")
            result = store.delete(
                cluster,
                rtype,
                ns,
                name or "",
                actor="api",
                grace_period=opts.get("gracePeriodSeconds"),
                propagation=opts.get("propagationPolicy"),
                preconditions=opts.get("preconditions"),
                dry_run=dry,
            )
            self._send_json(200, result)
        else:  # deletecollection
            opts = self._delete_options(body)
            dry = dry or _dry_run_value(opts.get("dryRun"), "dryRun")
            items, _ = store.list(
                cluster,
                rtype,
                ns,
                self._query.get("labelSelector", ""),
                self._query.get("fieldSelector", ""),
            )
            deleted = []
            for item in items:
                with contextlib.suppress(ApiError):
                    deleted.append(
                        store.delete(
                            cluster,
                            rtype,
                            item["metadata"].get("namespace"),
                            item["metadata"]["name"],
                            actor="api",
                            grace_period=opts.get("gracePeriodSeconds"),
                            propagation=opts.get("propagationPolicy"),
                            dry_run=dry,
                        )
                    )
            self._send_json(
                200,
                {
                    "kind": rtype.list_kind,
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(store.resource_version)},
                    "items": deleted,
                },
            )

    # ------------------------------------------------------------------ verbs

    def _decode(self, body: bytes) -> Obj:
        content_type = self.headers.get("Content-Type", "application/json").lower()
        try:
            if "yaml" in content_type:
                obj = yaml.safe_load(body.decode() or "null")
            else:
                obj = json.loads(body or b"null", object_pairs_hook=schema.loads_pairs(self._dups))
        except (ValueError, yaml.YAMLError) as err:
            raise ApiError.bad_request(f"the object provided is unrecognized: {err}") from None
        if not isinstance(obj, dict):
            raise ApiError.bad_request("the object provided is not a JSON object")
        return obj

    def _check_namespace(self, req: _Request, meta: Obj) -> None:
        given = meta.get("namespace")
        if req.rtype.namespaced and given and req.namespace and given != req.namespace:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )

    def _for_create(self, req: _Request, obj: Obj) -> Obj:
        rtype = req.rtype
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise ApiError.bad_request(
                f"the kind of the object ({kind}) does not match the resource ({rtype.plural})"
            )
        api_version = obj.get("apiVersion")
        if api_version and api_version != rtype.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rtype.api_version})"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        self._check_namespace(req, meta)
        if rtype.namespaced:
            meta["namespace"] = req.namespace or meta.get("namespace") or "default"
        for field in ("creationTimestamp", "uid", "deletionTimestamp", "resourceVersion"):
            meta.pop(field, None)
        if rtype.has_status and rtype not in (NODES, NAMESPACES):
            obj.pop("status", None)
        if rtype is PODS:
            obj["status"] = {"phase": "Pending"}
        return obj

    def _apply(self, cluster: str, req: _Request, body: bytes, dry: bool) -> None:
        """Server-side apply (``apply.py``): create or update, 201 or 200."""
        rtype, name = req.rtype, req.name or ""
        manager = self._query.get("fieldManager", "")
        if not manager:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        force = self._query.get("force", "false") == "true"
        try:
            config = yaml.safe_load(body.decode() or "null")
        except (ValueError, yaml.YAMLError) as err:
            raise ApiError.bad_request(f"error decoding YAML: {err}") from None
        if not isinstance(config, dict):
            raise ApiError.bad_request("error decoding YAML: the applied object is not a map")
        meta = config.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") not in (None, name):
            raise ApiError.bad_request(
                f"the name of the object ({(meta or {}).get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        if config.get("apiVersion") != rtype.api_version or config.get("kind") != rtype.kind:
            raise ApiError.bad_request(
                f"the API version and kind in the data ({config.get('apiVersion')}, "
                f"{config.get('kind')}) do not match the resource ({rtype.api_version}, "
                f"{rtype.kind})"
            )
        self._check_namespace(req, meta)
        self._admit_applied(rtype, config, name, req.namespace)
        store = self.server.store
        now = now_rfc3339(store.clock)

        def update(current: Obj) -> Obj:
            new = apply_config(rtype, current, config, manager, force=force, now=now)
            return self._checked_update(req, current, new)

        try:
            result = store.mutate(
                cluster,
                rtype,
                req.namespace,
                name,
                update,
                subresource=req.subresource,
                actor="api",
                dry_run=dry,
            )
            self._send_json(200, result)
            return
        except ApiError as err:
            if err.code != 404 or req.subresource is not None:
                raise
        new = apply_config(rtype, None, config, manager, force=force, now=now)
        new.setdefault("metadata", {})["name"] = name
        created = store.create(cluster, rtype, self._for_create(req, new), actor="api", dry_run=dry)
        self._send_json(201, created)

    def _admit_applied(
        self, rtype: ResourceType, config: Obj, name: str, namespace: str | None
    ) -> None:
        """An applied configuration must fit the schema: an unknown field cannot become a
        typed patch (400), whatever ``fieldValidation`` (Strict words it as the decoder)."""
        if self._query.get("fieldValidation") == "Strict":
            self._admit(rtype, config)
            return
        found = schema.decode(copy_obj(config), schema.root_class(rtype))
        if found.errors and not schema.is_custom(rtype):
            self._admit(rtype, config)  # raises the decoder's 400
        if found.unknown:
            where = f"{namespace}/{name}" if namespace else name
            gvk = f"{rtype.api_version}, Kind={rtype.kind}"
            paths = ", ".join("." + p for p in found.unknown)
            raise ApiError.bad_request(
                f"failed to create typed patch object ({where}; {gvk}): {paths}: field not "
                "declared in schema"
            )

    def _checked_update(self, req: _Request, old: Obj, new: Obj) -> Obj:
        """An update's new object, decoded (``_admit``), with the fields a client may not
        change on a Pod kept so (422)."""
        self._admit(req.rtype, new)
        if req.rtype is PODS and req.subresource is None:
            problems = pod_update_problems(new, old)
            if problems:
                raise ApiError.invalid(req.rtype, req.name or "", problems)
        return new

    def _admit(self, rtype: ResourceType, obj: Obj, root: str = "") -> Obj:
        """Decode ``obj`` as the server's decoder would (``schema.py``), in place: fields not in
        the schema are dropped, and reported as ``fieldValidation`` asks (Ignore: silently;
        Warn, the default: a Warning header each; Strict: 400); a built-in kind's value of the
        wrong type is 400, as its body would not decode (a CRD's is the store's 422)."""
        mode = self._query.get("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise ApiError.bad_request(
                f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", '
                '"Warn", "Strict"'
            )
        root = root or schema.root_class(rtype)
        found = schema.decode(obj, root, duplicates=self._dups)
        kind = root.removeprefix("V1") if root.startswith("V1") else rtype.kind
        version = "v1" if root.startswith("V1") else rtype.version
        cannot = f'{kind} in version "{version}" cannot be handled as a {kind}'
        if found.errors and not schema.is_custom(rtype):
            raise ApiError.bad_request(f"{cannot}: {found.errors[0]}")
        strict = found.strict
        if strict and mode == "Strict":
            raise ApiError.bad_request(f"{cannot}: strict decoding error: {', '.join(strict)}")
        if mode == "Warn":
            self._warnings.extend(strict)
        return obj

    def _dry_run(self) -> bool:
        values = parse_qs(urlsplit(self.path).query, keep_blank_values=True).get("dryRun")
        return _dry_run_value(values, "dryRun")

    def _delete_options(self, body: bytes) -> Obj:
        opts: Obj = {}
        if body.strip():
            decoded = self._decode(body)
            opts.update(decoded)
        q = self._query
        if "gracePeriodSeconds" in q:
            try:
                opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise ApiError.bad_request("gracePeriodSeconds must be an integer") from None
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if opts.get("orphanDependents") is True and "propagationPolicy" not in opts:
            opts["propagationPolicy"] = "Orphan"
        policy = opts.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        return opts

    def _subresource_post(self, cluster: str, req: _Request, obj: Obj) -> None:
        if req.rtype is SERVICEACCOUNTS and req.subresource == "token":
            self._send_json(201, self._token_request(cluster, req, obj))
            return
        if req.subresource != "eviction":
            raise ApiError.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        body_name = (obj.get("metadata") or {}).get("name")
        if body_name and body_name != req.name:
            raise ApiError.bad_request("name in URL does not match name in Eviction object")
        obj.setdefault("apiVersion", "policy/v1")  # decoded as a typed Eviction would be
        obj.setdefault("kind", "Eviction")
        self._admit(req.rtype, obj, schema.EVICTION)
        options = obj.get("deleteOptions") or {}
        if not isinstance(options, dict):
            raise ApiError.bad_request("deleteOptions must be an object")
        # kubectl drain --dry-run=server says so in the Eviction's DeleteOptions, not the query.
        dry = _dry_run_value(options.get("dryRun"), "deleteOptions.dryRun")
        with self.server.store.dry_run_scope(dry):
            result = self.server.store.post_subresource(
                cluster, req.rtype, req.namespace or "default", req.name or "", "eviction", obj
            )
        code = result.get("code", 201) if result.get("kind") == "Status" else 201
        self._send_json(int(code), result)

    def _token_request(self, cluster: str, req: _Request, obj: Obj) -> Obj:
        """TokenRequest (``kubectl create token``): a token ``authz`` maps to the account."""
        spec = dict(obj.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        spec["expirationSeconds"] = seconds
        token = self.server.authorizer.mint(cluster, req.namespace or "default", req.name or "")
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": req.name, "namespace": req.namespace or "default"},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires},
        }

    def _respond_object(self, code: int, obj: Obj) -> None:
        if tables.wants_table(self.headers.get("Accept", "")):
            obj = tables.table(
                self._rtype_of(obj),
                [obj],
                self.server.store.clock(),
                resource_version=obj["metadata"].get("resourceVersion", ""),
                include_object=self._query.get("includeObject", "Metadata"),
            )
        self._send_json(code, obj)

    @staticmethod
    def _rtype_of(obj: Obj) -> ResourceType:
        for r in SERVED:
            if r.kind == obj.get("kind") and r.api_version == obj.get("apiVersion"):
                return r
        raise ApiError.internal(f"no resource type for {obj.get('kind')}")

    def _list(self, cluster: str, req: _Request) -> None:
        store = self.server.store
        labels = self._query.get("labelSelector", "")
        fields = self._query.get("fieldSelector", "")
        cont = self._query.get("continue")
        items: list[Obj] | None
        if cont:
            rv, start = _decode_continue(cont)
            if rv == -1:
                # The token of an expired list: the rest at the latest version (inconsistent).
                items, current = store.list(
                    cluster, req.rtype, req.namespace, labels, fields, copy=False
                )
                items = [i for i in items if _item_key(i) > start]
                rv = current
            else:
                items = store.list_at(
                    cluster, req.rtype, rv, req.namespace, labels, fields, after=start
                )
                if items is None:
                    raise _ExpiredContinue(_encode_continue(-1, start))
        else:
            # (copy=False: serialized only; stored objects are never changed in place)
            items, rv = store.list(cluster, req.rtype, req.namespace, labels, fields, copy=False)
        meta: Obj = {"resourceVersion": str(rv)}
        limit = self._query.get("limit")
        if limit and limit.isdigit() and 0 < int(limit) < len(items):
            n = int(limit)
            # Later pages come from this page's snapshot (store.list_at), as etcd serves them.
            meta["continue"] = _encode_continue(rv, _item_key(items[n - 1]))
            if not labels and not fields:
                # As the real server: the count is known only when nothing is filtered out.
                meta["remainingItemCount"] = len(items) - n
            items = items[:n]
        if tables.wants_table(self.headers.get("Accept", "")):
            out = tables.table(
                req.rtype,
                items,
                store.clock(),
                resource_version=meta["resourceVersion"],
                include_object=self._query.get("includeObject", "Metadata"),
            )
            out["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            self._send_json(200, out)
            return
        self._send_json(
            200,
            {
                "kind": req.rtype.list_kind,
                "apiVersion": req.rtype.api_version,
                "metadata": meta,
                "items": items,
            },
        )

    def _watch(self, cluster: str, req: _Request, decision: Decision) -> None:
        q = self._query
        try:
            timeout = float(q["timeoutSeconds"]) if "timeoutSeconds" in q else WATCH_DEFAULT_TIMEOUT
        except ValueError:
            raise ApiError.bad_request("timeoutSeconds must be a number") from None
        drop_at = None
        if decision.watch_drop_after is not None:
            drop_at = time.monotonic() + decision.watch_drop_after
            self._audit["fault"] = "watch-drop"  # decided now, so the request line says so
        stop = _WatchStop(self.server.stopping, self.connection, drop_at)
        events = self.server.store.watch(
            cluster,
            req.rtype,
            req.namespace,
            q.get("resourceVersion") or None,
            q.get("labelSelector", ""),
            q.get("fieldSelector", ""),
            stop=stop,  # type: ignore[arg-type]  # duck-typed: only is_set() is used
            timeout=timeout,
            bookmark_interval=(
                self.server.bookmark_interval if q.get("allowWatchBookmarks") == "true" else None
            ),
            bookmark_lead=BOOKMARK_BEFORE_TIMEOUT,
        )
        as_table = tables.wants_table(self.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        self._log_request(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self._streaming = True
        self.wfile.flush()
        first = True
        try:
            for ev in events:
                obj: Obj = ev.object
                if as_table and ev.type != "BOOKMARK":
                    obj = tables.table(
                        req.rtype,
                        [obj],
                        self.server.store.clock(),
                        resource_version=str(ev.resource_version),
                        include_object=include,
                        with_columns=first,
                    )
                    first = False
                self._chunk({"type": ev.type, "object": obj})
        except ApiError as err:
            self._chunk({"type": "ERROR", "object": err.status_body()})
        if stop.dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, event: Obj) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _dry_run_value(values: Any, field: str) -> bool:
    """Whether a ``dryRun`` list (query parameter or DeleteOptions field) asks for a dry run.

    As upstream, ``All`` is the only value and an empty list means a real write; anything
    else is 400 naming the field."""
    if values is None:
        return False
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise ApiError.bad_request(f"{field} must be a list of strings")
    for value in values:
        if value != "All":
            raise ApiError.bad_request(
                f'{field}: Unsupported value: "{value}": supported values: "All"'
            )
    return bool(values)


class _ExpiredContinue(ApiError):
    """410 for a continue token older than the watch window, as etcd's compaction answers it:
    the Status carries a token that lists the rest at the latest version (inconsistently)."""

    def __init__(self, token: str) -> None:
        super().__init__(410, "Expired", INCONSISTENT_CONTINUE)
        self.token = token

    def status_body(self) -> Obj:
        body = super().status_body()
        body["metadata"] = {"continue": self.token}
        return body


def _item_key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    """A continue token shaped as the apiserver's (meta.k8s.io/v1, unpadded base64url)."""
    start = f"{key[0]}/{key[1]}" if key[0] else key[1]
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """(resourceVersion, key of the last item served) from a continue token; 400 if bad."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["v"] != "meta.k8s.io/v1":
            raise ValueError(data["v"])
        rv = int(data["rv"])
        start = str(data["start"]).rstrip("\x00")
    except (ValueError, KeyError, TypeError):
        raise ApiError.bad_request("continue key is not valid") from None
    if rv == 0 or rv < -1 or not start:
        raise ApiError.bad_request("continue key is not valid")
    ns, _, name = start.rpartition("/")
    return rv, (ns, name)
