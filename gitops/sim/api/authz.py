"""Authentication and RBAC authorization, as the kube-apiserver does them, for the simulator.

Tool layer (``gitops.sim.api``), called by the HTTP server (``handler.py``) before it serves a
request, and usable on its own: the pure functions (``rule_allows``, ``allows``,
``forbidden``) evaluate RBAC objects given as plain dicts, which is how the deploy tests check
manifests rendered by kustomize. It reads Roles, ClusterRoles, RoleBindings,
ClusterRoleBindings and ServiceAccounts from the store and never writes any object.

Who a request is (authentication):

* the simulator's admin bearer token (the one in every kubeconfig it writes) or the token of a
  workload cluster's admin (``sim-<cluster>``, in the ``<cluster>-kubeconfig`` Secrets the
  world seeds): a privileged user (group ``system:masters``), never checked against RBAC;
* no credentials at all: 401 Unauthorized, as a server run with ``--anonymous-auth=false``,
  except on the paths of the default ``system:public-info-viewer`` role (``/healthz``,
  ``/livez``, ``/readyz``, ``/version``), which ``system:anonymous`` may read. kubectl sends
  its token only over https, hence the simulator's https kubeconfigs;
* a ServiceAccount token the simulator minted (the TokenRequest subresource, ``POST
  .../namespaces/<ns>/serviceaccounts/<name>/token``, which ``kubectl create token`` calls; or
  ``Authorizer.mint``): the user ``system:serviceaccount:<ns>:<name>`` in the groups
  ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and ``system:authenticated``.
  Such a token is valid only in the cluster that minted it and only while its ServiceAccount
  exists; it does not expire;
* any other bearer token: 401 Unauthorized.

Impersonation (``Impersonate-User``, ``Impersonate-Group``: ``kubectl --as``/``--as-group``)
is allowed only to a caller granted ``impersonate`` on ``users``, ``groups`` or
``serviceaccounts`` (the admin always is); the request is then authorized as the
impersonated user, held to RBAC unless one of its groups is ``system:masters``.

What a ServiceAccount may do (authorization) follows the RBAC authorizer: a request is allowed
when a rule of a Role or ClusterRole bound to the user allows it: ClusterRoleBindings grant
everywhere, RoleBindings (to a Role of their namespace or to a ClusterRole) only inside their
namespace. A rule matches on ``verbs``, ``apiGroups``, ``resources`` (``pods/eviction`` names a
subresource, ``*`` every resource and subresource, ``*/status`` one subresource of every
resource) and ``resourceNames`` (never matched by a request without a name: create, list and
watch, unless a list or watch selects ``metadata.name=``). A ClusterRole with an
``aggregationRule`` also has the rules of every ClusterRole its selectors match, as the
aggregation controller would write them. Non-resource requests (discovery, ``/version``,
``/healthz``) are allowed for every authenticated user, as the default ``system:discovery``
binding does. Anything else is 403 Forbidden with the server's wording.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gitops.sim.api.kinds import ApiError
from gitops.sim.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
)
from gitops.sim.api.selectors import selector_matches
from gitops.sim.api.store import Store

Obj = dict[str, Any]

SA_PREFIX = "system:serviceaccount:"
ALL = "*"
TOKEN_PREFIX = "gitops-sim-sa."
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
# Paths anyone may read without credentials: the system:public-info-viewer ClusterRole's,
# served to anonymous requests as an AuthenticationConfiguration limited to them does.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
WORKLOAD_ADMIN_TOKEN = "sim-{cluster}"  # what seed.py writes into <cluster>-kubeconfig Secrets


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user; ``privileged`` ones (the simulator's admin) skip RBAC."""

    name: str
    groups: tuple[str, ...] = ()
    privileged: bool = False


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a ServiceAccount's token authenticates as."""
    return UserInfo(
        f"{SA_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as the RBAC authorizer sees it.

    ``resource`` is "" for a non-resource request (then ``path`` says which). ``namespace`` is
    "" for cluster-scoped resources and for requests across all namespaces; ``name`` is "" for
    collections and creates.
    """

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @classmethod
    def from_audit(cls, line: Obj) -> Attributes:
        """The attributes of a request line of the simulator's audit log."""
        return cls(
            verb=line["verb"],
            group=line.get("group", ""),
            resource=line.get("resource", ""),
            subresource=line.get("subresource", ""),
            namespace=line.get("namespace", ""),
            name=line.get("name", ""),
            path=line.get("path", ""),
        )


@dataclass(frozen=True)
class Rbac:
    """The RBAC objects of one cluster (plain dicts as the API serves them)."""

    roles: tuple[Obj, ...] = ()
    cluster_roles: tuple[Obj, ...] = ()
    role_bindings: tuple[Obj, ...] = ()
    cluster_role_bindings: tuple[Obj, ...] = ()

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> Rbac:
        """Sort manifests (e.g. rendered by kustomize) by kind; other kinds are ignored."""
        by_kind: dict[str, list[Obj]] = {}
        for obj in objects:
            if (obj.get("apiVersion") or "").startswith(f"{ROLES.group}/"):
                by_kind.setdefault(str(obj.get("kind")), []).append(obj)
        return cls(
            tuple(by_kind.get("Role", ())),
            tuple(by_kind.get("ClusterRole", ())),
            tuple(by_kind.get("RoleBinding", ())),
            tuple(by_kind.get("ClusterRoleBinding", ())),
        )


@dataclass(frozen=True)
class Grant:
    """One rule that applies to a user, with the binding and role it comes through."""

    binding: str  # "RoleBinding ns/name" or "ClusterRoleBinding name"
    role: str  # "Role ns/name" or "ClusterRole name"
    namespace: str  # where the rule applies; "" = everywhere (a ClusterRoleBinding)
    rule: Obj


# --------------------------------------------------------------------------- pure evaluation


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and (ALL in values or wanted in values)


def resource_matches(rule: Obj, attrs: Attributes) -> bool:
    """The RBAC authorizer's ResourceMatches: exact, ``*``, or ``*/<subresource>``."""
    combined = attrs.combined_resource
    for entry in rule.get("resources") or []:
        if entry in (ALL, combined):
            return True
        if attrs.subresource and entry == f"*/{attrs.subresource}":
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """Whether one PolicyRule allows ``attrs`` (resource rules only; see the module doc)."""
    if not attrs.resource:
        return False
    if not _has(rule.get("verbs"), attrs.verb) or not _has(rule.get("apiGroups"), attrs.group):
        return False
    if not resource_matches(rule, attrs):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(attrs.name) and attrs.name in names)


