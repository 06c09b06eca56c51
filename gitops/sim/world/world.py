"""The simulated world: a fleet seeded into the store, then kept moving by physics.

Tool layer (``gitops.sim.world``), its top; ``Simulator`` (``gitops.sim.simulator``) builds one ``World``
per simulator. ``seed()`` turns the fleet into objects (``seed.py``), injects drift
(``drift.py``), adds workloads (``workloads.py``), creates them all in the store, then hands
over to ``Physics`` (registered as a store subscriber and as the pods/eviction handler) and
computes every status once. ``start()`` runs physics on a thread paced by the clock;
with a ``ManualClock`` there is no thread and a test moves time with ``clock.advance``.

It must never speak HTTP or parse requests (that is the server's job), never sleep except on
its physics thread waiting for the next due action, and never draw randomness other than from
the seed it is given.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gitops.fleet import Fleet
from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import PODS, RESOURCES, resource_for
from gitops.sim.api.store import Store
from gitops.sim.world import drift as drift_
from gitops.sim.world import seed as seed_
from gitops.sim.world import workloads
from gitops.sim.world.base import Audit, Latencies
from gitops.sim.world.clock import Clock, ManualClock, RealClock, Scheduler
from gitops.sim.world.physics import Physics

Obj = dict[str, Any]
log = logging.getLogger(__name__)


class World:
    """Seeds the fleet into ``store`` and runs its physics; see the module docstring."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        *,
        seed: int = 0,
        initial: seed_.Initial = "declared",
        drift: str = "",
        time_scale: float = 1.0,
        audit: Audit | None = None,
        latencies: Latencies | None = None,
        boot_failure_rate: float = 0.0,
        server_url: str = "http://127.0.0.1",
        clock: Clock | None = None,
        heartbeats: bool = True,
        pod_grace_seconds: int | None = None,
        infra_contract: str = "v1beta2",
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"--time-scale must be more than 0, not {time_scale}")
        if initial not in ("declared", "previous"):
            raise ValueError(f"--initial must be declared or previous, not {initial!r}")
        self.drift_counts = drift_.parse(drift)  # a bad spec fails here, before anything runs
        self.store = store
        self.fleet = fleet
        self.seed_value = seed
        self.initial: seed_.Initial = initial
        self.time_scale = time_scale
        self.server_url = server_url
        self.clock: Clock = clock or RealClock()
        self.latencies = (latencies or Latencies()).scaled(time_scale)
        self.scheduler = Scheduler(self.clock)
        self.physics = Physics(
            store,
            fleet,
            self.clock,
            self.scheduler,
            rng=seed_.stream(seed, "physics"),
            latencies=self.latencies,
            boot_failure_rate=boot_failure_rate,
            audit=audit,
            time_scale=time_scale,
            heartbeats=heartbeats,
            infra_contract=infra_contract,
        )
        self.pod_grace_seconds = pod_grace_seconds
        self.injected: list[drift_.Injected] = []
        self.seeding: seed_.Seeding | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if isinstance(self.clock, ManualClock):
            self.clock.attach(self.physics)

    # ------------------------------------------------------------------ seeding

    def build(self) -> seed_.Seeding:
        """Every object the world starts with (pure; ``seed()`` creates them)."""
        now = self.clock.now()
        seeding = seed_.build(
            self.fleet,
            seed=self.seed_value,
            initial=self.initial,
            server_url=self.server_url,
            now=now,
            infra_contract=self.physics.infra_contract,
        )
        self.injected = drift_.inject(
            seeding, self.fleet, self.drift_counts, self.seed_value, now=now
        )
        workloads.seed(
            seeding, seed_value=self.seed_value, now=now, pod_grace_seconds=self.pod_grace_seconds
        )
        return seeding

    def seed(self) -> None:
        """Create the fleet in the store, then let physics take over (see the module docstring)."""
        seeding = self.build()
        self.seeding = seeding
        for cluster in seeding.clusters:
            self.store.add_cluster(cluster)
        uids: dict[tuple[str, str, str, str], str] = {}
        known: list[tuple[str, str, Obj]] = []
        self.store.clock = self.clock.now  # timestamps the store stamps follow the world's time
        for item in seeding.objects:
            obj = item.obj
            # Objects are created in the version they are written in (seeded Machines are
            # v1beta1, the kinds of MachineDeployment mode v1beta2); the store converts.
            rtype = (
                resource_for(obj["apiVersion"], obj["kind"])
                if "apiVersion" in obj and "kind" in obj
                else RESOURCES[item.resource]
            )
            meta = obj["metadata"]
            for ref in meta.get("ownerReferences") or []:
                if not ref.get("uid"):
                    ref["uid"] = uids[
                        (item.cluster, ref["kind"], meta.get("namespace", ""), ref["name"])
                    ]
            if item.created is not None:
                # Seeded objects carry creation times spread over the past, as in a real
                # fleet (the store keeps a creationTimestamp its caller gives).
                meta["creationTimestamp"] = seed_.rfc3339(item.created)
            try:
                created = self.store.create(item.cluster, rtype, obj, actor="sim-seed")
            except ApiError as err:
                if not (rtype.key == seed_.NAMESPACES and err.code == 409):
                    raise
                continue
            known.append((item.cluster, rtype.key, created))
            meta["uid"] = created["metadata"]["uid"]
            uids[(item.cluster, rtype.kind, meta.get("namespace", ""), meta["name"])] = meta["uid"]
        self.store.subscribe(self.physics.on_event)
        self.store.add_subresource_handler(PODS, "eviction", self.physics.evict)
        self.physics.load(known)
        self.physics.run_pending()  # statuses (PDBs, Deployments...) computed before serving

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Run physics on its own thread (nothing to do with a ManualClock: tests advance it)."""
        if isinstance(self.clock, ManualClock) or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gitops-sim-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.scheduler.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.scheduler.wakeup.clear()
            try:
                self.physics.run_pending()
            except Exception as err:  # a bug in one action must not stop the world
                self.physics.errors.append(f"physics thread: {type(err).__name__}: {err}")
                log.exception("Simulated physics failed an action; carrying on.")
            due = self.physics.next_due()
            wait = 0.5 if due is None else max(0.0, min(0.5, due - self.clock.now()))
            if wait > 0:
                self.scheduler.wakeup.wait(wait)

    def settle(self) -> None:
        """Run whatever is due now, on the caller's thread (tests with either clock)."""
        self.physics.run_pending()
