"""A fake executor for the pure core's tests: it carries out plans on an in-memory fleet.

Not the real executor (gitops.rollout): a small model of what it does, so the planner's
promises can be checked over whole rollouts. Each ``step`` applies the plan's ready actions one
at a time, checking the per-pool bounds after every single change; ``tick`` moves time on:
machines created earlier get a Ready node booted from the declared image, and nodes being
retired finish draining and disappear.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from gitops.fleet import Fleet
from gitops.fleet.wellknown import (
    CORDONED_BY_ANNOTATION,
    IMAGE_ANNOTATION,
    PHASE_ANNOTATION,
    PLAN_ID_ANNOTATION,
    POOL_LABEL,
    REPLACES_ANNOTATION,
    ZONE_LABEL,
)
from gitops.inventory import ClusterInventory, Inventory, Machine, Node, NodeTaint
from gitops.plan import (
    AbandonMachine,
    AnyAction,
    CreateReplacement,
    Plan,
    RetireNode,
    RolloutState,
    ScaleDown,
    ScaleUp,
    Uncordon,
    make,
    next_actions,
    next_wakeup,
)


class BoundBroken(AssertionError):
    pass


@dataclass
class FakeFleet:
    fleet: Fleet
    now: float
    nodes: dict[str, dict[str, Node]] = field(default_factory=dict)
    machines: dict[str, dict[str, Machine]] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    retired: Counter[tuple[str, str]] = field(default_factory=Counter)
    created: int = 0
    boot_fails: set[str] = field(default_factory=set)  # machine names that never boot
    fail_every: int = 0  # every Nth machine created never boots (0: none)
    abandoned: int = 0

    @classmethod
    def observe(cls, fleet: Fleet, inventory: Inventory, now: float) -> FakeFleet:
        fake = cls(fleet=fleet, now=now)
        for c in inventory.clusters:
            if not c.reachable:
                fake.unreachable[c.name] = c.error
                continue
            fake.nodes[c.name] = {n.name: n for n in c.nodes}
            fake.machines[c.name] = {m.name: m for m in c.machines}
        return fake

    def inventory(self) -> Inventory:
        clusters = [ClusterInventory.unreachable(n, e) for n, e in self.unreachable.items()]
        for name in self.nodes:
            clusters.append(
                ClusterInventory.build(
                    name, self.nodes[name].values(), self.machines[name].values()
                )
            )
        return Inventory(tuple(clusters))

    # ── bounds ──────────────────────────────────────────────────────────────────────────────

    def counts(self, cluster: str, pool: str) -> tuple[int, int]:
        """(machines, available) of a pool, as the planner counts them."""
        members = ClusterInventory.build(
            cluster, self.nodes[cluster].values(), self.machines[cluster].values()
        ).members(pool)
        return len(members), sum(1 for m in members if m.available)

    def snapshot(self) -> dict[tuple[str, str], tuple[int, int]]:
        out = {}
        for doc in self.fleet.clusters:
            if doc.name in self.nodes:
                for p in doc.spec.node_pools:
                    out[(doc.name, p.name)] = self.counts(doc.name, p.name)
        return out

    def check(self, before: dict[tuple[str, str], tuple[int, int]], what: str) -> None:
        """Each bound holds, or (when the observed fleet started outside it) got no worse."""
        for (cluster, pool_name), (m0, a0) in before.items():
            doc = self.fleet.cluster(cluster)
            assert doc is not None
            p = doc.pool(pool_name)
            assert p is not None
            m1, a1 = self.counts(cluster, pool_name)
            ceiling, floor = p.replicas + p.surge, p.replicas - p.unavailable
            if m1 > max(ceiling, m0):
                raise BoundBroken(f"{what}: {cluster}/{pool_name} has {m1} machines > {ceiling}")
            if a1 < min(floor, a0):
                raise BoundBroken(f"{what}: {cluster}/{pool_name} has {a1} available < {floor}")

    # ── acting ──────────────────────────────────────────────────────────────────────────────

    def plan(self, state: RolloutState | None = None) -> Plan:
        return make(self.fleet, self.inventory(), state or RolloutState(), self.now)

    def apply(self, action: AnyAction) -> None:
        cluster = action.cluster
        nodes, machines = self.nodes[cluster], self.machines[cluster]
        if isinstance(action, CreateReplacement | ScaleUp):
            self.created += 1
            name = f"new-{self.created:05d}"
            if self.fail_every and self.created % self.fail_every == 0:
                self.boot_fails.add(name)
            annotations = {IMAGE_ANNOTATION: action.image, PLAN_ID_ANNOTATION: "p"}
            if isinstance(action, CreateReplacement):
                annotations[REPLACES_ANNOTATION] = action.replaces
            annotations[PHASE_ANNOTATION] = "provisioning"
            machines[name] = Machine(
                name=name,
                namespace="ns",
                labels={POOL_LABEL: action.pool},
                annotations=annotations,
                zone=action.zone,
                created=self.now,
                phase="Provisioning",
            )
        elif isinstance(action, RetireNode | ScaleDown):
            node = nodes.get(action.node) if action.node else None
            if node is not None:
                # A retirement starts once; the plan's carry-on steps do not start another.
                self.retired[(cluster, node.name)] += 1 if node.phase != "draining" else 0
                annotations = dict(node.annotations)
                annotations[CORDONED_BY_ANNOTATION] = "p"
                annotations[PHASE_ANNOTATION] = "draining"
                nodes[node.name] = replace(node, unschedulable=True, annotations=annotations)
            elif action.machine in machines:
                machines[action.machine] = replace(machines[action.machine], deleting=True)
        elif isinstance(action, AbandonMachine):
            self.abandoned += 1
            machine = machines[action.machine]
            machines[action.machine] = replace(machine, deleting=True)
        elif isinstance(action, Uncordon):
            node = nodes[action.node]
            annotations = {k: v for k, v in node.annotations.items() if k != CORDONED_BY_ANNOTATION}
            nodes[node.name] = replace(node, unschedulable=False, annotations=annotations)

    def step(self, plan: Plan) -> int:
        """Apply the plan's ready actions, checking the bounds after each; returns how many."""
        done = 0
        for action in next_actions(plan):
            before = self.snapshot()
            self.apply(action)
            self.check(before, f"after {action.key}")
            done += 1
        return done

    def tick(self, seconds: float = 60.0) -> None:
        """Time passes: boots finish, drains finish, deletions complete."""
        self.now += seconds
        for cluster in sorted(self.nodes):
            nodes, machines = self.nodes[cluster], self.machines[cluster]
            doc = self.fleet.cluster(cluster)
            assert doc is not None
            for name in sorted(machines):
                m = machines[name]
                if m.deleting:
                    del machines[name]
                    if m.node:
                        nodes.pop(m.node, None)
                    continue
                if m.node or name in self.boot_fails:
                    continue
                p = doc.pool(m.pool)
                assert p is not None
                img = self.fleet.images[m.image or p.image]
                nodes[name] = Node(
                    name=name,
                    pool=p.name,
                    zone=m.zone,
                    os_image=img.os_image,
                    kernel_version=img.kernel_version,
                    kubelet_version=img.kubelet_version,
                    container_runtime_version=img.container_runtime_version,
                    labels={**img.facts.labels, POOL_LABEL: p.name, ZONE_LABEL: m.zone, **p.labels},
                    annotations=img.facts.annotations,
                    taints=tuple(NodeTaint(t.key, t.effect, t.value or "") for t in p.taints),
                    ready=True,
                    ready_since=self.now,
                    created=self.now,
                    machine=name,
                )
                annotations = dict(m.annotations)
                annotations[PHASE_ANNOTATION] = "ready"
                machines[name] = replace(m, node=name, annotations=annotations, phase="Running")
            for name in sorted(nodes):
                n = nodes[name]
                if n.phase == "draining":
                    del nodes[name]
                    if n.machine:
                        machines.pop(n.machine, None)

    def roll(self, *, max_steps: int = 400, state: RolloutState | None = None) -> tuple[Plan, int]:
        """Plan, act, let time pass, until the plan is empty; returns (last plan, steps)."""
        for steps in range(max_steps):
            plan = self.plan(state)
            if plan.converged:
                return plan, steps
            if self.step(plan) == 0:
                wake = next_wakeup(plan)
                self.tick(max(60.0, (wake or 0.0) - self.now))
            else:
                self.tick()
        raise AssertionError(f"no convergence after {max_steps} steps")
