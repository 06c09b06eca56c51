"""Cluster API's MachineDeployment controller, simulated: one MachineSet per template hash,
rolled with upstream's RollingUpdate semantics.

Tool layer (``gitops.sim.world``), part of the physics (``physics.Physics``), after upstream's
``internal/controllers/machinedeployment/machinedeployment_rolling.go`` and ``mdutil``:

* the MachineSet whose ``machine-template-hash`` label is the hash of the deployment's template
  is the new one (created, owned by the deployment, when missing; its revision one past the
  newest); every other owned set is old;
* the new set scales up while all sets together hold fewer than ``replicas + maxSurge``
  Machines (a set counts ``max(spec.replicas, status.replicas)``, so Machines still draining
  count until they are gone); percentages of maxSurge round up, of maxUnavailable down, and
  both resolving to 0 means maxUnavailable 1, as upstream's fenceposts;
* old sets scale down while available Machines stay at least ``replicas - maxUnavailable``:
  first their unavailable Machines, then, oldest set first, available ones;
* old sets at zero with no Machine left are deleted; ``spec.paused`` stops all scaling (status
  is still written, with a ``Paused`` condition);
* status in v1beta2 form (``replicas``, ``readyReplicas``, ``availableReplicas``,
  ``upToDateReplicas``, ``observedGeneration``, conditions ``Available``, ``RollingOut``,
  ``MachinesReady``, ``MachinesUpToDate``, ``ScalingUp``, ``ScalingDown``, ``Paused``) and the
  v1beta1 counters under ``status.deprecated.v1beta1`` (``updatedReplicas``...).

It writes MachineDeployments (status only) and MachineSets, never Machines.
"""

from __future__ import annotations

from gitops.fleet.quantities import resolve_int_or_percent
from gitops.sim.api.resources import MACHINEDEPLOYMENTS, MACHINES_V1BETA2, MACHINESETS
from gitops.sim.world import capi
from gitops.sim.world import seed as seed_
from gitops.sim.world.base import Obj, PhysicsBase, key_of
from gitops.sim.world.machinesets import is_deleting, keep_transitions, owned_by, selector_matches

MGMT = seed_.MANAGEMENT


