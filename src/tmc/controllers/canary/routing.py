"""The objects a canary needs on the hub, as pure functions: the stable copy of the target, the stable and canary
Services, and the routing object with the weights (an Istio VirtualService or a Gateway API HTTPRoute, written as
Istio and Gateway API define them). All are ordinary objects in the target's namespace, placed like the workload,
so each syncer carries the same weights into its cluster.

Labels: with a mesh the stable copy's pods take the target's selector labels with `-primary` appended to their
values (Flagger's way), so the canary Service (the target's selector) and the stable Service select disjoint pods.
Without a mesh both sets of pods keep the target's labels, so the user's Service spreads requests over all of them
(the replica share); the stable copy's selector adds `canary.tmc.kcp.io/role: stable` to tell its pods apart.
"""

from __future__ import annotations

import copy
from typing import Any

from tmc.api.canary import CANARY_LABEL, KIND
from tmc.api.tmcgroup import API_VERSION
from tmc.controllers.canary.plan import Plan

ROLE_LABEL = "canary.tmc.kcp.io/role"
REVISION_ANNOTATION = "canary.tmc.kcp.io/revision"
ISTIO = ("networking.istio.io", "virtualservices")
GATEWAY = ("gateway.networking.k8s.io", "httproutes")


def owner(cd: dict[str, Any]) -> dict[str, Any]:
    md = cd["metadata"]
    return {"apiVersion": API_VERSION, "kind": KIND, "name": md["name"], "uid": md["uid"], "controller": True}


def _selector(target: dict[str, Any]) -> dict[str, str]:
    return dict(((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def primary_labels(plan: Plan, target: dict[str, Any]) -> dict[str, str]:
    """The stable copy's selector labels."""
    selector = _selector(target)
    if plan.mesh:
        return {k: f"{v}-primary" for k, v in selector.items()}
    return {**selector, ROLE_LABEL: "stable"}


def stable_copy(
    plan: Plan, cd: dict[str, Any], target: dict[str, Any], template: dict[str, Any], revision: str, replicas: int
) -> dict[str, Any]:
    """`<target>-primary`: the target's spec with `template` (a revision that passed) and its own pod labels."""
    md = target.get("metadata") or {}
    spec = copy.deepcopy(target.get("spec") or {})
    selector = primary_labels(plan, target)
    tpl = copy.deepcopy(template)
    tpl.setdefault("metadata", {})
    tpl["metadata"]["labels"] = {**(tpl["metadata"].get("labels") or {}), **selector}
    spec.update(replicas=replicas, selector={"matchLabels": selector}, template=tpl)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": plan.stable,
            "namespace": plan.namespace,
            # The target's labels, so a Placement's workloadSelector that picks the target picks its copy too.
            "labels": {**(md.get("labels") or {}), CANARY_LABEL: plan.name},
            "annotations": {REVISION_ANNOTATION: revision},
            "ownerReferences": [owner(cd)],
        },
        "spec": spec,
    }


def _ports(plan: Plan, service: dict[str, Any] | None) -> list[dict[str, Any]]:
    ports = ((service or {}).get("spec") or {}).get("ports")
    if ports:
        return [{k: v for k, v in p.items() if k != "nodePort"} for p in ports]
    return [{"name": "http", "port": plan.port, "targetPort": plan.port}]


def services(
    plan: Plan, cd: dict[str, Any], target: dict[str, Any], main: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The stable and canary Services a mesh routes between (none without a mesh: the user's Service is used)."""
    if not plan.mesh:
        return []
    labels = {**((target.get("metadata") or {}).get("labels") or {}), CANARY_LABEL: plan.name}
    out = []
    for name, selector in (
        (plan.stable_service, primary_labels(plan, target)),
        (plan.canary_service, _selector(target)),
    ):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": plan.namespace,
                    "labels": labels,
                    "ownerReferences": [owner(cd)],
                },
                "spec": {"selector": selector, "ports": _ports(plan, main)},
            }
        )
    return out


def _istio_route(plan: Plan, weight: int) -> list[dict[str, Any]]:
    return [
        {"destination": {"host": plan.stable_service}, "weight": 100 - weight},
        {"destination": {"host": plan.canary_service}, "weight": weight},
    ]


