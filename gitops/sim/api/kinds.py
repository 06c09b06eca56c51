"""The API machinery's vocabulary: a served kind (``ResourceType``) and the API's error.

Tool layer, the bottom of the simulator's API machinery (``gitops.sim.api``): the store, the
kinds served (``resources.py``), selectors, patches and the handler all speak in these terms.
It imports nothing of the simulator, so that every other API module can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


class ApiError(Exception):
    """An error the API server answers with a ``Status`` body (``status_body()``)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status_body(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details or {})
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"

    # Constructors for the errors the real API server returns, with its exact wording.

    @classmethod
    def not_found(cls, rtype: ResourceType, name: str) -> ApiError:
        return cls(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name))

    @classmethod
    def already_exists(cls, rtype: ResourceType, name: str) -> ApiError:
        return cls(
            409,
            "AlreadyExists",
            f'{rtype.qualified} "{name}" already exists',
            _details(rtype, name),
        )

    @classmethod
    def conflict(cls, rtype: ResourceType, name: str, why: str = "") -> ApiError:
        why = why or (
            "the object has been modified; please apply your changes to the latest version "
            "and try again"
        )
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {why}',
            _details(rtype, name),
        )

    @classmethod
    def invalid(
        cls, rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]
    ) -> ApiError:
        """422 Invalid; ``causes`` are (field, reason, message) such as
        ("spec.clusterName", "FieldValueRequired", "Required value")."""
        text = ", ".join(f"{f}: {m}" for f, _, m in causes)
        kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
        details = {
            "name": name,
            "group": rtype.group,
            "kind": rtype.kind,
            "causes": [{"field": f, "reason": r, "message": m} for f, r, m in causes],
        }
        if len(causes) > 1:
            text = f"[{text}]"
        return cls(422, "Invalid", f'{kind} "{name}" is invalid: {text}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def expired(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def forbidden(cls, message: str) -> ApiError:
        return cls(403, "Forbidden", message)

    @classmethod
    def internal(cls, message: str) -> ApiError:
        return cls(500, "InternalError", message)

    @classmethod
    def too_many_requests(cls, message: str, retry_after: int | None = None) -> ApiError:
        return cls(429, "TooManyRequests", message, retry_after=retry_after)

    @classmethod
    def method_not_allowed(cls, message: str) -> ApiError:
        return cls(405, "MethodNotAllowed", message)


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rtype.group, "kind": rtype.plural}


@dataclass(frozen=True)
class ResourceType:
    """One kind of object the simulator serves (see ``gitops.sim.api.resources.RESOURCES``)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # e.g. ("status",) or ("status", "eviction") for pods
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``plural.group``, or ``plural`` for the core group: the key of ``RESOURCES``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified(self) -> str:
        """How the API server names the resource in messages: ``pods``, ``machines.cluster.x-k8s.io``."""
        return self.key

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources
