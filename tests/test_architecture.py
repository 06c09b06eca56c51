"""The import-linter contracts of pyproject.toml hold, and they do catch a layering violation."""

from __future__ import annotations

import ast
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


# -- test modules share helpers through helper and fixture modules, not through each other ----


def imports_of_test_modules(root: Path) -> list[tuple[str, str]]:
    """Every (importing file, imported test module) pair under ``root``/tests, sorted."""
    found: set[tuple[str, str]] = set()
    for path in sorted((root / "tests").rglob("*.py")):
        where = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found.update(
                (where, name)
                for name in names
                if name.startswith("tests.") and name.rsplit(".", 1)[1].startswith("test_")
            )
    return sorted(found)


def test_no_test_module_imports_another_test_module() -> None:
    offending = imports_of_test_modules(ROOT)
    assert offending == [], (
        "test modules import helpers from other test modules (move the helper into a helpers.py "
        f"or conftest.py fixture module that both import): {offending}"
    )


def test_the_import_check_sees_a_helper_taken_from_another_test_module(tmp_path: Path) -> None:
    area = tmp_path / "tests" / "unit" / "plan"
    area.mkdir(parents=True)
    (area / "test_one.py").write_text("def shared() -> int:\n    return 1\n")
    (area / "test_two.py").write_text(
        "import tests.unit.plan.test_one\nfrom tests.unit.plan import test_one\n"
        "from tests.unit.plan.test_one import shared\nfrom tests.unit.plan.helpers import fine\n"
    )
    assert imports_of_test_modules(tmp_path) == [
        ("tests/unit/plan/test_two.py", "tests.unit.plan.test_one"),
    ]


# -- the tiers say what they hold: every story is slow, no unit or adapter test is -------------


def _is_slow(node: ast.expr) -> bool:
    """``pytest.mark.slow``, alone or in a list of marks."""
    if isinstance(node, ast.List | ast.Tuple):
        return any(_is_slow(e) for e in node.elts)
    return ast.unparse(node) == "pytest.mark.slow"


def slow_by_test(path: Path) -> dict[str, bool]:
    """Each test function of the module at ``path``, and whether it carries the ``slow`` mark."""
    tree = ast.parse(path.read_text(), str(path))
    module_slow = any(
        isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets)
        and _is_slow(n.value)
        for n in tree.body
    )
    return {
        n.name: module_slow or any(_is_slow(d) for d in n.decorator_list)
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    }


def test_every_story_is_slow_and_no_unit_or_adapter_test_is() -> None:
    tiers = {"stories": True, "unit": False, "adapters": False}
    counted = dict.fromkeys(tiers, 0)
    misplaced = []
    for tier, slow in tiers.items():
        for path in sorted((ROOT / "tests" / tier).rglob("test_*.py")):
            for name, marked in slow_by_test(path).items():
                counted[tier] += 1
                if marked != slow:
                    misplaced.append(f"{path.relative_to(ROOT)}::{name}")
    assert all(counted.values()), counted  # every tier holds tests, so the check saw some
    assert misplaced == [], (
        "tests/stories holds the tests marked slow, tests/unit and tests/adapters the others; "
        f"move these or fix their mark: {misplaced}"
    )


def test_the_slow_check_reads_module_and_function_marks(tmp_path: Path) -> None:
    module = tmp_path / "test_some.py"
    module.write_text(
        "import pytest\n\n"
        "@pytest.mark.slow\ndef test_marked(): ...\n\n"
        "@pytest.mark.parametrize('x', [1])\ndef test_unmarked(x): ...\n\n"
        "def helper(): ...\n"
    )
    assert slow_by_test(module) == {"test_marked": True, "test_unmarked": False}
    module.write_text(
        "import pytest\n\npytestmark = [pytest.mark.slow]\n\ndef test_under_the_module_mark(): ...\n"
    )
    assert slow_by_test(module) == {"test_under_the_module_mark": True}
