"""Drift reports: persistence, acknowledgement, the file, the body and the decision table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops.bot import deploy, driftpr
from gitops.drift import Finding
from gitops.forge.base import CommitStatus
from gitops.plan import RolloutState, make
from tests.unit.core.factories import T0, cluster, declared, fleet


def finding(node: str, observed: str = "6.6.99", kind: str = "ImageMismatch") -> Finding:
    return Finding(
        kind=kind,  # type: ignore[arg-type]
        cluster="a",
        pool="workers",
        node=node,
        fact="kernelVersion",
        expected="6.12.1",
        observed=observed,
        severity="error",
        remediation="report",
    )


def test_a_finding_is_reported_only_after_n_consecutive_observations() -> None:
    counter = driftpr.Persistence(2)
    one, two = finding("n1"), finding("n2")
    assert counter.observe("a", [one]) == ()
    assert counter.observe("a", [one, two]) == (one,)
    assert counter.observe("a", [two]) == (two,)  # n1 missing once: its count starts over
    assert counter.observe("a", [one, two]) == (two,)
    assert counter.count("a", one.fingerprint) == 1
    assert driftpr.Persistence(1).observe("a", [one]) == (one,)
    with pytest.raises(ValueError):
        driftpr.Persistence(0)


def test_the_drift_file_round_trips_to_acknowledged_fingerprints() -> None:
    report = driftpr.Report("a", (finding("n1"), finding("n2")))
    text = driftpr.render_file(report)
    assert text.startswith("# Drift found in cluster a")
    assert driftpr.acknowledged(text) == {finding("n1").fingerprint, finding("n2").fingerprint}
    assert driftpr.acknowledged(None) == frozenset()
    assert driftpr.acknowledged(b"{not: [yaml") == frozenset()
    assert driftpr.acknowledged("just a string") == frozenset()


def test_acknowledged_findings_alone_never_ask_for_a_pull_request() -> None:
    one, two = finding("n1"), finding("n2")
    acked = driftpr.Report("a", (one,), frozenset({one.fingerprint}))
    assert not acked.wanted
    mixed = driftpr.Report("a", (one, two), frozenset({one.fingerprint}))
    assert mixed.wanted and mixed.new == (two,)
    assert mixed.fingerprint != driftpr.Report("a", (one, two)).fingerprint


@pytest.mark.parametrize(
    ("wanted", "open_fp", "ours", "step"),
    [
        (False, None, None, "nothing"),
        (False, "x", None, "close"),
        (True, None, None, "open"),
        (True, None, True, "open"),
        (True, "SAME", True, "nothing"),
        (True, "old", True, "update"),
        (True, "old", False, "human"),
        (True, "SAME", False, "nothing"),
    ],
)
def test_decide(wanted: bool, open_fp: str | None, ours: bool | None, step: str) -> None:
    report = driftpr.Report("a", (finding("n1"),) if wanted else ())
    fp = report.fingerprint if open_fp == "SAME" else open_fp
    assert driftpr.decide(report, fp, ours) == step


def test_the_body_tables_each_finding_with_its_action_and_carries_the_fingerprint() -> None:
    f = fleet([cluster("a")], revision="r", remediate="replace")
    inv = declared(f, hook=lambda c, p, i, n: replace(n, kernel_version="6.6.99") if i == 0 else n)
    plan = make(f, inv, RolloutState(revision="r"), T0)
    findings = driftpr.unresolved(plan.findings, "a")
    assert findings
    report = driftpr.Report("a", findings)
    body = driftpr.render_body(report, plan, 65_536)
    assert driftpr.body_fingerprint(body) == report.fingerprint
    assert "| new | a-workers-000 | ImageMismatch | kernelVersion: 6.12.1 | 6.6.99 | " in body
    assert "replacement for a-workers-000" in body
    small = driftpr.render_body(driftpr.Report("a", findings * 50), plan, 900)
    assert len(small) <= 900 and "more findings not shown" in small


def test_the_human_comment_is_left_once_per_human_commit() -> None:
    report = driftpr.Report("a", (finding("n1"),))
    text = driftpr.human_comment(report, "c" * 40, "Jo <jo@x>", changed=True)
    assert driftpr.commented_on([text], "c" * 40)
    assert not driftpr.commented_on([text], "d" * 40)


def test_deploy_statuses_follow_the_rollout_and_are_resent_only_on_change() -> None:
    f = fleet([cluster("c", ring="canary"), cluster("p")], revision="r")
    rolling = make(f, declared(f, image="img-1"), RolloutState(revision="r"), T0)
    states = {s.context: s.state for s in deploy.statuses(rolling, "r")}
    assert states == {"gitops/deploy/c": "pending", "gitops/deploy/p": "pending"}
    done = make(f, declared(f), RolloutState(revision="r"), T0)
    assert {s.state for s in deploy.statuses(done, "r")} == {"success"}
    halted = make(
        f, declared(f, image="img-1"), RolloutState(revision="r").halt("2 nodes failed", T0), T0
    )
    assert {s.state for s in deploy.statuses(halted, "r")} == {"failure"}
    sent = {s.context: s for s in deploy.statuses(rolling, "r")}
    assert deploy.changed(deploy.statuses(rolling, "r"), sent) == ()
    changed = deploy.changed(deploy.statuses(done, "r"), sent)
    assert [s.context for s in changed] == ["gitops/deploy/c", "gitops/deploy/p"]
    assert all(isinstance(s, CommitStatus) and s.sha == "r" for s in changed)