def cluster_role_rules(rbac: Rbac, name: str) -> list[Obj]:
    """A ClusterRole's rules; for an aggregated one, those of the ClusterRoles it selects.

    As the aggregation controller does, an ``aggregationRule`` replaces the role's own rules
    with the rules of every other ClusterRole matched by one of its selectors (one level: the
    matched roles' own ``rules``).
    """
    role = next((r for r in rbac.cluster_roles if r["metadata"]["name"] == name), None)
    if role is None:
        return []
    aggregation = role.get("aggregationRule")
    if not aggregation:
        return list(role.get("rules") or [])
    selectors = aggregation.get("clusterRoleSelectors") or []
    rules: list[Obj] = []
    for other in sorted(rbac.cluster_roles, key=lambda r: str(r["metadata"]["name"])):
        labels = other["metadata"].get("labels") or {}
        if other is not role and any(selector_matches(s, labels) for s in selectors):
            rules.extend(other.get("rules") or [])
    return rules


def subject_matches(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    """Whether a binding's subject names ``user`` (ServiceAccount, User or Group)."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        # As upstream: a RoleBinding's ServiceAccount subject defaults to its own namespace.
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"{SA_PREFIX}{namespace}:{name}"
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    return False


def grants(rbac: Rbac, user: UserInfo, namespace: str = "") -> Iterator[Grant]:
    """Every rule that applies to ``user`` for a request in ``namespace`` ("" = cluster scope)."""
    for crb in rbac.cluster_role_bindings:
        ref = crb.get("roleRef") or {}
        if ref.get("kind") != "ClusterRole":
            continue
        if any(subject_matches(s, user, "") for s in crb.get("subjects") or []):
            for rule in cluster_role_rules(rbac, ref.get("name", "")):
                yield Grant(
                    f"ClusterRoleBinding {crb['metadata']['name']}",
                    f"ClusterRole {ref.get('name')}",
                    "",
                    rule,
                )
    if not namespace:
        return
    for rb in rbac.role_bindings:
        meta = rb["metadata"]
        if meta.get("namespace") != namespace:
            continue
        if not any(subject_matches(s, user, namespace) for s in rb.get("subjects") or []):
            continue
        ref = rb.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            rules = cluster_role_rules(rbac, ref.get("name", ""))
        elif ref.get("kind") == "Role":
            role = next(
                (
                    r
                    for r in rbac.roles
                    if r["metadata"]["name"] == ref.get("name")
                    and r["metadata"].get("namespace") == namespace
                ),
                None,
            )
            rules = list((role or {}).get("rules") or [])
        else:
            continue
        binding = f"RoleBinding {namespace}/{meta['name']}"
        role_name = f"{ref.get('kind')} " + (
            ref.get("name", "")
            if ref.get("kind") == "ClusterRole"
            else f"{namespace}/{ref.get('name')}"
        )
        for rule in rules:
            yield Grant(binding, role_name, namespace, rule)


def allows(rbac: Rbac, user: UserInfo, attrs: Attributes) -> bool:
    """Whether ``user`` may do ``attrs`` under ``rbac`` (privileged users always may)."""
    if user.privileged or not attrs.resource:
        return True
    return any(rule_allows(g.rule, attrs) for g in grants(rbac, user, attrs.namespace))


def anonymous() -> UserInfo:
    """Who a request without credentials is (allowed only on ``PUBLIC_PATHS``)."""
    return UserInfo(ANONYMOUS, ("system:unauthenticated",))


def is_public(path: str) -> bool:
    """Whether ``path`` (within a cluster's URL space) is open to anonymous requests."""
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def forbidden(user: UserInfo, attrs: Attributes) -> ApiError:
    """The 403 the kube-apiserver answers, worded as it words it."""
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user.name}" cannot {attrs.verb} resource '
        f'"{attrs.combined_resource}" in API group "{attrs.group}" {where}'
    )
    details: Obj = {"group": attrs.group, "kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    return ApiError(403, "Forbidden", message, details)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


# --------------------------------------------------------------------------- the server's side


class Authorizer:
    """Tokens the simulator minted, and RBAC read from the store at each request."""

    def __init__(self, store: Store, *, admin_tokens: dict[str, str]) -> None:
        self.store = store
        self.admin_tokens = dict(admin_tokens)
        self._tokens: dict[str, tuple[str, str, str]] = {}  # token -> (cluster, ns, name)
        self._lock = threading.Lock()

    def mint(self, cluster: str, namespace: str, name: str) -> str:
        """A new token for ServiceAccount ``namespace/name`` of ``cluster`` (404 if absent)."""
        self.store.get(cluster, SERVICEACCOUNTS, namespace, name, copy=False)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (cluster, namespace, name)
        return token

    def authenticate(self, authorization: str, cluster: str) -> UserInfo:
        """The user of an ``Authorization`` header value, for a request to ``cluster``."""
        if not authorization:
            raise unauthorized()  # as a server run with --anonymous-auth=false
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        if token in self.admin_tokens:
            return UserInfo(self.admin_tokens[token], (MASTERS, "system:authenticated"), True)
        if cluster and token == WORKLOAD_ADMIN_TOKEN.format(cluster=cluster):
            return UserInfo(f"{cluster}-admin", (MASTERS, "system:authenticated"), True)
        with self._lock:
            owner = self._tokens.get(token)
        if owner is None or owner[0] != cluster:
            raise unauthorized()
        _, namespace, name = owner
        try:
            self.store.get(cluster, SERVICEACCOUNTS, namespace, name, copy=False)
        except ApiError as err:
            if err.code == 404:  # a deleted ServiceAccount's tokens die with it
                raise unauthorized() from None
            raise
        return service_account_user(namespace, name)

    def impersonate(self, user: UserInfo, cluster: str, name: str, groups: list[str]) -> UserInfo:
        """The user ``user`` acts as through ``Impersonate-User``/``Impersonate-Group`` headers.

        As the apiserver's impersonation filter: each impersonated user, service account and
        group needs the ``impersonate`` verb on ``users``, ``serviceaccounts`` (in its
        namespace) or ``groups`` (403 otherwise); groups without a user are refused. The result
        is held to RBAC unless its groups include ``system:masters``.
        """
        if not name:
            if groups:
                raise ApiError.bad_request(f"requested {groups} without impersonating a user")
            return user
        checks: list[Attributes] = []
        if name.startswith(SA_PREFIX) and name.count(":") == 3:
            namespace, account = name.removeprefix(SA_PREFIX).split(":")
            checks.append(Attributes("impersonate", "", "serviceaccounts", "", namespace, account))
            implied = list(service_account_user(namespace, account).groups)
        else:
            checks.append(Attributes("impersonate", "", "users", "", "", name))
            implied = [] if name == ANONYMOUS else ["system:authenticated"]
        checks.extend(Attributes("impersonate", "", "groups", "", "", g) for g in groups)
        for attrs in checks:
            self.authorize(user, cluster, attrs)
        all_groups = tuple(dict.fromkeys([*groups, *implied]))
        return UserInfo(name, all_groups, privileged=MASTERS in all_groups)

    def rbac(self, cluster: str) -> Rbac:
        """The RBAC objects stored in ``cluster`` now."""

        def items(rtype: Any) -> tuple[Obj, ...]:
            return tuple(self.store.list(cluster, rtype, copy=False)[0])

        return Rbac(
            items(ROLES), items(CLUSTERROLES), items(ROLEBINDINGS), items(CLUSTERROLEBINDINGS)
        )

    def authorize(self, user: UserInfo, cluster: str, attrs: Attributes) -> None:
        """Raise the 403 Forbidden the server answers unless ``user`` may do ``attrs``."""
        if user.privileged or not attrs.resource:
            return
        if not allows(self.rbac(cluster), user, attrs):
            raise forbidden(user, attrs)
