"""The page in headless Chromium, fed a page whose every value carries HTML.

Names and reasons come from git and from the clusters; the page must show them as text. The
board is given a hand-made page (the view model's values, not a plan), so every field the page
renders can hold markup at once, including names the fleet loader would refuse today.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.controller.http import ControllerHTTP
from gitops.controller.metrics import Metrics
from gitops.dashboard.board import Board
from gitops.dashboard.view import (
    ClusterView,
    FindingView,
    FleetView,
    Halt,
    Link,
    Phase,
    PoolView,
    WaveView,
)
from tests.stories.dashboard.browser import CELLS, Chromium

# Slow by nature: every test here starts a headless Chromium.
pytestmark = pytest.mark.slow

EVIL = '<script>document.body.dataset.pwned="script"</script><img src=x onerror="document.body.dataset.pwned=\'img\'">'


def hostile() -> FleetView:
    cluster = "c" + EVIL
    pool = PoolView("p" + EVIL, "img" + EVIL, 1, 3, "halted", "halted", "why" + EVIL)
    finding = FindingView(
        "ImageMismatch", "p" + EVIL, "n" + EVIL, "osImage", "OS (v1)", "OS" + EVIL, "m" + EVIL, "fp"
    )
    return FleetView(
        fleet="fleet" + EVIL,
        status="halted",
        reason="reason" + EVIL,
        revision=Link("rev" + EVIL, "javascript:document.body.dataset.pwned='link'"),
        fetched="",
        plan_id="plan",
        plan=Link("plan" + EVIL, "https://forge.example/" + EVIL),
        stalled="stalled" + EVIL,
        updated=1_750_000_000.0,
        waves=(
            WaveView(
                1, "w" + EVIL, "stopped", "stopped", (cluster,), 1, 3, True, ("gate: " + EVIL,)
            ),
        ),
        clusters=(
            ClusterView(
                cluster,
                "w" + EVIL,
                (("ring", "canary" + EVIL),),
                "halted",
                "halted",
                "d" + EVIL,
                (pool,),
                (finding,),
                Link("#1" + EVIL, "javascript:document.body.dataset.pwned='pr'"),
            ),
        ),
        halt=Halt("halted", "halt" + EVIL, Link("#2" + EVIL, "https://forge.example/pull/2")),
        phases=(Phase("act", "stalled", "phase" + EVIL),),
    )


@pytest.fixture
def served() -> Iterator[str]:
    board = Board()
    board.show(hostile())
    http = ControllerHTTP(
        "127.0.0.1",
        0,
        metrics=Metrics(),
        healthy=lambda: (True, ""),
        ready=lambda: (True, ""),
        board=board,
    ).start()
    yield http.address
    http.stop()


def test_markup_in_any_value_is_shown_as_text(
    browser: Chromium, served: str, tmp_path: Path
) -> None:
    browser.open(served + "/")
    browser.until("document.body.dataset.generation === '1'", 30, "the page to render")
    (cell,) = browser.evaluate(CELLS)
    assert cell["cluster"] == "c" + EVIL and cell["pool"] == "p" + EVIL
    assert cell["image"] == "img" + EVIL and cell["detail"] == "why" + EVIL
    row = browser.evaluate("document.querySelector('#matrix tbody tr[data-cluster]').textContent")
    assert "c" + EVIL in row and "ring=canary" + EVIL in row  # the cluster's name and labels
    for selector, text in (
        ("#fleet-name", "fleet" + EVIL),
        ("#fleet-reason", "reason" + EVIL),
        ("#revision", "rev" + EVIL),
        ("#halt-reason", "halt" + EVIL),
        ("#stalled-reason", "stalled" + EVIL),
        ("#waves", "gate: " + EVIL),
        ("#drift", "observed OS" + EVIL),
        ("#phases", "phase" + EVIL),
    ):
        shown = browser.evaluate(f"document.querySelector({selector!r}).textContent")
        assert text in shown, selector
    # Nothing ran and nothing was added: one script (the page's own), no image, no handler.
    assert browser.evaluate("document.querySelectorAll('script').length") == 1
    assert (
        browser.evaluate("document.querySelectorAll('main img, header img, footer img').length")
        == 0
    )
    assert browser.evaluate("document.querySelectorAll('[onerror]').length") == 0
    assert browser.evaluate("document.body.dataset.pwned === undefined")
    # Only http(s) addresses become links: javascript: stays text.
    hrefs = browser.evaluate(
        "Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
    )
    assert not [h for h in hrefs if not (h.startswith(("http://", "https://", "/", "#")))]
    assert "https://forge.example/pull/2" in hrefs
    browser.screenshot(tmp_path / "hostile.png")


def test_the_page_has_landmarks_and_fits_a_narrow_window(browser: Chromium, served: str) -> None:
    browser.resize(360, 800)
    browser.open(served + "/")
    browser.until("document.body.dataset.generation === '1'", 30, "the page to render")
    landmarks = browser.evaluate(
        "['header', 'main', 'footer'].map(t => document.querySelectorAll('body > ' + t).length)"
    )
    assert landmarks == [1, 1, 1]
    assert (
        browser.evaluate("document.querySelectorAll('main section[aria-labelledby]').length") >= 5
    )
    assert browser.evaluate("document.documentElement.lang") == "en"
    # Every state is written out, not only coloured.
    assert (
        browser.evaluate("document.querySelector('#matrix td.pool .badge').textContent") == "halted"
    )
    # The page itself does not scroll sideways; only the matrix's own region may.
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
