"""Self reviews (`kubectl auth whoami`, `kubectl auth can-i`): create-only resources answered, never stored."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo, builtin_resource

SELF_SUBJECT_ACCESS_REVIEWS = builtin_resource(
    "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False
)
SELF_SUBJECT_REVIEWS = builtin_resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False)
REVIEW_RESOURCES = tuple(
    dataclasses.replace(r, verbs=("create",)) for r in (SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS)
)


def is_review(info: ResourceInfo) -> bool:
    return (info.group, info.plural) in {(r.group, r.plural) for r in REVIEW_RESOURCES}


def answer(info: ResourceInfo, body: Any, user: str, groups: tuple[str, ...]) -> dict[str, Any]:
    """The review with its status filled in for the caller."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a {info.kind} object")
    review = copy.deepcopy(body)
    review["apiVersion"] = info.api_version
    review["kind"] = info.kind
    review.setdefault("metadata", {})
    if info.plural == "selfsubjectreviews":
        review["status"] = {"userInfo": {"username": user, "groups": list(groups)}}
        return review
    spec = review.get("spec") or {}
    if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
        raise errors.invalid(
            info.kind,
            "",
            [
                {
                    "type": "FieldValueRequired",
                    "field": "spec",
                    "message": "Required value: exactly one of resourceAttributes or nonResourceAttributes must be set",
                }
            ],
            info.group,
        )
    # Authorization is not enforced yet (RBAC comes later): every authenticated identity may do everything.
    review["status"] = {"allowed": True, "reason": "authenticated identities are allowed everything on this hub"}
    return review
