"""The rollout timeline: what it keeps between passes, and the SVG drawn from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gitops.dashboard import svg, timeline
from gitops.dashboard.view import FleetView, Link, WaveView

SVG = "{http://www.w3.org/2000/svg}"


def page(revision: str, at: float, counts: dict[str, tuple[int, int]]) -> FleetView:
    waves = tuple(
        WaveView(i, name, "active", "rolling", (), on, total, i == 1, ())
        for i, (name, (on, total)) in enumerate(counts.items(), start=1)
    )
    return FleetView(
        fleet="f",
        status="in-progress",
        reason="",
        revision=Link(revision),
        fetched=revision,
        plan_id="p",
        plan=Link("p"),
        stalled="",
        updated=at,
        waves=waves,
        clusters=(),
        halt=None,
        phases=(),
    )


def test_samples_are_kept_only_when_the_numbers_move_and_the_lines_run_to_the_last_pass() -> None:
    t = None
    for at, on in ((0.0, 0), (1.0, 0), (2.0, 1), (3.0, 1), (4.0, 2)):
        t = timeline.record(t, page("r1", at, {"canary": (on, 2), "prod": (0, 4)}))
    t = timeline.record(t, page("r1", 9.0, {"canary": (2, 2), "prod": (0, 4)}))
    assert t is not None
    assert [(s.at, s.on_target) for s in t.samples] == [(0.0, (0, 0)), (2.0, (1, 0)), (4.0, (2, 0))]
    assert t.until == 9.0 and t.waves == ("canary", "prod") and t.replicas == (2, 4)


def test_a_new_revision_starts_a_new_timeline() -> None:
    t = timeline.record(None, page("r1", 0.0, {"canary": (2, 2)}))
    t = timeline.record(t, page("r2", 5.0, {"canary": (0, 2)}))
    assert t is not None and t.revision == "r2"
    assert [(s.at, s.on_target) for s in t.samples] == [(5.0, (0,))]


def test_a_long_rollout_stays_bounded() -> None:
    t = None
    for i in range(2000):
        t = timeline.record(t, page("r1", float(i), {"w": (i, 5000)}), limit=64)
    assert t is not None
    assert len(t.samples) <= 64
    assert t.samples[0].at == 0.0 and t.samples[-1].at == 1999.0  # both ends survive thinning


def test_the_svg_has_one_line_per_wave_and_a_legend_in_words() -> None:
    t = None
    for at, on in ((0.0, 0), (10.0, 1), (20.0, 2)):
        t = timeline.record(t, page("r" * 40, at, {"canary": (on, 2), "prod": (0, 4)}))
    root = ET.fromstring(svg.render(t))
    lines = root.findall(f"{SVG}g[@class='wave']")
    assert [g.get("data-wave") for g in lines] == ["canary", "prod"]
    assert [g.find(f"{SVG}text").text for g in lines] == ["canary 2/2", "prod 0/4"]  # type: ignore[union-attr]
    canary = lines[0].find(f"{SVG}polyline")
    assert canary is not None
    ys = [float(p.split(",")[1]) for p in canary.get("points", "").split()]
    assert ys[0] > ys[-1]  # from 0 % at the bottom to 100 % at the top
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "wave canary: 2 of 2 nodes on target" in (desc.text or "")


def test_names_from_git_are_escaped_in_the_svg() -> None:
    evil = 'w"><script>alert(1)</script>'
    t = timeline.record(None, page("r1", 0.0, {evil: (0, 1)}))
    text = svg.render(t)
    root = ET.fromstring(text)  # still well-formed
    assert root.find(f".//{SVG}script") is None and "<script>" not in text
    (wave,) = root.findall(f"{SVG}g[@class='wave']")
    assert wave.get("data-wave") == evil


def test_before_any_rollout_the_svg_says_so() -> None:
    root = ET.fromstring(svg.render(None))
    assert root.find(f"{SVG}g") is None
    assert any("no rollout recorded yet" in (t.text or "") for t in root.iter(f"{SVG}text"))