def budgets(md: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a deployment, resolved against its replicas."""
    replicas = int(md["spec"].get("replicas", 1))
    strategy = ((md["spec"].get("rollout") or {}).get("strategy")) or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", 1), replicas, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", 0), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _spec_replicas(ms: Obj) -> int:
    return int(ms["spec"].get("replicas", 1))


def _size(ms: Obj) -> int:
    """Machines a set holds or is about to hold (draining ones included)."""
    return max(_spec_replicas(ms), int((ms.get("status") or {}).get("replicas") or 0))


def _available(ms: Obj) -> int:
    return int((ms.get("status") or {}).get("availableReplicas") or 0)


def _created(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (str(meta.get("creationTimestamp")), str(meta["name"]))


class MachineDeploymentController(PhysicsBase):
    """See the module docstring; ``_reconcile_deployments(namespace)`` is its entry point."""

    def _reconcile_deployments(self, ns: str) -> None:
        deployments = self.store.list(MGMT, MACHINEDEPLOYMENTS, ns)[0]
        for md in deployments:
            if is_deleting(md):
                continue
            sets = self._sets_of(md, self.store.list(MGMT, MACHINESETS, ns)[0])
            if not md["spec"].get("paused"):
                self._roll(md, sets)

    def _deployment_statuses(self, ns: str) -> None:
        sets = self.store.list(MGMT, MACHINESETS, ns)[0]
        for md in self.store.list(MGMT, MACHINEDEPLOYMENTS, ns)[0]:
            owned = [s for s in sets if owned_by(s, md)]
            self._mark_up_to_date(md, owned)
            self._deployment_status(md, owned)

    def _mark_up_to_date(self, md: Obj, sets: list[Obj]) -> None:
        """Machines of the deployment's current set are UpToDate, the others' not (upstream
        compares each Machine with the deployment's template the same way)."""
        digest = capi.template_hash(md["spec"]["template"])
        stamp = seed_.rfc3339(self.clock.now())
        machines = None
        for ms in sets:
            current = (ms["metadata"].get("labels") or {}).get(capi.TEMPLATE_HASH_LABEL) == digest
            want = "True" if current else "False"
            if machines is None:
                machines = self.store.list(MGMT, MACHINES_V1BETA2, ms["metadata"]["namespace"])[0]
            for machine in machines:
                if not owned_by(machine, ms):
                    continue
                conds = (machine.get("status") or {}).get("conditions") or []
                have = next((c for c in conds if c.get("type") == "UpToDate"), None)
                if have is not None and have.get("status") == want:
                    continue
                new = capi.condition(
                    "UpToDate", current, "UpToDate" if current else "NotUpToDate", stamp
                )

                def mark(o: Obj, new: Obj = new) -> Obj:
                    status = o.setdefault("status", {})
                    others = [
                        c for c in status.get("conditions") or [] if c.get("type") != "UpToDate"
                    ]
                    status["conditions"] = [*others, new]
                    return o

                self._write(mark, MGMT, MACHINES_V1BETA2, key_of(machine), subresource="status")

    def _sets_of(self, md: Obj, sets: list[Obj]) -> list[Obj]:
        """The deployment's MachineSets, adopting owner-less ones its selector matches."""
        out = []
        for ms in sets:
            if owned_by(ms, md):
                out.append(ms)
            elif (
                capi.controller_of(ms) is None
                and not is_deleting(ms)
                and selector_matches(
                    md["spec"].get("selector") or {}, ms["metadata"].get("labels") or {}
                )
            ):
                ref = capi.owner_ref(md)

                def adopt(o: Obj, ref: Obj = ref) -> Obj:
                    o["metadata"]["ownerReferences"] = [
                        *(o["metadata"].get("ownerReferences") or []),
                        ref,
                    ]
                    return o

                adopted = self._write(adopt, MGMT, MACHINESETS, key_of(ms))
                if adopted is not None:
                    out.append(adopted)
        return out

    def _roll(self, md: Obj, sets: list[Obj]) -> None:
        digest = capi.template_hash(md["spec"]["template"])
        live = [s for s in sets if not is_deleting(s)]
        new = next(
            (
                s
                for s in live
                if (s["metadata"].get("labels") or {}).get(capi.TEMPLATE_HASH_LABEL) == digest
            ),
            None,
        )
        olds = sorted((s for s in live if s is not new), key=_created)
        if new is None:
            new = self._new_set(md, olds)
        self._scale_new(md, new, olds)
        self._scale_olds(md, new, olds)
        for old in olds:
            if _spec_replicas(old) == 0 and not int((old.get("status") or {}).get("replicas") or 0):
                self._delete(MGMT, MACHINESETS, key_of(old))

    def _new_set(self, md: Obj, olds: list[Obj]) -> Obj:
        revision = 1 + max(
            (
                int((o["metadata"].get("annotations") or {}).get(capi.REVISION_ANNOTATION, 0))
                for o in olds
            ),
            default=0,
        )
        replicas = 0 if olds else int(md["spec"].get("replicas", 1))
        obj = capi.machine_set(md, replicas, revision)
        self._write(lambda o: _annotated(o, revision), MGMT, MACHINEDEPLOYMENTS, key_of(md))
        return self._create(MGMT, MACHINESETS, obj)

    def _scale(self, ms: Obj, replicas: int) -> Obj:
        if _spec_replicas(ms) == replicas:
            return ms

        def scale(o: Obj) -> Obj:
            o["spec"]["replicas"] = replicas
            return o

        return self._write(scale, MGMT, MACHINESETS, key_of(ms)) or ms

    def _scale_new(self, md: Obj, new: Obj, olds: list[Obj]) -> None:
        replicas = int(md["spec"].get("replicas", 1))
        current = _spec_replicas(new)
        if current >= replicas:
            if current > replicas:
                self._scale(new, replicas)
            return
        surge, _ = budgets(md)
        total = sum(_size(s) for s in [new, *olds])
        room = replicas + surge - total
        if room > 0:
            self._scale(new, current + min(room, replicas - current))

    def _scale_olds(self, md: Obj, new: Obj, olds: list[Obj]) -> None:
        if not any(_spec_replicas(o) for o in olds):
            return
        replicas = int(md["spec"].get("replicas", 1))
        _, unavailable = budgets(md)
        min_available = replicas - unavailable
        everything = [new, *olds]
        new_unavailable = max(0, _spec_replicas(new) - _available(new))
        room = sum(_size(s) for s in everything) - min_available - new_unavailable
        if room <= 0:
            return
        # First the old sets' unavailable Machines: removing them costs no availability.
        for i, old in enumerate(olds):
            unhealthy = _spec_replicas(old) - _available(old)
            if room <= 0 or unhealthy <= 0:
                continue
            cut = min(room, unhealthy)
            olds[i] = self._scale(old, _spec_replicas(old) - cut)
            room -= cut
        # Then available ones, oldest set first, keeping minAvailable.
        down = sum(_available(s) for s in everything) - min_available
        for i, old in enumerate(olds):
            if down <= 0:
                break
            cut = min(_spec_replicas(old), down, _available(old))
            if cut > 0:
                olds[i] = self._scale(old, _spec_replicas(old) - cut)
                down -= cut

    def _deployment_status(self, md: Obj, sets: list[Obj]) -> None:
        stamp = seed_.rfc3339(self.clock.now())
        digest = capi.template_hash(md["spec"]["template"])
        desired = int(md["spec"].get("replicas", 1))
        _, unavailable = budgets(md)
        new = [
            s
            for s in sets
            if (s["metadata"].get("labels") or {}).get(capi.TEMPLATE_HASH_LABEL) == digest
        ]
        olds = [s for s in sets if s not in new]

        def total(field: str, group: list[Obj]) -> int:
            return sum(int((s.get("status") or {}).get(field) or 0) for s in group)

        replicas, ready, available = (
            total(f, sets) for f in ("replicas", "readyReplicas", "availableReplicas")
        )
        up_to_date = total("upToDateReplicas", new)
        paused = bool(md["spec"].get("paused"))
        rolling = bool(olds) or up_to_date < desired
        phase = (
            "ScalingUp"
            if replicas < desired
            else "ScalingDown"
            if replicas > desired
            else "Running"
        )
        conds = [
            (
                "Available",
                available >= desired - unavailable,
                "Available" if available >= desired - unavailable else "NotAvailable",
            ),
            ("RollingOut", rolling, "RollingOut" if rolling else "NotRollingOut"),
            ("MachinesReady", ready == replicas, "Ready" if ready == replicas else "NotReady"),
            (
                "MachinesUpToDate",
                up_to_date == replicas,
                "UpToDate" if up_to_date == replicas else "NotUpToDate",
            ),
            (
                "ScalingUp",
                replicas < desired,
                "ScalingUp" if replicas < desired else "NotScalingUp",
            ),
            (
                "ScalingDown",
                replicas > desired,
                "ScalingDown" if replicas > desired else "NotScalingDown",
            ),
            ("Paused", paused, "Paused" if paused else "NotPaused"),
        ]
        old = md.get("status") or {}
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(
                ((md["spec"].get("selector") or {}).get("matchLabels") or {}).items()
            )
        )
        status: Obj = {
            "selector": selector,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": available,
            "upToDateReplicas": up_to_date,
            "observedGeneration": int(md["metadata"].get("generation") or 1),
            "phase": phase,
            "conditions": keep_transitions(old, conds, stamp),
            "deprecated": {
                "v1beta1": {
                    "updatedReplicas": total("replicas", new),
                    "readyReplicas": ready,
                    "availableReplicas": available,
                    "unavailableReplicas": max(0, replicas - available),
                }
            },
        }
        if status != old:
            self._write(
                lambda o: {**o, "status": status},
                MGMT,
                MACHINEDEPLOYMENTS,
                key_of(md),
                subresource="status",
            )


def _annotated(md: Obj, revision: int) -> Obj:
    md["metadata"].setdefault("annotations", {})[capi.REVISION_ANNOTATION] = str(revision)
    return md
