"""What ``gitops demo --json FILE`` writes: the story's outcome as frozen dataclasses.

Demo layer, data only. Each act of the story fills its part (``dataclasses.replace``); a story
cut short by a failure keeps what it reached. ``to_json`` gives the documented camelCase keys
(a part not reached is left out, as the story never got there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Paths:
    """Where the story's repositories and logs are (``--keep`` keeps them)."""

    root: str
    remote: str
    clone: str
    controller_log: str
    audit: str


@dataclass(frozen=True)
class Injected:
    """One node the simulator patched by hand before the controller started."""

    kind: str
    cluster: str
    node: str


@dataclass(frozen=True)
class Bump:
    """The engineer's pull request moving the fleet to the next image, once merged."""

    pull: int
    revision: str


@dataclass(frozen=True)
class WindowShown:
    """The maintenance window the bump waited for: when it opened (epoch seconds), when the
    bump's first replacement was created, and whether the bot's plan comment said when."""

    name: str
    opens: float
    first_replacement: float
    comment_says_when: bool


@dataclass(frozen=True)
class Converged:
    """The fleet on the bumped revision, and how long the rollout in waves took."""

    revision: str
    seconds: float


@dataclass(frozen=True)
class Broken:
    """The pull request declaring an image that never boots, and the halt it caused."""

    pull: int
    revision: str
    cluster: str
    pool: str
    image: str
    halt: str
    cluster_status: Mapping[str, str]


@dataclass(frozen=True)
class Page:
    """What the controller's dashboard said of the fleet at the end (``/api/v1/fleet``)."""

    status: str
    revision: str
    revision_url: str


@dataclass(frozen=True)
class Pull:
    """A pull request on the fake forge."""

    number: int
    title: str
    head: str
    state: str


@dataclass(frozen=True)
class PoolOutcome:
    """A pool after the bump: its image, nodes on target, and when it converged."""

    cluster: str
    pool: str
    wave: str
    image: str
    replicas: int
    on_target: int
    converged: bool
    seconds: float | None


@dataclass(frozen=True)
class Summary:
    """The whole story's outcome; the fields after ``pulls`` are the run's own."""

    paths: Paths | None = None
    dashboard: str | None = None
    drift_injected: tuple[Injected, ...] | None = None
    drift_pulls: tuple[int, ...] | None = None
    drift_replacements: int | None = None
    bump: Bump | None = None
    window: WindowShown | None = None
    converged: Converged | None = None
    broken: Broken | None = None
    revert_pull: Pull | None = None
    status_commits: int | None = None
    pools: tuple[PoolOutcome, ...] | None = None
    pulls: tuple[Pull, ...] | None = None
    dashboard_page: Page | None = None
    ok: bool = False
    error: str | None = None
    seconds: float | None = None
    kept: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``--json FILE`` holds; parts the story did not reach are left out."""
        return {
            _camel(f.name): _json(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
