"""``gitops apply`` as a user runs it: a real child process against the in-process simulator.

Confirmation (a "n" at the prompt changes nothing; no terminal and no ``--yes`` is a clear
error), exit statuses (0 converged, 1 halted with the reason printed), halting and resuming
(``--resume``, or a new fleet revision; nothing new starts while halted) and Ctrl-C (SIGINT stops
new work promptly and leaves the fleet consistent: the audit log's invariants hold and a later
``apply --yes`` converges).
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.rollout.conftest import POLICY_SCALE, Rollout
from tests.adapters.rollout.fleets import (
    ClusterSpec,
    PoolSpec,
    Sims,
    rollout_record,
    write_fleet,
)
from tests.adapters.rollout.invariants import check, load_events
from tests.stories.rollout.helpers import apply_argv, assert_converged

# Slow by nature: every test runs ``gitops apply`` as a child process through a rollout.
pytestmark = pytest.mark.slow

ENV = {**os.environ, "COLUMNS": "120"}


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[Sims]:
    started = Sims(tmp_path)
    yield started
    started.stop()


def apply(r: Rollout, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        apply_argv(r, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def writes_by_gitops(r: Rollout, since: float = 0.0) -> list[dict[str, Any]]:
    """Requests that changed something, made by the controller (not the simulator or a test)."""
    return [
        e
        for e in load_events(r.audit)
        if e["kind"] == "request"
        and e["time"] >= since
        and e["userAgent"].startswith("gitops/")
        and e["verb"] in ("create", "update", "patch", "delete", "deletecollection")
    ]


def created_machines(r: Rollout, since: float = 0.0) -> list[dict[str, Any]]:
    return [
        e
        for e in load_events(r.audit)
        if e.get("event") == "machine-created" and e["time"] >= since
    ]


# -- confirmation -------------------------------------------------------------------------


def test_answering_no_at_the_prompt_exits_non_zero_and_changes_nothing(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    master, slave = pty.openpty()  # a terminal on stdin, so the command asks
    try:
        proc = subprocess.Popen(
            apply_argv(r),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        os.write(master, b"n\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode != 0
    assert "Apply this plan?" in out
    assert "CreateReplacement" in out or "replace" in out  # the plan was shown first
    assert writes_by_gitops(r) == [], "something was written although the answer was no"
    assert created_machines(r) == []


def test_without_a_terminal_and_without_yes_it_refuses_clearly(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous")
    result = apply(r)  # stdin is /dev/null
    assert result.returncode == 1
    assert "error: not a terminal: pass --yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert writes_by_gitops(r) == []


# -- halting and resuming -----------------------------------------------------------------


def _failing_fleet(root: Path) -> Path:
    """One wave, one pool; no failure is tolerated and boots fail until the test heals them."""
    pool = PoolSpec("workers", 2, surge=1, node_startup_timeout="200s")  # 2 s at POLICY_SCALE
    return write_fleet(root, (ClusterSpec("c1", "first", (pool,)),), max_failed=0)


def test_a_halt_exits_1_with_the_reason_and_only_resume_carries_on(
    sims: Sims, tmp_path: Path
) -> None:
    r = sims.start(_failing_fleet(tmp_path / "fleet"), world={"boot_failure_rate": 1.0})
    halted = apply(r, "--yes")
    assert halted.returncode == 1, halted.stdout[-2000:] + halted.stderr[-2000:]
    assert "halted: rollout halted: 1 nodes failed in wave first" in halted.stderr
    assert "maxFailedNodes 0" in halted.stderr
    record = rollout_record(r)
    assert record["halted"] is True and "maxFailedNodes 0" in record["haltReason"]
    assert len(created_machines(r)) == 1

    # Healed, but still halted: another apply without --resume starts nothing.
    r.sim.world.physics.boot_failure_rate = 0.0  # type: ignore[union-attr]
    before = time.time()
    again = apply(r, "--yes")
    assert again.returncode == 1
    assert "halted" in again.stderr
    assert created_machines(r, since=before) == []
    assert [w for w in writes_by_gitops(r, since=before) if w["resource"] != "configmaps"] == []

    resumed = apply(r, "--yes", "--resume")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "converged: plan" in resumed.stdout
    record = rollout_record(r)
    assert record["halted"] is False and record["haltReason"] == ""
    assert len(created_machines(r, since=before)) == 2
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)


def test_a_new_fleet_revision_clears_the_halt(sims: Sims, tmp_path: Path) -> None:
    r = sims.start(_failing_fleet(tmp_path / "fleet"), world={"boot_failure_rate": 1.0})
    assert r.run(timeout=30).status == "halted"
    r.sim.world.physics.boot_failure_rate = 0.0  # type: ignore[union-attr]
    before = time.time()
    assert r.run(timeout=30).status == "halted"  # same revision: still halted
    assert created_machines(r, since=before) == []
    r.fleet = r.fleet.with_revision("rev-2")  # a new commit in the fleet repository
    plan = r.run(timeout=30)
    assert plan.status == "converged", plan.reason
    record = rollout_record(r)
    assert record["halted"] is False and record["revision"] == "rev-2"
    assert check(r.audit, r.snap, r.fleet) == []


# -- Ctrl-C -------------------------------------------------------------------------------


def test_sigint_stops_new_work_promptly_and_leaves_the_fleet_consistent(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous", seed=5)
    proc = subprocess.Popen(
        apply_argv(r, "--yes"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        # Mid-rollout: the second wave has started replacing nodes.
        deadline = time.monotonic() + 60
        while not [e for e in created_machines(r) if e["cluster"] == "staging"]:
            assert proc.poll() is None, "apply ended before it could be interrupted"
            assert time.monotonic() < deadline, "the rollout never reached the second wave"
            time.sleep(0.02)
        interrupted = time.time()
        proc.send_signal(signal.SIGINT)
        # Promptly means before the rollout's end, not within some seconds: a busy machine
        # takes longer for the steps in flight. The deadline is generous; the audit log below
        # shows it stopped with most of the rollout still to do.
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out[-2000:] + err[-2000:]
    assert "Stopping: no new work starts" in out
    assert "Traceback" not in err
    # At most the create already under way when the signal came; no wave after it started.
    assert len(created_machines(r, since=interrupted)) <= 1
    assert not [e for e in created_machines(r) if e["cluster"].startswith("prod")]
    assert check(r.audit, r.snap, r.fleet) == []

    final = apply(r, "--yes", timeout=120)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    assert "converged" in final.stdout
    assert check(r.audit, r.snap, r.fleet) == []
    assert_converged(r)
    created = created_machines(r)
    assert len(created) == 17  # one replacement per old node, none twice


# -- piped output, the recorded time scale, a second Ctrl-C --------------------------------------

EVENT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (info|warning|error) +(?P<where>(\w+=\S+ ?)+): (?P<what>.+)$"
)


def test_piped_apply_prints_every_event_as_a_line_and_records_its_time_scale(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous", seed=5)
    result = apply(r, "--yes", timeout=120)  # stdout is a pipe, as in CI
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    events = [m for line in result.stdout.splitlines() if (m := EVENT_LINE.match(line))]
    created = created_machines(r)
    assert created  # the rollout replaced nodes ...
    made = [
        dict(kv.split("=", 1) for kv in m["where"].split())
        for m in events
        if m["what"].startswith("created machine ")
    ]
    # ... and every Machine it created is one line, with its wave, cluster, pool and node.
    assert len(made) == len(created)
    assert all({"wave", "cluster", "pool", "node"} <= set(fields) for fields in made)
    waves = {m["where"] for m in events if m["what"].endswith(" started")}
    assert {"wave=canary", "wave=staging"} <= waves
    assert "converged" in result.stdout
    # Nothing of the HTTP library's own reaches the log: its failures are ours to word.
    assert "Connection pool is full" not in result.stderr
    assert "urllib3" not in result.stderr and "Retrying" not in result.stderr

    assert rollout_record(r)["timeScale"] == POLICY_SCALE
    plan_argv = [sys.executable, "-m", "gitops.cli", "plan", "--fleet", str(r.fleet_path)]
    plan_argv += ["--kubeconfig", r.sim.kubeconfig_path]
    same = subprocess.run(
        [*plan_argv, "--time-scale", str(POLICY_SCALE)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    assert same.returncode == 0, same.stdout[-2000:] + same.stderr[-2000:]
    assert "time-scale" not in same.stderr
    other = subprocess.run(
        plan_argv, capture_output=True, text=True, timeout=60, env=ENV, check=False
    )
    assert f"runs at --time-scale {POLICY_SCALE:g}, this plan at --time-scale 1" in other.stderr


def test_a_second_stop_request_quits_at_once_with_130_and_says_how_to_resume(
    rollout: Callable[..., Rollout],
) -> None:
    r = rollout(initial="previous", seed=5)
    proc = subprocess.Popen(
        apply_argv(r, "--yes"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 60
        while not created_machines(r):
            assert proc.poll() is None, "apply ended before it could be interrupted"
            assert time.monotonic() < deadline, "the rollout never started"
            time.sleep(0.02)
        # Two stop requests that both arrive before the command can act on the first: the
        # process is held meanwhile, and the second is SIGTERM because a second SIGINT still
        # pending would merge with the first (a signal is never pending twice). That is what
        # an impatient operator does, without depending on how fast this machine is.
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "run `gitops apply` again to resume" in err
    assert "Traceback" not in err
    assert check(r.audit, r.snap, r.fleet) == []
