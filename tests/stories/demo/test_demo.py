"""``gitops demo`` end to end, as a newcomer runs it: a child process that must exit 0.

The story's outcomes are read from its ``--json`` summary and from the repositories it keeps
(``--keep``): status-branch commits, the fleet converged on the bumped image, the pool halted
on the broken image, the revert pull request, and nothing left running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitops.demo.stage import SLUG


@pytest.mark.slow
def test_the_demo_tells_the_whole_story_and_exits_0(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    root = Path(__file__).parents[3]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitops.cli",
            "demo",
            "--time-scale",
            "0.005",
            "--keep",
            "--json",
            str(summary_path),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    summary = json.loads(summary_path.read_text())
    kept = Path(summary["paths"]["root"])
    try:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert summary["ok"] is True
        # Drift was injected, reported in pull requests and remediated by replacement.
        assert summary["driftInjected"] and summary["driftPulls"]
        # The controller's page was pointed at, and still answered at the end of the story.
        url = summary["dashboard"]
        assert url.startswith("http://127.0.0.1:") and f"open {url} to watch" in done.stdout
        assert summary["dashboardPage"]["revision"] == summary["broken"]["revision"]
        # The forge is known (the bot's pull requests name it): the revision links to its commit.
        assert summary["dashboardPage"]["revisionUrl"].endswith(
            f"/{SLUG}/commit/{summary['broken']['revision']}"
        )
        assert summary["driftReplacements"] >= len(summary["driftInjected"])
        # The status branch holds the controller's commits.
        assert summary["statusCommits"] >= 3
        log = subprocess.run(
            ["git", "--git-dir", summary["paths"]["remote"], "log", "--format=%s", "gitops/status"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert len(log) >= summary["statusCommits"]  # plus the final flush on SIGTERM
        bumped = summary["bump"]["revision"]
        assert any(f"at {bumped[:12]}: converged" in line for line in log)
        # The bump waited for the canary's maintenance window, declared in its pull request
        # to open seconds later: no replacement of the rollout was created before it opened.
        window = summary["window"]
        assert window["name"] == "demo-window"
        assert window["firstReplacement"] >= window["opens"]
        # The whole fleet converged on the engineer's bump, every pool in full.
        assert summary["converged"]["revision"] == bumped
        assert summary["pools"] and all(p["converged"] for p in summary["pools"])
        assert all(p["onTarget"] == p["replicas"] for p in summary["pools"])
        # The broken image halted its pool's wave on the failure budget ...
        broken = summary["broken"]
        assert (broken["cluster"], broken["pool"]) == ("canary-eu-1", "general")
        assert "maxFailedNodes" in broken["halt"] and "wave canary" in broken["halt"]
        # ... and the bot opened a revert pull request for that revision.
        revert = summary["revertPull"]
        assert revert["head"] == f"gitops/revert/{broken['revision'][:12]}"
        assert revert["state"] == "open"
        numbers = {p["number"] for p in summary["pulls"]}
        assert {revert["number"], summary["bump"]["pull"], broken["pull"]} <= numbers
        # --keep printed where everything is; nothing of the demo runs any more.
        assert str(kept) in done.stdout
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
        assert str(kept) not in ps.stdout
    finally:
        shutil.rmtree(kept, ignore_errors=True)
