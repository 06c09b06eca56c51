"""Stories: the plan of a pull request on the forge, through the controller's sweep.

Real git (a bare repository on disk), a real forge adapter talking HTTP to a fake forge, and
observed state from the core's factories (the sweep plans against what the controller saw).
"""

from __future__ import annotations

import re
from pathlib import Path

from gitops.bot import markers
from tests.adapters.bot.conftest import Hub, make_bot
from tests.unit.core.factories import T0, declared

CANARY = "clusters/canary-eu-1.yaml"


def bump_replicas(hub: Hub, branch: str, replicas: int) -> str:
    text = (hub.repo.work / CANARY).read_text() if hub.repo.has(branch) else None
    base = hub.repo.show("main", CANARY) if text is None else text
    edited = re.sub(r"replicas: \d+", f"replicas: {replicas}", base, count=1)
    return hub.repo.commit({CANARY: edited}, f"canary system to {replicas}", branch=branch)


def plan_comments(hub: Hub, number: int) -> list[str]:
    return [c.body for c in hub.server.comments(number) if "gitops:plan" in c.body]


def test_one_sticky_comment_edited_in_place_on_each_push(hub: Hub, tmp_path: Path) -> None:
    fleet = hub.repo.fleet()
    inventory = declared(fleet)
    first = bump_replicas(hub, "more-canary", 4)
    number = hub.open_pull("more-canary", title="More canary")
    bot = make_bot(hub, tmp_path)

    bot.sweep(fleet, inventory, T0)
    (body,) = plan_comments(hub, number)
    assert markers.find(body, "plan")["head"] == first  # type: ignore[index]
    assert "ScaleUp" in body

    second = bump_replicas(hub, "more-canary", 5)
    hub.pushed("more-canary")
    hub.server.clear_requests()
    bot.sweep(fleet, inventory, T0 + 60)
    (body,) = plan_comments(hub, number)
    assert markers.find(body, "plan")["head"] == second  # type: ignore[index]
    assert len(hub.server.comments(number)) == 1
    comment_writes = [r for r in hub.writes() if "comments" in r.path or "notes" in r.path]
    assert len(comment_writes) == 1
    assert comment_writes[0].method in ("PATCH", "PUT")  # edited, never a second POST
    if hub.kind == "github":
        assert comment_writes[0].method == "PATCH"

    # Nothing changed: this process sends nothing, and a fresh one (no memory) only reads.
    hub.server.clear_requests()
    bot.sweep(fleet, inventory, T0 + 120)
    assert hub.writes() == []
    make_bot(hub, tmp_path).sweep(fleet, inventory, T0 + 180)
    assert hub.writes() == []
    assert len(hub.server.comments(number)) == 1


def test_every_cluster_gets_its_own_status_context(github: Hub, tmp_path: Path) -> None:
    fleet = github.repo.fleet()
    head = bump_replicas(github, "more-canary", 4)
    github.open_pull("more-canary")
    make_bot(github, tmp_path).sweep(fleet, declared(fleet), T0)
    statuses = github.server.statuses(head)
    assert sorted(s.context for s in statuses) == [
        "gitops/plan/canary-eu-1",
        "gitops/plan/prod-eu-1",
        "gitops/plan/prod-us-1",
        "gitops/plan/staging-eu-1",
    ]
    by_context = {s.context: s for s in statuses}
    assert {s.state for s in statuses} == {"success"}
    assert by_context["gitops/plan/canary-eu-1"].description.startswith("1 action (1 ScaleUp)")
    assert by_context["gitops/plan/prod-eu-1"].description == "no changes"


def test_a_cut_comment_links_the_full_plan_on_the_status_branch(
    github: Hub, tmp_path: Path
) -> None:
    fleet = github.repo.fleet()
    main = github.repo.show("main", CANARY)
    # A pull request that moves the canary back to the previous image: a long plan.
    github.repo.commit(
        {CANARY: main.replace("image: talos-1.9.2", "image: talos-1.8.4")}, "roll back", "old"
    )
    number = github.open_pull("old")
    github.forge.max_body_chars = 3_000
    make_bot(github, tmp_path).sweep(fleet, declared(fleet), T0)
    (body,) = plan_comments(github, number)
    assert len(body) <= 3_000
    match = re.search(r"… (\d+) more lines not shown; the full plan is at (\S+)\n$", body)
    assert match, body[-300:]
    cut, link = int(match.group(1)), match.group(2)
    commit = re.fullmatch(
        rf"{github.server.root}/acme/fleet/blob/([0-9a-f]{{40}})/plans/pr-{number}.md", link
    )
    assert commit, link
    assert github.repo.tip("gitops/status") == commit.group(1)
    full = github.repo.show(commit.group(1), f"plans/pr-{number}.md")
    # What the comment shows is the full plan's first lines (plus closers for what the cut left
    # open), and the tail counts exactly the lines it leaves out.
    shown = body.split("\n", 1)[1][: match.start() - len(body.split("\n", 1)[0]) - 1]
    shown = shown.removesuffix("\n")
    while not full.startswith(shown):
        assert shown.endswith("\n</details>\n")
        shown = shown.removesuffix("\n</details>\n")
    assert len(shown.splitlines()) + cut == len(full.splitlines())


def test_an_invalid_head_shows_its_problems_and_fails_every_cluster(
    hub: Hub, tmp_path: Path
) -> None:
    fleet = hub.repo.fleet()
    main = hub.repo.show("main", CANARY)
    head = hub.repo.commit({CANARY: main.replace("replicas: 3", "replicas: three")}, "typo", "bad")
    number = hub.open_pull("bad")
    make_bot(hub, tmp_path).sweep(fleet, declared(fleet), T0)
    (body,) = plan_comments(hub, number)
    assert re.search(r"clusters/canary-eu-1\.yaml:\d+:\d+: ", body), body
    assert "is invalid" in body
    latest = {s.context: s.state for s in hub.server.statuses(head)}
    assert set(latest) == {f"gitops/plan/{c.name}" for c in fleet.clusters}
    assert set(latest.values()) == {"failure"} or set(latest.values()) == {"failed"}
