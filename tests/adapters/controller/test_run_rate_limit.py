"""``gitops run --qps --burst``: the flags reach every client, and the waits are measured.

Adapter tier: a real ``gitops run`` process against the simulator. With a burst of one, any
two requests less than 1/qps apart wait: start-up alone (the probe, the namespaces, the Lease,
the caches' lists and watches opened together by their threads) outruns the bucket, so the time
waited shows in ``/metrics`` for the management cluster.
"""

from __future__ import annotations

import re

from tests.adapters.controller.conftest import Launch, until

WAITED = re.compile(r'^gitops_kube_rate_limited_seconds_total\{cluster=""\} (\S+)$', re.M)


def _waited(metrics: str) -> float:
    match = WAITED.search(metrics)
    return float(match[1]) if match else 0.0


def test_run_limits_each_api_server_and_exports_the_time_waited(gitops_run: Launch) -> None:
    run = gitops_run("a", "--qps", "10", "--burst", "1")
    said = run.wait_log(lambda line: "--qps, --burst" in line["message"])
    assert "limited to 10 a second after a burst of 1" in said["message"]
    until(lambda: (r := run.get("/metrics"))[0] == 200 and _waited(r[1]) > 0, 60, "a wait")
    assert run.identity  # up, its signal handlers in place
    assert run.terminate() == 0


def test_qps_zero_lifts_the_limit(gitops_run: Launch) -> None:
    run = gitops_run("a", "--qps", "0")
    run.wait_log(lambda line: "not rate-limited (--qps 0)" in line["message"])
    until(lambda: run.get("/readyz")[0] == 200, 60, "readiness")  # start-up's requests are done
    status, metrics = run.get("/metrics")
    assert status == 200 and "gitops_plan_actions" in metrics
    assert "gitops_kube_rate_limited_seconds_total{" not in metrics  # no bucket, no wait
    assert run.terminate() == 0
