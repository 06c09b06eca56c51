"""Fixtures of the dashboard's adapter tests: the bot's fleet repository on each fake forge.

``hub`` and ``repo`` are the bot tests' own fixtures, shared rather than rebuilt.
"""

from tests.adapters.bot.conftest import hub, repo  # noqa: F401  (shared fixtures)
