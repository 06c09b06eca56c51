"""The batch rules, written once for the first batch and for the projected ones.

Part of the pure core (gitops.plan), used by ``poolplan``. A batch of one pool is laid out on a
``Draft``: its ``Budget`` and the actions so far. The same four rules lay out batch 1 (what the
executor does now) and every later batch (the projection a reviewer reads):

* ``add_capacity``: scale up towards ``replicas`` within the surge room, least-filled zones first;
* ``remove_capacity``: scale down towards ``replicas`` in retire order, within the floor;
* ``make_before_break`` (``maxSurge > 0``): create replacements within the surge room, each in
  the zone of the node it replaces, then retire those nodes once their replacements are Ready;
* ``break_before_make`` (``maxSurge: 0``): retire nodes within the unavailability budget, then
  create their replacements.

What differs between the two is only what the budget may assume. In batch 1 a step is started,
not finished: a retired node's machine still counts until it is gone, a new node is not
Ready, and a retire that waits for a replacement is checked against the floor again when the
replacement is Ready (``inflight``). In a projected batch every step is taken as done before
the next batch starts, so each retire is checked now, and a batch is only as large as the
retires that fit. ``Draft.projected`` says which; the texts differ accordingly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gitops.inventory import Member
from gitops.plan import actions
from gitops.plan.budget import Budget
from gitops.plan.model import AnyAction
from gitops.plan.pools import NO_REASON, PoolWork


@dataclass(slots=True)
class Draft:
    """One batch of one pool being laid out.

    ``actions`` are in the order they may be done; ``after`` holds the steps that follow all of
    them (retires after the creates that make room for them, creates after the retires that
    free it). ``avail`` says who counts as available in a projected batch (a recovering node
    does, once batch 1 is done); batch 1 reads each member's own ``available``.
    """

    work: PoolWork
    budget: Budget
    projected: bool
    avail: Mapping[Member, bool] = field(default_factory=dict)
    actions: list[AnyAction] = field(default_factory=list)
    after: list[AnyAction] = field(default_factory=list)

    def available(self, m: Member) -> bool:
        return self.avail[m] if self.projected else m.available

    def steps(self) -> tuple[AnyAction, ...]:
        return (*self.actions, *self.after)


def add_capacity(d: Draft, deficit: int, counts: dict[str, int]) -> int:
    """Scale up by ``deficit`` as far as the surge room allows; returns how many were added."""
    b, work = d.budget, d.work
    count = max(0, min(deficit, b.room))
    for _ in range(count):
        why = f"the pool has fewer than its {b.replicas} replicas"
        zone = actions.zone(work, None, counts)
        d.actions.append(actions.scale_up(work, b, zone, why, ready=not d.projected))
        if d.projected:
            b.add_available()
    return count


def remove_capacity(
    d: Draft, deficit: int, members: Iterable[Member], gone: set[Member]
) -> tuple[int, bool]:
    """Scale down by ``-deficit`` in retire order, keeping the floor; ``gone`` grows.

    Returns (the deficit left, whether the floor held back a member). Quarantined members and
    members already ``gone`` never go.
    """
    b, work = d.budget, d.work
    blocked = False
    for m in sorted(members, key=work.key):
        if deficit >= 0:
            break
        if m in gone or m.quarantined:
            continue
        took = d.available(m)
        if not b.may_take(took):
            blocked = True
            continue  # an unavailable member later in the order may still go
        if d.projected:
            b.take_node(took)
        else:
            b.take_available(took)
        gone.add(m)
        d.actions.append(actions.scale_down(work, b, m, ready=not d.projected))
        deficit += 1
    return deficit, blocked


def make_before_break(d: Draft, targets: list[Member], counts: dict[str, int]) -> list[Member]:
    """Replace the first ``targets`` the surge room allows; returns those started."""
    b, work, projected, avail = d.budget, d.work, d.projected, d.avail
    size = min(len(targets), b.room)
    if projected:
        # Creates first, then retires; keep the largest batch whose retires all fit. (With the
        # pool over its ceiling, as quarantined nodes holding their slots can leave it, ``size``
        # is negative and the slice below keeps all but the last -size targets: the projection
        # then shows a batch over the ceiling. Batch 1 never does: it creates nothing then.)
        while size > 0 and not b.fits([avail[t] for t in targets[:size]]):
            size -= 1
    else:
        size = max(0, size)
    started = targets[:size]
    for target in started:
        zone = actions.zone(work, target, counts)
        d.actions.append(actions.create(work, b, target, zone, ready=not projected))
    if projected:
        b.add_available(len(started))  # the new nodes are Ready before any retire starts
    budget = "after its replacement is Ready"  # batch 1: checked again then (``inflight``)
    for target in started:
        _, why = work.why.get(target.name, NO_REASON)
        if projected:
            took = avail[target]
            b.take_node(took)
            budget = b.availability_text(took)
        d.after.append(
            actions.retire(
                work,
                target,
                "",
                reason=f"retire {target.name} once its replacement is Ready: {why}",
                budget=budget,
                ready=False,
            )
        )
    return started


def break_before_make(d: Draft, targets: list[Member], counts: dict[str, int]) -> list[Member]:
    """Retire what the floor allows of ``targets``, then replace them; returns those started."""
    b, work = d.budget, d.work
    started: list[Member] = []
    for target in targets:
        took = d.available(target)
        if not b.may_take(took):
            continue  # an unavailable node later in the order may still go
        if d.projected:
            b.take_node(took)
        else:
            b.take_available(took)
        _, why = work.why.get(target.name, NO_REASON)
        d.actions.append(
            actions.retire(
                work,
                target,
                "",
                reason=f"retire {target.name} before its replacement (maxSurge 0): {why}",
                budget=b.availability_text(took),
                ready=not d.projected,
            )
        )
        started.append(target)
    for target in started:
        why = f"replaces {target.name} once it is gone (maxSurge 0)"
        # In batch 1 the old machine is not gone yet: the new one takes its place rather than
        # counting on top of it.
        budget = (
            ""
            if d.projected
            else f"surge: takes the place of {target.name}, at most {b.ceiling} machines"
        )
        zone = actions.zone(work, target, counts)
        d.after.append(actions.scale_up(work, b, zone, why, False, budget))
        if d.projected:
            b.add_available()
    return started
