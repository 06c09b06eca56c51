"""The project's typed errors, shared by every layer.

    GitopsError
     ├── Stalled    needs a human (an invalid fleet, a forbidden request); do not retry
     ├── Waiting    expected, requeue after ``after`` seconds (a node still booting)
     └── Transient  retry with backoff (a timeout, a 5xx, a dropped connection)

Adapters translate library exceptions into these at their boundary with ``raise ... from e``;
nothing above the adapters ever sees an ``ApiException`` or a ``GitCommandError``.
"""

from __future__ import annotations


class GitopsError(Exception):
    """Base of the project's errors; its message is written for the person reading the log."""


class Stalled(GitopsError):
    """Progress needs a human; retrying will not help."""


class Waiting(GitopsError):
    """Expected; try again after ``after`` seconds."""

    def __init__(self, message: str, after: float) -> None:
        super().__init__(message)
        self.after = after


class Transient(GitopsError):
    """A passing fault; retry with backoff."""
