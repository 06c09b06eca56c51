"""The sticky plan comment and the per-cluster plan statuses: pure decisions, no network."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.bot import links, markers, plans
from gitops.fleet import Problem
from gitops.forge.base import Comment
from gitops.plan import RolloutState, make
from tests.examples import examples
from tests.unit.core.factories import T0, cluster, declared, fleet, pool

HEAD = "a" * 40


def test_markers_round_trip_and_refuse_what_would_not_parse_back() -> None:
    text = "hello\n" + markers.marker("plan", {"head": HEAD, "plan": "p1"}) + "\nbye"
    assert markers.find(text, "plan") == {"head": HEAD, "plan": "p1"}
    assert markers.find(text, "drift") is None
    with pytest.raises(ValueError):
        markers.marker("plan", {"head": "two words"})


@pytest.mark.parametrize(
    ("kind", "pull", "expected"),
    [
        (
            "github",
            "https://github.com/acme/fleet/pull/7",
            "https://github.com/acme/fleet/blob/S/plans/pr-7.md",
        ),
        (
            "gitlab",
            "https://gl/acme/fleet/-/merge_requests/7",
            "https://gl/acme/fleet/-/blob/S/plans/pr-7.md",
        ),
        (
            "gitea",
            "https://tea/acme/fleet/pulls/7",
            "https://tea/acme/fleet/src/commit/S/plans/pr-7.md",
        ),
        ("github", "https://elsewhere/odd", ""),
    ],
)
def test_permalinks_per_platform(kind: str, pull: str, expected: str) -> None:
    assert links.file_url(kind, links.repository_url(kind, pull), "S", "plans/pr-7.md") == expected


def test_decide_creates_then_edits_then_leaves_alone() -> None:
    other = Comment(1, "LGTM", "human")
    assert plans.decide([other], HEAD, "p1") == plans.Decision("create")
    ours, _ = plans.comment_body(HEAD, "p1", "the plan\n", 65_536, "")
    existing = [other, Comment(2, ours, "bot")]
    assert plans.decide(existing, HEAD, "p1") == plans.Decision("none", 2)
    assert plans.decide(existing, "b" * 40, "p1") == plans.Decision("update", 2)
    assert plans.decide(existing, HEAD, "p2") == plans.Decision("update", 2)


def test_fit_keeps_short_text_whole() -> None:
    assert plans.fit("a\nb\n", 100, "L") == ("a\nb\n", 0)


def test_fit_cuts_at_a_line_closes_details_and_counts_exactly() -> None:
    lines = ["<details><summary>x</summary>\n"] + [f"| row {i} |\n" for i in range(500)]
    lines += ["</details>\n", "after\n"]
    text = "".join(lines)
    body, cut = plans.fit(text, 1000, "https://x/plans/pr-1.md")
    assert len(body) <= 1000
    kept = body.split("\n</details>\n")[0]
    shown = kept.count("| row ")
    assert cut == len(lines) - 1 - shown  # every line not shown is counted, the summary kept
    assert body.count("<details>") == body.count("</details>") == 1
    assert body.endswith(
        f"… {cut} more lines not shown; the full plan is at https://x/plans/pr-1.md\n"
    )


def test_a_big_plan_comment_stays_within_the_limit_with_a_truthful_tail() -> None:
    many = [cluster(f"c{i:02d}", pools=[pool(replicas=20)]) for i in range(12)]
    f = fleet(many, revision=HEAD)
    p = make(f, declared(f, image="img-1"), RolloutState(revision=HEAD), T0)
    text = plans.full_markdown(p, pr=4, head_sha=HEAD)
    assert len(text) > 20_000
    body, cut = plans.comment_body(HEAD, p.id, text, 20_000, "LINK")
    assert len(body) <= 20_000
    assert cut > 0
    shown_lines = body.split("\n", 1)[1]
    match = re.search(r"… (\d+) more lines not shown; the full plan is at LINK\n$", shown_lines)
    assert match and int(match.group(1)) == cut
    head = shown_lines[: match.start()].removesuffix("\n")  # the tail's own blank line
    # the kept lines are exactly the first lines of the full plan, then a closer for each
    # <details> the cut left open; the lines counted as not shown are exactly the rest
    kept, closers = head, 0
    while not text.startswith(kept):
        assert kept.endswith("\n</details>\n")
        kept, closers = kept.removesuffix("\n</details>\n"), closers + 1
    assert closers == kept.count("<details>") - kept.count("</details>")
    assert len(kept.splitlines()) + cut == len(text.splitlines())


def test_one_status_per_cluster_with_distinct_contexts() -> None:
    f = fleet([cluster("a", ring="canary"), cluster("b")], revision=HEAD)
    p = make(f, declared(f, image="img-1"), RolloutState(revision=HEAD), T0)
    statuses = plans.plan_statuses(p, HEAD, "u")
    assert [s.context for s in statuses] == ["gitops/plan/a", "gitops/plan/b"]
    assert {s.state for s in statuses} == {"success"}
    assert all(s.sha == HEAD and len(s.description) <= 140 for s in statuses)
    assert "CreateReplacement" in statuses[0].description


def test_a_refused_plan_fails_every_cluster() -> None:
    f = fleet([cluster("a")], revision=HEAD, max_drifted_fraction=0.1)
    inv = declared(f, hook=lambda c, p, i, n: _patched(n))
    p = make(f, inv, RolloutState(revision=HEAD), T0)
    assert p.status == "refused"
    (status,) = plans.plan_statuses(p, HEAD)
    assert status.state == "failure" and status.description.startswith("refused")


def _patched(n):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(n, kernel_version="6.6.99")


def test_an_invalid_head_fails_each_named_cluster_and_shows_every_problem() -> None:
    problems = (Problem("clusters/a.yaml", 3, 7, "unknown key 'imgae'", "did you mean 'image'"),)
    text = plans.invalid_markdown(problems, pr=3, head_sha=HEAD)
    assert "clusters/a.yaml:3:7: unknown key 'imgae' (did you mean 'image')" in text
    statuses = plans.invalid_statuses(["b", "a", "a"], HEAD, 1)
    assert [(s.context, s.state) for s in statuses] == [
        ("gitops/plan/a", "failure"),
        ("gitops/plan/b", "failure"),
    ]
    assert plans.invalid_id(problems) == plans.invalid_id(list(problems))


@given(
    lines=st.lists(
        st.one_of(
            st.just("<details><summary>c</summary>"),
            st.just("</details>"),
            st.text(alphabet="ab|é …", max_size=80),
        ),
        max_size=200,
    ),
    limit=st.integers(min_value=300, max_value=5_000),
)
@settings(max_examples=examples(200), deadline=None)
def test_fit_never_exceeds_the_limit_and_counts_what_it_leaves_out(
    lines: list[str], limit: int
) -> None:
    text = "".join(line + "\n" for line in lines)
    body, cut = plans.fit(text, limit, "https://forge/x/blob/s/plans/pr-1.md")
    assert len(body) <= limit
    if cut == 0:
        assert body == text
        return
    shown = body[: body.rindex("\n… ")]
    kept = shown
    while not text.startswith(kept):
        assert kept.endswith("\n</details>\n")
        kept = kept.removesuffix("\n</details>\n")
    assert len(kept.splitlines()) + cut == len(text.splitlines())
    assert body.endswith(
        f"… {cut} more lines not shown; the full plan is at https://forge/x/blob/s/plans/pr-1.md\n"
    )
