"""The ``gitops`` command line: the entry layer, which parses flags and calls the layers below.

The only package of ``gitops`` that imports ``click`` and ``rich`` (an import-linter contract
says so). One module per command; ``group`` loads a command's module only when that command
runs (or ``--help`` lists it), and every command module imports the adapters it needs inside
its function, so ``gitops --help`` and ``gitops validate`` never load ``kubernetes``, ``git``,
``httpx`` or the simulator.

Every command catches the project's own errors and prints them as messages; a traceback
reaching a user is a bug. Exit codes are documented per command in ``--help`` and the README.
"""

from __future__ import annotations

from gitops.cli.group import main

__all__ = ["main"]
