"""The rollout timeline drawn as SVG on the server: no chart library, nothing fetched at run time.

Pure: ``render(timeline)`` returns the SVG text. One stepped line per wave, the share of its
nodes on target (0–100 %) against the time since the revision was first seen. Lines differ by
colour (Okabe–Ito, readable by the colour-blind) and by dash pattern, and each ends in its
wave's name and count, so nothing depends on colour alone; ``<title>`` and ``<desc>`` say the
same in words for screen readers. Every name is escaped: wave names come from git.
"""

from __future__ import annotations

from html import escape

from gitops.dashboard.timeline import Timeline
from gitops.fleet.quantities import format_duration

WIDTH, HEIGHT = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 150, 14, 30
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")


def _x(at: float, start: float, span: float) -> float:
    return _LEFT + (at - start) / span * (WIDTH - _LEFT - _RIGHT)


def _y(share: float) -> float:
    return _TOP + (1.0 - share) * (HEIGHT - _TOP - _BOTTOM)


def describe(timeline: Timeline | None) -> str:
    """The timeline in words (the SVG's ``desc``)."""
    if timeline is None or not timeline.samples:
        return "No rollout recorded yet."
    last = timeline.samples[-1].on_target
    parts = [
        f"wave {name}: {last[i]} of {timeline.replicas[i]} nodes on target"
        for i, name in enumerate(timeline.waves)
    ]
    return f"Revision {timeline.revision[:12]}: " + "; ".join(parts) + "."


def render(timeline: Timeline | None) -> str:
    """The SVG document of ``timeline`` (a placeholder when nothing is recorded yet)."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="tl-title tl-desc" class="timeline">'
        '<title id="tl-title">Nodes on target over time, one line per wave</title>'
        f'<desc id="tl-desc">{escape(describe(timeline))}</desc>'
    )
    body: list[str] = []
    for share in (0.0, 0.5, 1.0):
        y = _y(share)
        body.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{int(share * 100)}%</text>"
        )
    if timeline is None or not timeline.samples:
        body.append(
            f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" class="axis">'
            "no rollout recorded yet</text>"
        )
        return head + "".join(body) + "</svg>"
    start = timeline.samples[0].at
    end = max(timeline.until, timeline.samples[-1].at)
    span = max(end - start, 1e-9)
    body.append(
        f'<text x="{_LEFT}" y="{HEIGHT - 8}" class="axis">0s</text>'
        f'<text x="{WIDTH - _RIGHT}" y="{HEIGHT - 8}" text-anchor="end" class="axis">'
        f"{escape(format_duration(end - start))}</text>"
    )
    for i, name in enumerate(timeline.waves):
        total = timeline.replicas[i]
        points: list[str] = []
        previous: float | None = None
        for sample in timeline.samples:
            share = sample.on_target[i] / total if total else 1.0
            x = _x(sample.at, start, span)
            if previous is not None:
                points.append(f"{x:.1f},{_y(previous):.1f}")  # a step: hold, then move
            points.append(f"{x:.1f},{_y(share):.1f}")
            previous = share
        assert previous is not None
        points.append(f"{_x(end, start, span):.1f},{_y(previous):.1f}")
        colour, dash = COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)]
        last = timeline.samples[-1].on_target[i]
        label = f"{name} {last}/{total}"
        stroke = f'fill="none" stroke="{colour}" stroke-width="2.5"' + (
            f' stroke-dasharray="{dash}"' if dash else ""
        )
        key_y = _TOP + 4 + 18 * i  # the legend: the same stroke, then the name and count
        body.append(
            f'<g class="wave" data-wave="{escape(name)}"><title>{escape(label)}</title>'
            f'<polyline {stroke} points="{" ".join(points)}"/>'
            f'<line x1="{WIDTH - _RIGHT + 8}" y1="{key_y}" x2="{WIDTH - _RIGHT + 30}" '
            f'y2="{key_y}" {stroke}/>'
            f'<text x="{WIDTH - _RIGHT + 36}" y="{key_y + 4}" class="label">{escape(label)}</text>'
            "</g>"
        )
    return head + "".join(body) + "</svg>"
