"""JSON log lines carry the message and the cluster, pool and node they are about."""

from __future__ import annotations

import json
import logging

from gitops.controller.logs import JsonFormatter


def _format(**extra: object) -> dict[str, object]:
    record = logging.LogRecord(
        "gitops.rollout", logging.WARNING, __file__, 1, "drain of %s blocked", ("n-1",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_its_context() -> None:
    line = _format(cluster="prod-eu-1", pool="general", node="n-1")
    assert line["message"] == "drain of n-1 blocked"
    assert (line["level"], line["logger"]) == ("warning", "gitops.rollout")
    assert (line["cluster"], line["pool"], line["node"]) == ("prod-eu-1", "general", "n-1")


def test_empty_context_is_left_out() -> None:
    line = _format(cluster="", pool="")
    assert "cluster" not in line and "pool" not in line and line["time"].endswith("+00:00")
