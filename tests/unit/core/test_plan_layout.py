"""The planner stays in small rooms: no function of gitops/plan/ is longer than 80 lines.

A function is measured with ``ast`` from its ``def`` line to its last line, docstring and
comments included (decorators not); methods and nested functions are measured on their own too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLAN = Path(__file__).resolve().parents[3] / "gitops" / "plan"
LIMIT = 80


def long_functions(source: str, filename: str) -> list[str]:
    """``file:line: name is N lines`` for each function of ``source`` over ``LIMIT`` lines."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > LIMIT:
                found.append(f"{filename}:{node.lineno}: {node.name} is {length} lines")
    return found


def _function(lines: int, *, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}def f() -> None:\n{body}"


def test_no_function_of_the_planner_is_over_80_lines() -> None:
    files = sorted(PLAN.glob("*.py"))
    assert len(files) >= 10, files  # the package is where we think it is
    found = [
        problem
        for path in files
        for problem in long_functions(path.read_text(), str(path.relative_to(PLAN.parents[1])))
    ]
    assert found == [], "split these into smaller functions:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        pytest.param(_function(80), False, id="an 80-line function passes"),
        pytest.param(_function(81), True, id="an 81-line function is caught"),
        pytest.param(
            "class C:\n" + _function(81, indent="    "), True, id="a long method is caught"
        ),
        pytest.param(
            "def outer() -> None:\n" + _function(81, indent="    ") + "    pass\n",
            True,
            id="a long nested function is caught",
        ),
        pytest.param(
            "async def g() -> None:\n" + "".join(f"    y{i} = {i}\n" for i in range(81)),
            True,
            id="a long coroutine is caught",
        ),
    ],
)
def test_the_measure_catches_what_it_should(source: str, caught: bool) -> None:
    assert bool(long_functions(source, "x.py")) is caught
