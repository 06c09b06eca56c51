"""The latest page, shared between the reconcile loop (writer) and the HTTP threads (readers).

Shell-side holder of pure values: the loop calls :meth:`Board.publish` at the end of every pass
with what it holds; requests read the bytes rendered then, so a request never waits on a pass
and never does reconcile work. The timeline is the only memory carried from pass to pass.
"""

from __future__ import annotations

import json
import threading

from gitops.dashboard import svg, timeline, view


class Board:
    """The page's JSON and timeline SVG as of the last pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timeline: timeline.Timeline | None = None
        self._view: view.FleetView | None = None
        self._json = b""
        self._svg = svg.render(None).encode()
        self.generation = 0  # passes published (the page skips a re-render when unchanged)

    def publish(self, inputs: view.Inputs) -> view.FleetView:
        """Build the page for one pass and make it what requests see."""
        return self.show(view.build(inputs))

    def show(self, page: view.FleetView) -> view.FleetView:
        """Make ``page`` what requests see, and add it to the timeline."""
        with self._lock:
            self._timeline = timeline.record(self._timeline, page)
            drawn = self._timeline
            self.generation += 1
            doc = view.to_dict(page, drawn.to_dict() if drawn is not None else None)
            doc["generation"] = self.generation
            self._view = page
            self._json = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
            self._svg = svg.render(drawn).encode()
        return page

    @property
    def view(self) -> view.FleetView | None:
        with self._lock:
            return self._view

    def fleet_json(self) -> bytes:
        """``/api/v1/fleet``: the last page as JSON (a loading page before the first pass)."""
        with self._lock:
            if self._json:
                return self._json
        empty = view.to_dict(view.build(view.Inputs(now=0.0)))
        return json.dumps({**empty, "generation": 0}, separators=(",", ":")).encode()

    def timeline_svg(self) -> bytes:
        with self._lock:
            return self._svg
