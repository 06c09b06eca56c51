"""Fixtures of the forge adapter tests: the three stand-in servers and virtual time.

Every adapter talks real HTTP to a real local server (``gitops.sim.forges``); only time is
virtual: the rate limiters get a ``FakeClock`` whose ``sleep`` records the wait and advances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitops.forge import Forge, Limiters, connect
from gitops.sim.forges import FakeForge, FakeGitea, FakeGitHub, FakeGitLab, RecordedRequest

TOKEN = "s3cret-token"
SLUG = "acme/fleet"


@dataclass
class FakeClock:
    """Epoch seconds that move only when someone sleeps; every sleep is recorded."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiters(clock: FakeClock) -> Limiters:
    return Limiters(clock=clock, sleep=clock.sleep)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "forge-token"
    path.write_text(f"  {TOKEN}\n\n")
    return path


FAKES: dict[str, type[FakeForge]] = {
    "github": FakeGitHub,
    "gitlab": FakeGitLab,
    "gitea": FakeGitea,
}


def forge_url(kind: str, fake: FakeForge) -> str:
    """What an operator passes as --forge-url: GitHub's REST root, the others' instance."""
    return fake.url if kind == "github" else fake.root


Connect = Callable[..., Forge]


@pytest.fixture
def make_forge(
    limiters: Limiters, token_file: Path, clock: FakeClock
) -> Iterator[Callable[..., tuple[FakeForge, Forge]]]:
    """``make_forge(kind, **fake_options) -> (fake, forge)``: a started stand-in and its adapter."""
    started: list[tuple[FakeForge, Forge]] = []

    def make(kind: str, **options: object) -> tuple[FakeForge, Forge]:
        fake = FAKES[kind]([SLUG], token=TOKEN, clock=clock, **options)  # type: ignore[arg-type]
        fake.start()
        forge = connect(kind, forge_url(kind, fake), str(token_file), SLUG, limiters=limiters)
        started.append((fake, forge))
        return fake, forge

    yield make
    for fake, forge in started:
        forge.close()
        fake.stop()


@pytest.fixture(params=sorted(FAKES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def last(fake: FakeForge, method: str | None = None) -> RecordedRequest:
    """The last request the server saw (of ``method``)."""
    return [r for r in fake.requests if method in (None, r.method)][-1]


def calls(fake: FakeForge) -> list[tuple[str, str]]:
    """(method, path) of every request, in order."""
    return [(r.method, r.path) for r in fake.requests]
