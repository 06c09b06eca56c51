"""``gitops run``: the controller process (wiring only; the loop is ``gitops.controller.loop``).

Shell layer. Builds the mirror, status writer, trust store, HTTP endpoints, trigger and leader
election from typed options (``RunOptions``; the flags are ``gitops.cli.run``'s), runs the
loop while this replica holds the Lease, and stops cleanly on SIGTERM or SIGINT (the last status is flushed and the Lease released).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gitops.bot.options import ForgeFlags, build_bot
from gitops.controller.http import ControllerHTTP
from gitops.controller.logs import configure
from gitops.controller.loop import Controller
from gitops.controller.metrics import Metrics
from gitops.controller.watch import RefWatcher, local_git_dir
from gitops.controller.webhooks import Trigger
from gitops.errors import Stalled
from gitops.gitrepo.auth import Credentials
from gitops.gitrepo.mirror import Mirror, Remote
from gitops.gitrepo.status import CoalescingWriter, StatusWriter
from gitops.gitrepo.verify import TrustStore
from gitops.kube.actions import ensure_namespace
from gitops.kube.client import USER_AGENT, Kube, connect, pod_namespace, probe
from gitops.kube.errors import Forbidden
from gitops.kube.fence import ClusterFence
from gitops.kube.lease import LeaderElector
from gitops.kube.ratelimit import DEFAULT_BURST, DEFAULT_QPS, RateLimit
from gitops.kube.shards import ShardManager
from gitops.signals import stop_on_signals

log = logging.getLogger(__name__)


def _namespaces(
    management: Kube, lease_namespace: str, state_namespace: str, own: str | None
) -> None:
    """Create the Lease's and the record's namespaces when missing, or fail naming them.

    Without its namespace the Lease can never be taken, and a controller that retries it
    forever looks alive while it does nothing: better to make it, as ``gitops apply`` does,
    or to stop at once and say which namespace and which flags. The namespace of our own pod
    (``own``) exists by definition and is not asked about: the deployed RBAC grants no read
    of namespaces.
    """
    for namespace in sorted({lease_namespace, state_namespace} - {own}):
        uses = [
            what
            for what, ns in (("Lease", lease_namespace), ("rollout record", state_namespace))
            if ns == namespace
        ]
        try:
            outcome = ensure_namespace(management, namespace)
        except Forbidden as err:
            raise Stalled(
                f"namespace {namespace} (for the {' and the '.join(uses)}) does not exist and "
                f"this identity may not create it ({err}); create it, or point --lease-namespace "
                "and --state-namespace at a namespace that exists"
            ) from err
        if outcome == "created":
            log.info(
                "Created namespace %s for the %s, as gitops apply does.",
                namespace,
                " and the ".join(uses),
            )


def _log_rate(rate: RateLimit) -> None:
    """Say once how fast each API server may be asked (an operator tuning --qps looks here)."""
    if rate.qps <= 0:
        log.info("Requests to the API servers are not rate-limited (--qps 0).")
    else:
        log.info(
            "Requests to each API server are limited to %g a second after a burst of %d "
            "(--qps, --burst).",
            rate.qps,
            rate.burst,
        )


def _lease_timing(time_scale: float) -> tuple[float, float]:
    """(lease duration, renew period) in seconds: client-go's 15 s and 2 s, shortened with a
    small --time-scale so that demos and tests fail over quickly."""
    factor = min(1.0, time_scale * 10)
    return max(1.0, 15.0 * factor), max(0.2, 2.0 * factor)


def _shards(options: RunOptions, management: Kube, identity: str, trigger: Trigger) -> ShardManager:
    """The member Lease, owner Leases and fences of a sharded replica.

    Every request it sends names the replica in its user agent (workload clusters' clients
    copy the management cluster's), so an API server's audit log tells replicas apart.
    """
    management.api.user_agent = f"{USER_AGENT} replica/{identity}"
    duration, renew = _lease_timing(options.time_scale)
    return ShardManager(
        management,
        options.lease_namespace,
        identity,
        lease_duration=duration,
        renew_period=renew,
        fence=ClusterFence(management, options.state_namespace, identity),
        on_change=lambda owned: trigger.poke(),
    )


def _ready(controller: Controller, electors: list[LeaderElector]) -> tuple[bool, str]:
    """/readyz: the controller's readiness, or why this replica cannot take the Lease."""
    for elector in electors:
        if not elector.leading and elector.last_error:
            return False, f"cannot take the Lease: {elector.last_error}"
    return controller.ready()


@dataclass(frozen=True)
class RunOptions:
    """``gitops run``'s settings, parsed and typed by ``gitops.cli.run``."""

    repo: str
    branch: str = "main"
    subdir: str = ""
    kubeconfig: str | None = None
    context: str | None = None
    interval: float = 60.0
    status_branch: str = "gitops/status"
    status_interval: float = 30.0
    http_addr: str = "127.0.0.1:8080"
    verify_signatures: Path | None = None
    webhook_secret_file: Path | None = None
    token_file: Path | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    cache_dir: Path | None = None
    lease_namespace: str = "gitops-system"
    state_namespace: str = "gitops-system"
    request_timeout: float = 10.0
    time_scale: float = 1.0
    log_format: str = "json"
    forge: ForgeFlags | None = None
    # ``--sharding``: every replica acts on the clusters it owns (``gitops.kube.shards``);
    # the holder of the Lease gitops-controller coordinates besides.
    sharding: bool = False
    replica_id: str = ""  # default: $POD_NAME, else <hostname>-<pid>
    # ``--qps``/``--burst``: every API server's client (the management cluster's and each
    # workload cluster's) sends at most this many requests a second after a burst; 0, no limit.
    qps: float = DEFAULT_QPS
    burst: int = DEFAULT_BURST
    announce: Callable[[str], None] = field(default=lambda line: None, compare=False)


class Gate:
    """What starts the reconcile loop, shut for good when the process begins to stop.

    Leader election wins the Lease on its own thread. A Lease won while the process stops
    (its request was in flight, or waiting on the rate limit, when SIGTERM came) must start
    nothing: the shutdown has already passed the point where it waits for loops, so such a
    loop would act unfenced after the last status flush and run on into the interpreter's
    exit, where its daemon thread can abort the process (seen: exit status -6 on SIGTERM).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[threading.Thread] = []

    def enter(self, start: Callable[[], threading.Thread | None]) -> bool:
        """Run ``start`` (keeping the thread it returns) unless closed; whether it ran."""
        with self._lock:
            if self._closed:
                return False
            thread = start()
            if thread is not None:
                self._threads.append(thread)
            return True

    def close(self) -> list[threading.Thread]:
        """Shut the gate (a ``start`` under way finishes first); the threads started."""
        with self._lock:
            self._closed = True
            return list(self._threads)


def run(options: RunOptions) -> None:
    """Run the controller until SIGTERM or SIGINT: pull, reconcile, write status to git.

    Only the replica holding the Lease gitops-controller acts. The namespaces of the Lease and
    of the rollout record are created at start when missing, as `gitops apply` does. Raises a
    ``GitopsError`` when it cannot start (unreachable management cluster, a missing namespace
    it may not create, unusable credentials); ``announce`` gets the one line saying it is up.
    """
    o = options
    if o.log_format == "json":
        configure("info")
    cache = o.cache_dir or Path(tempfile.mkdtemp(prefix="gitops-cache-"))
    credentials = Credentials(
        token_file=o.token_file, ssh_key_file=o.ssh_key, known_hosts_file=o.known_hosts
    )
    remote = Remote(o.repo, branch=o.branch, credentials=credentials)
    metrics = Metrics()
    rate = RateLimit(
        o.qps,
        o.burst,
        on_wait=lambda cluster, seconds: metrics.kube_rate_limited.labels(cluster).inc(seconds),
    )
    try:
        management = connect(o.kubeconfig, o.context, rate=rate)
        _log_rate(rate)
        probe(management, o.request_timeout)
        _namespaces(management, o.lease_namespace, o.state_namespace, pod_namespace(o.kubeconfig))
        mirror = Mirror(cache / "fleet", remote)
        writer = CoalescingWriter(
            StatusWriter(cache / "status", remote, branch=o.status_branch), o.status_interval
        )
        bot = build_bot(
            o.forge, remote, cache / "bot", path=o.subdir, status_branch=o.status_branch
        )
    except ValueError as err:
        raise Stalled(str(err)) from err
    trust = TrustStore(o.verify_signatures, cache / "trust") if o.verify_signatures else None
    trigger = Trigger(o.branch)
    identity = o.replica_id or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    shards = _shards(o, management, identity, trigger) if o.sharding else None
    controller = Controller(
        mirror,
        management,
        path=o.subdir,
        writer=writer,
        bot=bot,
        trust=trust,
        metrics=metrics,
        state_namespace=o.state_namespace,
        time_scale=o.time_scale,
        shards=shards,
    )
    electors: list[LeaderElector] = []  # filled below; /readyz may be asked before
    host, _, port = o.http_addr.rpartition(":")
    secret = o.webhook_secret_file.read_bytes().strip() if o.webhook_secret_file else None
    http = ControllerHTTP(
        host or "127.0.0.1",
        int(port),
        metrics=metrics,
        healthy=lambda: (True, "ok"),
        ready=lambda: _ready(controller, electors),
        trigger=trigger,
        webhook_secret=secret,
        board=controller.board,
    ).start()
    gate = Gate()

    def start_loop() -> threading.Thread:
        thread = threading.Thread(
            target=lambda: controller.run(interval=o.interval, trigger=trigger),
            name="reconcile",
            daemon=True,
        )
        thread.start()
        return thread

    def won() -> threading.Thread | None:
        metrics.leader.set(1)
        if shards is not None:  # the loop runs anyway: leading adds the coordinator's share
            controller.coordinating = True
            trigger.poke()
            return None
        controller.resume()
        return start_loop()

    def lead() -> None:
        gate.enter(won)

    def follow() -> None:
        metrics.leader.set(0)
        if shards is not None:
            controller.coordinating = False
            return
        controller.pause()

    elector = LeaderElector(
        management,
        o.lease_namespace,
        "gitops-controller",
        identity,
        lease_duration=_lease_timing(o.time_scale)[0],
        retry_period=_lease_timing(o.time_scale)[1],
        on_started=lead,
        on_stopped=follow,
    )
    electors.append(elector)
    git_dir = local_git_dir(o.repo)
    watcher = RefWatcher(git_dir, o.branch, trigger).start() if git_dir is not None else None
    # Shutdown happens inside the block: our handlers stay installed until the process is
    # done, so a second SIGTERM during the shutdown is absorbed instead of killing it.
    with stop_on_signals() as stop:
        o.announce(
            f"gitops run: watching {remote.display} ({o.branch}); http {http.address}; "
            f"identity {identity}"
        )
        elector.start()
        if shards is not None:
            shards.start()
            gate.enter(start_loop)
        stop.wait()
        log.info("Stopping: finishing the current step, flushing status, releasing the Lease.")
        loops = gate.close()  # a Lease won from now on starts nothing
        if watcher is not None:
            watcher.stop()
        controller.pause()
        for thread in loops:
            thread.join(30)
        if shards is not None:
            if controller.executor is not None:
                controller.executor.close()  # the steps in flight end: a safe point for all
            shards.stop(release=True)  # every owned cluster handed over at once
        controller.stop()
        elector.stop(release=True)
        http.stop()
