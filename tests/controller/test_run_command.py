"""`gitops run` as a process: it comes up, serves its endpoints, and stops on SIGTERM at once."""

from __future__ import annotations

import signal
import time

from tests.controller.conftest import Launch, until


def test_run_serves_and_stops_cleanly_on_repeated_signals(gitops_run: Launch) -> None:
    run = gitops_run("a")
    _, why = until(lambda: (r := run.get("/readyz"))[0] == 200 and r, 60, "readiness")
    assert "is in force" in why
    loaded = 'gitops_phase_result{phase="load",result="ok"} 1.0'
    _, metrics = until(lambda: (r := run.get("/metrics"))[0] == 200 and loaded in r[1] and r)
    assert "gitops_leader 1.0" in metrics
    for _ in range(5):  # an impatient operator: signals in a burst must neither deadlock it
        run.proc.send_signal(signal.SIGTERM)  # nor kill it before it has shut down cleanly
        time.sleep(0.01)
    assert run.proc.wait(timeout=30) == 0
