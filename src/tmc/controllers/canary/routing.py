"""The objects a canary needs on the hub, as pure functions: the stable copy of the target, the stable and canary
Services, and the routing object with the weights (an Istio VirtualService or a Gateway API HTTPRoute, written as
Istio and Gateway API define them). All are ordinary objects in the target's namespace, placed like the workload,
so each syncer carries the same weights into its cluster.

Labels: with two Services the stable copy's pods take the target's selector labels with `-primary` appended to
their values (Flagger's way), so the canary Service (the target's selector) and the stable Service select disjoint
pods. Without a mesh, and with DestinationRule subsets, both sets of pods keep the target's labels, so the user's
Service selects all of them; the stable copy's selector adds `canary.tmc.kcp.io/role: stable` to tell its pods apart,
and for subsets the canary's pod template gets `canary.tmc.kcp.io/role: canary` (not part of the revision).

Per-cluster weights (a first wave of clusters) are per-target spec diffs on the routing object, kcp's
`experimental.spec-diff.workload.kcp.io/<key>` JSON Patch that the syncer applies downstream: the hub object carries
the weight of the clusters without a diff. The canary owns every spec diff on the routing object it manages (the
Placement divides no replicas there and removes only the replica diffs it wrote).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tmc.api.canary import CANARY_LABEL, KIND, ROLE_LABEL
from tmc.api.tmcgroup import API_VERSION
from tmc.controllers.canary.plan import Plan

REVISION_ANNOTATION = "canary.tmc.kcp.io/revision"
ISTIO = ("networking.istio.io", "virtualservices")
DESTINATION_RULES = ("networking.istio.io", "destinationrules")
GATEWAY = ("gateway.networking.k8s.io", "httproutes")


def owner(cd: dict[str, Any]) -> dict[str, Any]:
    md = cd["metadata"]
    return {"apiVersion": API_VERSION, "kind": KIND, "name": md["name"], "uid": md["uid"], "controller": True}


def _selector(target: dict[str, Any]) -> dict[str, str]:
    return dict(((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def primary_labels(plan: Plan, target: dict[str, Any]) -> dict[str, str]:
    """The stable copy's selector labels."""
    selector = _selector(target)
    if plan.mesh and not plan.subsets:
        return {k: f"{v}-primary" for k, v in selector.items()}
    return {**selector, ROLE_LABEL: "stable"}


def canary_labels(target: dict[str, Any]) -> dict[str, str]:
    """The canary subset's labels (DestinationRule subsets only): the target's selector and the canary role."""
    return {**_selector(target), ROLE_LABEL: "canary"}


def canary_template_labels(plan: Plan, target: dict[str, Any]) -> dict[str, str] | None:
    """The target's pod template labels with the canary role added, when subsets need it and it is missing."""
    if not plan.subsets:
        return None
    labels = dict((((target.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    if labels.get(ROLE_LABEL) == "canary":
        return None
    return {**labels, ROLE_LABEL: "canary"}


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
    """The stable and canary Services a mesh routes between (none without a mesh or with DestinationRule subsets:
    the user's Service is used)."""
    if not plan.mesh or plan.subsets:
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
    if plan.destination_rule is not None:
        _, stable, canary = plan.destination_rule
        return [
            {"destination": {"host": plan.service, "subset": stable}, "weight": 100 - weight},
            {"destination": {"host": plan.service, "subset": canary}, "weight": weight},
        ]
    return [
        {"destination": {"host": plan.stable_service}, "weight": 100 - weight},
        {"destination": {"host": plan.canary_service}, "weight": weight},
    ]


def _managed_routes(plan: Plan, http: list[dict[str, Any]]) -> list[int]:
    """The indexes of the VirtualService's http routes the canary manages: those named in
    spec.trafficRouting.istio.virtualService.routes, else the first."""
    names = set(plan.routes)
    return [i for i, route in enumerate(http) if (route.get("name") in names if names else i == 0)]


def _router_metadata(plan: Plan, cd: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The metadata of a routing object the canary creates: labelled with it and owned by it."""
    return {
        "name": name or plan.router_object,
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
    for i in _managed_routes(plan, http):
        http[i]["route"] = _istio_route(plan, weight)
    return out


def destination_rule(
    plan: Plan, cd: dict[str, Any], target: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """The DestinationRule with the stable and canary subsets (by pod labels) for the user's Service; subsets and
    fields the user wrote besides those two are kept."""
    assert plan.destination_rule is not None
    name, stable, canary = plan.destination_rule
    wanted = {stable: primary_labels(plan, target), canary: canary_labels(target)}
    if current is None:
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": _router_metadata(plan, cd, name),
            "spec": {"host": plan.service, "subsets": [{"name": n, "labels": v} for n, v in wanted.items()]},
        }
    out = copy.deepcopy(current)
    subsets = out.setdefault("spec", {}).setdefault("subsets", [])
    for subset in subsets:
        if subset.get("name") in wanted:
            subset["labels"] = wanted.pop(subset["name"])
    subsets.extend({"name": n, "labels": v} for n, v in wanted.items())
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
        http = spec.get("http") or []
        for i in _managed_routes(plan, http):
            http[i]["route"] = [{"destination": {"host": plan.service}}]
        return out
    rules = spec.get("rules") or []
    if rules:
        rules[0]["backendRefs"] = [{"group": "", "kind": "Service", "name": plan.service, "port": plan.port}]
    return out


def weight_diff(plan: Plan, body: dict[str, Any], weight: int) -> str:
    """A per-target spec diff (JSON Patch rooted at .spec) that gives the routing object `body` (as the controller
    writes it on the hub) the canary weight `weight` in that target's cluster."""
    spec = body.get("spec") or {}
    if plan.router == "istio":
        ops = [
            {"op": "replace", "path": f"/http/{i}/route", "value": _istio_route(plan, weight)}
            for i in _managed_routes(plan, spec.get("http") or [])
        ]
    else:
        ops = [{"op": "replace", "path": "/rules/0/backendRefs", "value": _backends(plan, weight)}]
    return orjson.dumps(ops).decode()


def _is_canary(plan: Plan, destination: dict[str, Any]) -> bool:
    if plan.destination_rule is not None:
        return destination.get("host") == plan.service and destination.get("subset") == plan.destination_rule[2]
    return destination.get("host") == plan.canary_service


def route_weight(plan: Plan, obj: dict[str, Any] | None) -> int | None:
    """The canary weight a routing object carries now (None when it has none)."""
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    if plan.router == "istio":
        for route in spec.get("http") or []:
            for dest in route.get("route") or []:
                if _is_canary(plan, dest.get("destination") or {}):
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
