"""SelfSubjectAccessReview and SelfSubjectRulesReview: ``kubectl auth can-i`` for the simulator.

Tool layer (``gitops.sim.api``), called by the HTTP server for a create of
``authorization.k8s.io/v1`` ``selfsubjectaccessreviews`` or ``selfsubjectrulesreviews``. The
answer comes from the same RBAC authorizer (``authz.py``) that guards every request, for the
requesting (or impersonated) user, so ``can-i`` never disagrees with what the server then does.
Reviews are answered, never stored; this module must never write to the store.
"""

from __future__ import annotations

from typing import Any

from gitops.sim.api import authz
from gitops.sim.api.kinds import ApiError, ResourceType
from gitops.sim.api.resources import SELFSUBJECTACCESSREVIEWS

Obj = dict[str, Any]
_ALL_RULES: Obj = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}


def answer(
    authorizer: authz.Authorizer, user: authz.UserInfo, cluster: str, rtype: ResourceType, body: Obj
) -> Obj:
    """The review ``body`` with its ``status`` filled in for ``user`` in ``cluster``."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise ApiError.invalid(rtype, "", [("spec", "FieldValueRequired", "Required value")])
    out: Obj = {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
    }
    if rtype is SELFSUBJECTACCESSREVIEWS:
        out["status"] = _access(authorizer, user, cluster, rtype, spec)
    else:
        out["status"] = _rules(authorizer, user, cluster, str(spec.get("namespace") or ""))
    return out


def _access(
    authorizer: authz.Authorizer,
    user: authz.UserInfo,
    cluster: str,
    rtype: ResourceType,
    spec: Obj,
) -> Obj:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict) == isinstance(non_resource, dict):
        # The apiserver's wording for a review naming neither or both kinds of attributes.
        raise ApiError.invalid(
            rtype,
            "",
            [
                (
                    "spec.resourceAttributes",
                    "FieldValueInvalid",
                    'Invalid value: "null": exactly one of nonResourceAttributes or '
                    "resourceAttributes must be specified",
                )
            ],
        )
    if not isinstance(resource, dict):
        assert isinstance(non_resource, dict)
        path = str(non_resource.get("path") or "")
        allowed = user.name != authz.ANONYMOUS or authz.is_public(path)
        return {"allowed": allowed}
    attrs = authz.Attributes(
        verb=str(resource.get("verb") or ""),
        group=str(resource.get("group") or ""),
        resource=str(resource.get("resource") or ""),
        subresource=str(resource.get("subresource") or ""),
        namespace=str(resource.get("namespace") or ""),
        name=str(resource.get("name") or ""),
    )
    if user.privileged:
        return {"allowed": True}
    rbac = authorizer.rbac(cluster)
    for grant in authz.grants(rbac, user, attrs.namespace):
        if authz.rule_allows(grant.rule, attrs):
            where = f" in namespace {grant.namespace!r}" if grant.namespace else ""
            return {
                "allowed": True,
                "reason": f'RBAC: allowed by {grant.binding} of {grant.role} to User "{user.name}"'
                + where,
            }
    return {"allowed": False}


def _rules(authorizer: authz.Authorizer, user: authz.UserInfo, cluster: str, ns: str) -> Obj:
    if user.privileged:
        return {
            "resourceRules": [_ALL_RULES],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    rules = []
    for grant in authz.grants(authorizer.rbac(cluster), user, ns):
        rule = {
            k: grant.rule[k]
            for k in ("verbs", "apiGroups", "resources", "resourceNames")
            if grant.rule.get(k)
        }
        if rule.get("resources") and rule not in rules:
            rules.append(rule)
    public = [f"{p}" for p in authz.PUBLIC_PATHS] + [f"{p}/*" for p in authz.PUBLIC_PATHS]
    urls = sorted(public) if user.name == authz.ANONYMOUS else ["*"]
    return {
        "resourceRules": rules,
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": urls}],
        "incomplete": False,
    }
