"""Label and field selectors: the API server's grammar, matching and errors."""

from __future__ import annotations

import pytest

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import NODES, PODS
from gitops.sim.api.selectors import (
    match_fields,
    match_labels,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "gpu": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("missing notin (db)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier in (front,back),!missing", True),
        ("app=web,tier=back", False),
        ("gpu=", True),
    ],
)
def test_label_selectors(selector: str, matches: bool) -> None:
    assert match_labels(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("bad", ["app=web,,tier", "a b=c", "app in (we b)", "=web", "app=web!"])
def test_malformed_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector(bad)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")


POD = {
    "metadata": {"name": "p1", "namespace": "default"},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("spec.nodeName=n1", True),
        ("spec.nodeName==n1", True),
        ("spec.nodeName!=n1", False),
        ("spec.nodeName=n2", False),
        ("metadata.name=p1,metadata.namespace=default", True),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("spec.nodeName=", False),
    ],
)
def test_field_selectors_on_pods(selector: str, matches: bool) -> None:
    assert match_fields(parse_field_selector(selector, PODS), POD) is matches


def test_unschedulable_defaults_to_false() -> None:
    sel = parse_field_selector("spec.unschedulable=false", NODES)
    assert match_fields(sel, {"metadata": {"name": "n1"}, "spec": {}})
    assert not match_fields(sel, {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})


def test_fields_a_kind_cannot_select_on_are_refused() -> None:
    with pytest.raises(ApiError) as info:
        parse_field_selector("spec.nodeName=n1", NODES)
    assert info.value.code == 400
    assert "field label not supported: spec.nodeName" in info.value.message
    with pytest.raises(ApiError):
        parse_field_selector("nonsense", PODS)