def _router_metadata(plan: Plan, cd: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a routing object the canary creates: labelled with it and owned by it."""
    return {
        "name": plan.router_object,
        "namespace": plan.namespace,
        "labels": {CANARY_LABEL: plan.name},
        "ownerReferences": [owner(cd)],
    }


def virtual_service(plan: Plan, cd: dict[str, Any], current: dict[str, Any] | None, weight: int) -> dict[str, Any]:
    """The VirtualService with the managed routes (spec.trafficRouting.istio.virtualService.routes, default the
    first http route) sending `weight` % to the canary Service and the rest to the stable one. Anything else the
    user wrote in it is kept."""
    if current is None:
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": _router_metadata(plan, cd),
            "spec": {"hosts": [plan.service], "http": [{"name": "primary", "route": _istio_route(plan, weight)}]},
        }
    out = copy.deepcopy(current)
    spec = out.setdefault("spec", {})
    http = spec.setdefault("http", [])
    if not http:
        http.append({"name": "primary", "route": []})
    names = set(plan.routes)
    for i, route in enumerate(http):
        if (names and route.get("name") in names) or (not names and i == 0):
            route["route"] = _istio_route(plan, weight)
    return out


def _backends(plan: Plan, weight: int) -> list[dict[str, Any]]:
    return [
        {"group": "", "kind": "Service", "name": plan.stable_service, "port": plan.port, "weight": 100 - weight},
        {"group": "", "kind": "Service", "name": plan.canary_service, "port": plan.port, "weight": weight},
    ]


def http_route(plan: Plan, cd: dict[str, Any], current: dict[str, Any] | None, weight: int) -> dict[str, Any]:
    """The HTTPRoute whose first rule's backendRefs are the stable and canary Services with the weights; created
    bound to the Service (GAMMA's mesh binding) when missing."""
    if current is None:
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": _router_metadata(plan, cd),
            "spec": {
                "parentRefs": [{"group": "", "kind": "Service", "name": plan.service, "port": plan.port}],
                "rules": [{"backendRefs": _backends(plan, weight)}],
            },
        }
    out = copy.deepcopy(current)
    rules = out.setdefault("spec", {}).setdefault("rules", [])
    if not rules:
        rules.append({})
    rules[0]["backendRefs"] = _backends(plan, weight)
    return out


def released(plan: Plan, current: dict[str, Any]) -> dict[str, Any]:
    """The routing object as it was before the canary took it over: the managed routes (or the first rule) send
    everything to the user's Service."""
    out = copy.deepcopy(current)
    spec = out.setdefault("spec", {})
    if plan.router == "istio":
        names = set(plan.routes)
        for i, route in enumerate(spec.get("http") or []):
            if (names and route.get("name") in names) or (not names and i == 0):
                route["route"] = [{"destination": {"host": plan.service}}]
        return out
    rules = spec.get("rules") or []
    if rules:
        rules[0]["backendRefs"] = [{"group": "", "kind": "Service", "name": plan.service, "port": plan.port}]
    return out


def route_weight(plan: Plan, obj: dict[str, Any] | None) -> int | None:
    """The canary weight a routing object carries now (None when it has none)."""
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    if plan.router == "istio":
        for route in spec.get("http") or []:
            for dest in route.get("route") or []:
                if (dest.get("destination") or {}).get("host") == plan.canary_service:
                    return int(dest.get("weight") or 0)
        return None
    for rule in spec.get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") == plan.canary_service:
                return int(ref.get("weight", 1))
    return None


def canary_replicas(plan: Plan, replicas: int, weight: int, active: bool) -> int:
    """The target's (canary's) spec.replicas. With a mesh it runs at full size while active (the router sets the
    share); without, enough pods beside the full-size stable copy that its share of all pods is `weight` %."""
    if not active:
        return 0
    if plan.mesh:
        return replicas
    if weight <= 0:
        return 0
    if weight >= 100:
        return replicas
    return max(1, round(replicas * weight / (100 - weight)))
