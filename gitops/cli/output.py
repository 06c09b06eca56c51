"""The ``-o text|markdown|json`` switch of the commands that print plans and findings.

Entry layer. One option and one renderer for ``drift``, ``plan`` and ``plan --pr``: text for
terminals (coloured on one), Markdown for PR comments, JSON for bots. The renderers themselves
are the planner's (``gitops.plan.text``, ``markdown``, ``jsonout``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import click

if TYPE_CHECKING:
    from gitops.drift import Finding
    from gitops.plan import Plan

Output = Literal["text", "markdown", "json"]
OUTPUTS: tuple[Output, ...] = ("text", "markdown", "json")

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUTS),
    default="text",
    show_default=True,
    help="text for terminals, markdown for PR comments, json for bots.",
)


def render(output: str, subject: Plan | Sequence[Finding]) -> str:
    """``subject`` (a plan, or drift findings) in the format ``-o`` asked for."""
    from gitops.plan import Plan, jsonout, markdown, text

    color = output == "text" and sys.stdout.isatty()
    if isinstance(subject, Plan):
        if output == "json":
            return jsonout.render(subject)
        if output == "markdown":
            return markdown.render(subject)
        return text.render(subject, color=color)
    findings = tuple(subject)
    if output == "json":
        return jsonout.render_findings(findings)
    if output == "markdown":
        return markdown.render_findings(findings)
    return text.render_findings(findings, color=color)
