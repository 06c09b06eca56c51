"""What the controller measures, as Prometheus metrics (prometheus-client).

Shell layer. One registry per controller (not the global default), so tests and several
controllers in one process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The controller's metrics, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconcile_seconds = Histogram(
            "gitops_reconcile_duration_seconds",
            "Time one reconcile phase took (act includes the executor's own observe and plan).",
            ["phase"],
            registry=r,
        )
        self.plan_actions = Gauge("gitops_plan_actions", "Actions in the current plan.", registry=r)
        self.nodes = Gauge("gitops_nodes", "Observed nodes by state.", ["state"], registry=r)
        self.findings = Gauge("gitops_findings", "Current findings by kind.", ["kind"], registry=r)
        self.git_fetch_seconds = Histogram(
            "gitops_git_fetch_duration_seconds",
            "Time a fetch of the fleet repository took.",
            registry=r,
        )
        self.git_polls = Counter(
            "gitops_git_polls_total",
            "Looks at the fleet branch's tip (one ls-remote each).",
            registry=r,
        )
        self.git_fetches = Counter(
            "gitops_git_fetches_total",
            "Fetches of the fleet branch (a poll that finds the branch unmoved fetches nothing).",
            registry=r,
        )
        self.errors = Counter(
            "gitops_errors_total",
            "Transient or stalled outcomes, by the reconcile phase that had them.",
            ["kind"],
            registry=r,
        )
        self.phase_result = Gauge(
            "gitops_phase_result",
            "1 for the latest result (ok, waiting, transient, stalled) of each reconcile phase.",
            ["phase", "result"],
            registry=r,
        )
        self.webhooks = Counter(
            "gitops_webhooks_total", "Webhook requests by outcome.", ["outcome"], registry=r
        )
        self.window_open = Gauge(
            "gitops_window_open",
            "1 while a maintenance window is open (freezes aside); scope is fleet, "
            "wave:<name> or cluster:<name>.",
            ["scope", "name"],
            registry=r,
        )
        self.leader = Gauge("gitops_leader", "1 while this replica holds the Lease.", registry=r)
        # Sharding (``gitops run --sharding``): read from the ShardManager at every pass.
        self.shard_owned = Gauge(
            "gitops_shard_clusters_owned", "Workload clusters this replica owns.", registry=r
        )
        self.shard_unowned = Gauge(
            "gitops_shard_clusters_unowned",
            "Workload clusters with no live owner, as this replica sees the Leases.",
            registry=r,
        )
        self.shard_handoffs = Gauge(
            "gitops_shard_handoffs_total",
            "Clusters this replica handed over or took over since it started.",
            registry=r,
        )
        self.shard_fencing_refusals = Gauge(
            "gitops_shard_fencing_refusals_total",
            "Writes this replica did not make because a cluster's fence refused them.",
            registry=r,
        )
        self.kube_rate_limited = Counter(
            "gitops_kube_rate_limited_seconds",
            "Seconds requests waited for the client-side rate limit (--qps, --burst), by "
            'cluster ("" the management cluster).',
            ["cluster"],
            registry=r,
        )
