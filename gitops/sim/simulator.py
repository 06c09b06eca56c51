"""A running simulator: the API machinery and the world, composed and served over HTTP.

Tool layer (``gitops.sim``), the top of the simulator wing. ``Simulator`` builds the store
(``api.store``) and, from a fleet, the world (``world.World``), serves the Kubernetes API on
127.0.0.1 (``api.handler``), and writes the management kubeconfig only once the server
answers. It can be started and stopped in-process. The world registers its own hooks (store
subscriber, pods/eviction handler) when it starts: this module only wires the two halves, it
decides nothing about either.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gitops.fleet import Fleet, load
from gitops.sim.api import schema
from gitops.sim.api.audit import AuditLog
from gitops.sim.api.faults import Injector
from gitops.sim.api.handler import (
    BOOKMARK_INTERVAL,
    STANDARD_NAMESPACES,
    TOKEN,
    USER,
    ApiServer,
)
from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.resources import CAPI_VERSIONS, NAMESPACES, NODES
from gitops.sim.api.store import MANAGEMENT, Store, copy_obj
from gitops.sim.world.world import World

Obj = dict[str, Any]


def kubeconfig_text(server: str, name: str = "sim", ca_path: str = "") -> str:
    """A kubeconfig for ``server`` with the simulator's bearer token; https with ``ca_path``
    (kubectl sends credentials only over https, and the server refuses requests without)."""
    cluster: Obj = {"server": server}
    if ca_path:
        cluster["certificate-authority"] = ca_path
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": USER, "user": {"token": TOKEN}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": USER}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Simulator:
    """A simulated fleet served over HTTP; use as a context manager or start()/stop().

    With ``fleet_path`` the clusters, machines, nodes and workloads are seeded by the world
    (``gitops.sim.world.world.World``). Without it (``fleet_path=None``) only the API machinery
    runs: a management cluster and the workload clusters named in ``clusters``, each with
    the standard namespaces, which is what the API machinery's own tests use.
    """

    def __init__(
        self,
        fleet_path: str | os.PathLike[str] | None = None,
        *,
        port: int = 0,
        seed: int = 0,
        initial: str = "declared",
        drift: str = "",
        audit_log: str | os.PathLike[str] | None = None,
        faults: str = "",
        time_scale: float = 1.0,
        kubeconfig_out: str | os.PathLike[str] | None = None,
        history: int = 10_000,
        history_seconds: float | None = None,
        clusters: tuple[str, ...] = (),
        fleet: Fleet | None = None,
        world_options: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        tls: bool = False,
        capi_version: str = "v1beta2",
    ) -> None:
        if capi_version not in CAPI_VERSIONS:
            raise ValueError(f"capi_version must be one of {', '.join(CAPI_VERSIONS)}")
        # v1beta2 serves both versions (v1beta2 preferred), v1beta1 only the old one.
        self.capi_versions = CAPI_VERSIONS if capi_version == "v1beta2" else ("v1beta1",)
        self.fleet_path = fleet_path
        self.tls = tls
        self.port = port
        self.seed = seed
        self.initial = initial
        self.drift = drift
        self.time_scale = time_scale
        self.host = host
        self.fleet = fleet
        self.extra_clusters = clusters
        self.world_options = dict(world_options or {})
        self.audit = AuditLog(audit_log)
        self.audit_path = None if audit_log is None else str(audit_log)
        self.injector = Injector(faults, seed=seed, time_scale=time_scale)
        self.store = Store(history, history_seconds=history_seconds, seed=seed)
        self.world: World | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if kubeconfig_out is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="gitops-sim-")
            kubeconfig_out = Path(self._tmpdir.name) / "kubeconfig"
        self.kubeconfig_path = str(kubeconfig_out)
        # With tls: the CA a client must trust to reach https_url (written at start).
        self.ca_path = str(Path(self.kubeconfig_path).with_name("ca.crt")) if tls else ""
        self.https_url = ""
        self._httpd: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.url = ""

    # -- lifecycle

    def start(self) -> Simulator:
        with self._lock:
            if self._httpd is not None:
                return self
            if self.fleet is None and self.fleet_path is not None:
                self.fleet = load(Path(self.fleet_path))  # FleetError goes to the caller
            versions: dict[str, str] = {}
            names = list(self.extra_clusters)
            if self.fleet is not None:
                for cluster in self.fleet.clusters:
                    names.append(cluster.name)
                    versions[cluster.name] = str(cluster.spec.kubernetes_version)
                if versions:
                    versions[MANAGEMENT] = max(versions.values(), key=_version_key)
            for name in names:
                self.store.add_cluster(name)
            context = None
            if self.tls:
                # cryptography loads only when https is asked for (it is slow to import)
                from gitops.sim.api import tls

                certificates = tls.generate(
                    tuple(dict.fromkeys((self.host, "127.0.0.1", "localhost")))
                )
                context = certificates.server_context()
                _write_atomic(Path(self.ca_path), certificates.ca_pem.decode())
            httpd = ApiServer(
                (self.host, self.port),
                self.store,
                audit=self.audit,
                faults=self.injector,
                versions=versions,
                tls=context,
                capi_versions=self.capi_versions,
            )
            httpd.bookmark_interval = BOOKMARK_INTERVAL * self.time_scale
            self.url = httpd.url
            self.https_url = f"https://{httpd.address}" if self.tls else ""
            schema.definitions()  # derived once (imports the client's models), not on a request
            try:
                if self.fleet is not None:
                    self.world = World(
                        self.store,
                        self.fleet,
                        seed=self.seed,
                        initial=self.initial,  # type: ignore[arg-type]
                        drift=self.drift,
                        time_scale=self.time_scale,
                        audit=self.audit,
                        server_url=self.url,
                        infra_contract="v1beta2" if "v1beta2" in self.capi_versions else "v1beta1",
                        **self.world_options,
                    )
                    with _no_cyclic_gc():
                        self.world.seed()
                self._ensure_namespaces()
                self._thread = threading.Thread(
                    target=httpd.serve_forever,
                    kwargs={"poll_interval": 0.1},
                    name="gitops-sim-http",
                    daemon=True,
                )
                self._thread.start()
                self._httpd = httpd
                if self.world is not None:
                    self.world.start()
                self._wait_ready()
                _write_atomic(
                    Path(self.kubeconfig_path),
                    kubeconfig_text(self.https_url or self.url, ca_path=self.ca_path),
                )
            except BaseException:
                self._httpd = httpd
                self._stop_locked()
                raise
        return self

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        httpd, self._httpd = self._httpd, None
        if self.world is not None:
            with contextlib.suppress(Exception):
                self.world.stop()
        if httpd is not None:
            httpd.stopping.set()
            if self._thread is not None and self._thread.is_alive():
                httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.audit.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # -- helpers

    def _ensure_namespaces(self) -> None:
        for cluster in self.store.clusters():
            for ns in STANDARD_NAMESPACES:
                with contextlib.suppress(ApiError):
                    self.store.create(cluster, NAMESPACES, {"metadata": {"name": ns}})

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def mint_token(self, namespace: str, name: str, cluster: str = MANAGEMENT) -> str:
        """A token for ServiceAccount ``namespace/name``, held to RBAC (see ``authz``)."""
        if self._httpd is None:
            raise RuntimeError("the simulator is not running")
        return self._httpd.authorizer.mint(cluster, namespace, name)

    def cluster_url(self, cluster: str) -> str:
        return self.url if cluster == MANAGEMENT else f"{self.url}/clusters/{cluster}"

    def workload_kubeconfig(self, cluster: str) -> str:
        """Write a kubeconfig for ``/clusters/<cluster>`` beside the management one; its path."""
        if not self.store.has_cluster(cluster):
            raise KeyError(f"no simulated cluster {cluster!r}")
        path = Path(self.kubeconfig_path).parent / f"{cluster or 'management'}.kubeconfig"
        base = self.https_url or self.url
        url = base if cluster == MANAGEMENT else f"{base}/clusters/{cluster}"
        _write_atomic(path, kubeconfig_text(url, cluster or "sim", self.ca_path))
        return str(path)

    def summary(self) -> str:
        clusters = [c for c in self.store.clusters() if c != MANAGEMENT]
        nodes = sum(self.store.count(c, NODES) for c in clusters)
        https = f" · https {self.https_url} (CA {self.ca_path})" if self.tls else ""
        return (
            f"gitops sim: serving {self.url}{https} · {len(clusters)} workload clusters · "
            f"{nodes} nodes · kubeconfig {self.kubeconfig_path}"
        )

    def object(self, cluster: str, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        """A copy of one stored object (for tests)."""
        return copy_obj(self.store.get(cluster, rtype, namespace, name))


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Seeding allocates hundreds of thousands of long-lived dicts: the cyclic collector would
    rescan them again and again (most of a 5,000-node start). Pause it, then move everything
    seeded out of its reach (``gc.freeze``); reference counting still frees garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _version_key(version: str) -> tuple[int, ...]:
    out = []
    for part in version.lstrip("v").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)
