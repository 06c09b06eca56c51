"""``python -m gitops.cli``: the ``gitops`` command, for tests and child processes."""

from __future__ import annotations

from gitops.cli.group import main

main()
