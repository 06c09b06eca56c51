"""What the pull-request bot needs from a forge: one interface, one adapter per platform.

Adapter layer. ``gitops.bot`` speaks only this interface; ``gitops.forge.github``,
``gitops.forge.gitlab`` and ``gitops.forge.gitea`` translate it to each platform's documented
REST API (GitHub REST v3, GitLab v4, Gitea/Forgejo ``/api/v1``). Numbers are the platform's
user-facing numbers (GitHub and Gitea PR number, GitLab merge request iid). States are
normalised: pull requests are ``open``, ``closed`` or ``merged``; commit statuses are
``pending``, ``success``, ``failure`` or ``error``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

CommitState = Literal["pending", "success", "failure", "error"]
PullState = Literal["open", "closed", "merged"]


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    state: PullState
    head_ref: str  # the branch name
    head_sha: str
    base_ref: str
    url: str  # the page a human opens
    author: str = ""


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str = ""
    url: str = ""


@dataclass(frozen=True)
class CommitStatus:
    sha: str
    context: str
    state: CommitState
    description: str = ""
    target_url: str = ""


class Forge(ABC):
    """One repository on one forge (``owner/name``; a GitLab project path)."""

    #: short platform name: github, gitlab, gitea
    kind: str = ""
    #: the longest comment or PR body the platform accepts, in characters
    max_body_chars: int = 65_536

    # pull requests ---------------------------------------------------------------------

    @abstractmethod
    def pull_request(self, number: int) -> PullRequest:
        """One pull request; NotFound when there is none."""

    @abstractmethod
    def pull_requests(self, *, state: Literal["open", "all"] = "open") -> list[PullRequest]:
        """Every pull request of the repository in ``state`` (all pages)."""

    @abstractmethod
    def find_pull_request(self, head_ref: str) -> PullRequest | None:
        """The open pull request from branch ``head_ref`` of this repository, if any."""

    @abstractmethod
    def open_pull_request(
        self, *, head_ref: str, base_ref: str, title: str, body: str
    ) -> PullRequest:
        """Open a pull request; AlreadyExists when one is open for ``head_ref``."""

    @abstractmethod
    def update_pull_request(
        self, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest:
        """Edit the title or body of a pull request."""

    @abstractmethod
    def close_pull_request(self, number: int) -> PullRequest:
        """Close without merging."""

    # comments --------------------------------------------------------------------------

    @abstractmethod
    def comments(self, number: int) -> list[Comment]:
        """Every comment (note) on a pull request, oldest first (all pages)."""

    @abstractmethod
    def create_comment(self, number: int, body: str) -> Comment:
        """Add a comment to a pull request."""

    @abstractmethod
    def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        """Edit a comment in place."""

    # commit statuses -------------------------------------------------------------------

    @abstractmethod
    def set_commit_status(self, status: CommitStatus) -> None:
        """Create or replace the status of ``status.context`` on ``status.sha``."""

    @abstractmethod
    def commit_statuses(self, sha: str) -> list[CommitStatus]:
        """The latest status of every context on ``sha``."""

    # lifecycle -------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook; adapters holding connections override it
        """Release the adapter's connections; the adapter is not used afterwards."""

    def __enter__(self) -> Forge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
