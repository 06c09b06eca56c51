"""`gitops run` as a process: it comes up, serves its endpoints, and stops on SIGTERM at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gitops.sim.server import Simulator
from tests.rollout.conftest import SIM_SCALE, write_fleet


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def test_run_serves_and_stops_cleanly_on_repeated_signals(
    tmp_path: Path, fleet_remote: Callable[..., tuple[Path, Path]]
) -> None:
    bare, work = fleet_remote(write_fleet(tmp_path / "source"))
    with Simulator(
        work, initial="declared", time_scale=SIM_SCALE, kubeconfig_out=tmp_path / "kc"
    ) as sim:
        port = 18000 + os.getpid() % 1000
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitops.cli",
                "run",
                "--repo",
                f"file://{bare}",
                "--kubeconfig",
                sim.kubeconfig_path,
                "--interval",
                "1s",
                "--status-interval",
                "1s",
                "--http-addr",
                f"127.0.0.1:{port}",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--lease-namespace",
                "default",
                "--state-namespace",
                "default",
                "--time-scale",
                "0.01",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while _get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "gitops run never became ready"
                time.sleep(0.2)  # polling another process: no clock of ours to advance
            status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200 and "gitops_leader 1.0" in metrics
            for _ in range(5):  # an impatient operator: signals in a burst must not deadlock it
                proc.send_signal(signal.SIGTERM)
                time.sleep(0.01)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
