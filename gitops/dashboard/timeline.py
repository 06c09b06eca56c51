"""The rollout timeline: nodes on target per wave over time, for the fleet revision in force.

Pure: ``record`` takes the timeline so far and one pass's page and returns the next timeline;
the caller (``gitops.dashboard.board``) keeps it between passes. A new fleet revision starts a
new timeline. A pass whose numbers equal the last sample's adds nothing (an idle controller's
timeline does not grow), and past ``MAX_SAMPLES`` the older half is thinned to every other
sample, so memory stays bounded however long a rollout takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops.dashboard.view import FleetView

MAX_SAMPLES = 512


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the epoch, the controller's clock at the end of a pass
    on_target: tuple[int, ...]  # per wave, in wave order


@dataclass(frozen=True)
class Timeline:
    revision: str
    waves: tuple[str, ...]
    replicas: tuple[int, ...]  # per wave: the most nodes it can have on target
    samples: tuple[Sample, ...] = ()
    until: float = 0.0  # the last pass seen: the lines run on to here

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "waves": [
                {
                    "name": name,
                    "replicas": total,
                    "onTarget": [[s.at, s.on_target[i]] for s in self.samples],
                }
                for i, (name, total) in enumerate(zip(self.waves, self.replicas, strict=True))
            ],
            "until": self.until,
        }


def _thin(samples: tuple[Sample, ...], limit: int) -> tuple[Sample, ...]:
    if len(samples) <= limit:
        return samples
    half = len(samples) // 2
    return samples[:half:2] + samples[half:]


def record(timeline: Timeline | None, view: FleetView, limit: int = MAX_SAMPLES) -> Timeline | None:
    """The timeline after ``view``'s pass (None while no plan exists)."""
    if not view.waves or not view.revision.text:
        return timeline
    names = tuple(w.name for w in view.waves)
    replicas = tuple(w.replicas for w in view.waves)
    counts = tuple(w.on_target for w in view.waves)
    if timeline is None or timeline.revision != view.revision.text or timeline.waves != names:
        timeline = Timeline(view.revision.text, names, replicas)
    sample = Sample(view.updated, counts)
    samples = timeline.samples
    if not samples or samples[-1].on_target != counts:
        samples = _thin((*samples, sample), limit)
    return Timeline(
        timeline.revision,
        names,
        tuple(max(a, b) for a, b in zip(timeline.replicas, replicas, strict=True)),
        samples,
        max(timeline.until, view.updated),
    )
