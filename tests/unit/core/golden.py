"""Golden files: compare with tests/golden/<name>, or rewrite it when GITOPS_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GITOPS_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; run with GITOPS_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"the rendering differs from {path}; if the change is intended, rerun with "
        "GITOPS_UPDATE_GOLDEN=1 and review the diff"
    )
