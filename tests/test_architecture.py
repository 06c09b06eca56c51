"""The import-linter contracts of pyproject.toml hold, and they do catch a layering violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_contracts_catch_a_model_module_importing_the_entry_layer(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "gitops", tmp_path / "gitops", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "gitops" / "fleet" / "upward.py").write_text(
        "import gitops.cli\nimport kubernetes\n"
    )
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert "Layers: entry > shell > adapters > core > model BROKEN" in result.stdout
    assert "Only gitops.kube imports kubernetes BROKEN" in result.stdout


@pytest.mark.parametrize(
    ("module", "offence"),
    [
        ("gitops/rollout/chatty.py", "import rich.console\n"),
        ("gitops/demo/flags.py", "import click\n"),
    ],
)
def test_contracts_catch_click_or_rich_outside_the_cli(
    tmp_path: Path, module: str, offence: str
) -> None:
    shutil.copytree(
        ROOT / "gitops", tmp_path / "gitops", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(offence)
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert "Only gitops.cli imports click and rich BROKEN" in result.stdout
    assert "0 broken" not in result.stdout


@pytest.mark.parametrize(
    ("module", "offence", "contract"),
    [
        # the simulator reaches into the controller's adapters
        (
            "gitops/sim/world/peek.py",
            "import gitops.kube\n",
            "The simulator imports nothing of gitops but gitops.fleet",
        ),
        # a shell module imports the simulator
        (
            "gitops/rollout/simulated.py",
            "from gitops.sim import Simulator\n",
            "Only the CLI and the demo import the simulator",
        ),
        # the API machinery calls into the world, or into the forge stand-ins
        (
            "gitops/sim/api/hook.py",
            "from gitops.sim.world import physics\n",
            "The simulator's API machinery imports neither the world nor the forges",
        ),
        (
            "gitops/sim/api/pulls.py",
            "import gitops.sim.forges.github\n",
            "The simulator's API machinery imports neither the world nor the forges",
        ),
        # the kubernetes exception is for the client-derived schemas only
        (
            "gitops/sim/api/client.py",
            "import kubernetes.client\n",
            "Only gitops.kube imports kubernetes",
        ),
        # the store imports the selectors: a selector needing the store back is a cycle, even
        # hidden in a function
        (
            "gitops/sim/api/selectors.py",
            "def _later() -> None:\n    from gitops.sim.api import store\n",
            "The simulator's modules import each other without cycles",
        ),
    ],
)
def test_contracts_keep_the_simulator_a_wing_of_its_own(
    tmp_path: Path, module: str, offence: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "gitops", tmp_path / "gitops", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / module
    path.write_text((path.read_text() if path.exists() else "") + offence)
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert f"{contract} BROKEN" in result.stdout
    assert "0 broken" not in result.stdout
