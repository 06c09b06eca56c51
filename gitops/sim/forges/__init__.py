"""Stand-ins for the forges' pull-request APIs: GitHub, GitLab and Gitea over real local HTTP.

A tool of the simulator (design section 6): the demo shows plan comments and drift pull
requests with no network, and the forge adapters are tested against these servers rather than
against mocks. Each class serves the subset of its platform's documented REST API that
``gitops.forge`` uses, with the platform's own paths, JSON shapes, status codes and error
bodies: pagination (``Link``, GitLab's ``X-Next-Page``, and Gitea's ``X-Total-Count`` alone
where Gitea sends no ``Link``), ETags and 304s, token checks (401), the "already exists"
refusal, length limits, rate-limit headers. Where the real platform would answer differently,
the stand-in is wrong; it is never laxer than the platform.

One module a platform over a shared ``base`` (server, repositories, pages, ETags, request log);
``FakeGitea`` extends ``FakeGitHub`` and overrides only what Gitea does otherwise, as
``gitops.forge.gitea.Gitea`` extends ``gitops.forge.github.GitHub``.

In-process::

    with FakeGitHub(repos=("acme/fleet",), token="t0ken") as gh:
        gh.url                       # the REST root to give the client
        gh.pulls(), gh.comments(1), gh.statuses(sha)   # in-memory state, for assertions
        gh.merge(1)                  # what a human pressing "Merge" does
        gh.requests                  # every request: method, raw path, query, JSON, headers

It holds no git: a pull request's head sha comes from ``set_branch``, from ``resolve_sha``,
or is derived from the branch name. It never reads the network beyond 127.0.0.1.
"""

from gitops.sim.forges.base import FakeComment, FakeForge, FakePull, FakeStatus, RecordedRequest
from gitops.sim.forges.gitea import FakeGitea
from gitops.sim.forges.github import FakeGitHub
from gitops.sim.forges.gitlab import FakeGitLab

__all__ = [
    "FakeComment",
    "FakeForge",
    "FakeGitHub",
    "FakeGitLab",
    "FakeGitea",
    "FakePull",
    "FakeStatus",
    "RecordedRequest",
]
