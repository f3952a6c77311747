"""Where a simulated Service's requests go: Istio VirtualService/DestinationRule weights and subsets, Gateway API
HTTPRoute backend weights, or an equal share per Ready pod."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.sim.routing import backends, fqdn, index_mesh

NS = "shop"


def service(name: str, selector: dict[str, str], namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": {"sim.tmc.io/request-rate": "10"}},
        "spec": {"selector": selector},
    }


def pod(name: str, labels: dict[str, str], ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels, "uid": name}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "kind": "Pod",
        "metadata": md,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


STABLE = {"app": "web", "version": "stable"}
CANARY = {"app": "web", "version": "canary"}
PODS = [
    pod("s1", STABLE),
    pod("s2", STABLE),
    pod("s3", STABLE, ready=False),
    pod("s4", STABLE, deleting=True),
    pod("c1", CANARY),
]
WEB = service("web", {"app": "web"})


def virtual_service(route: list[dict[str, Any]], hosts: tuple[str, ...] = ("web",), **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"hosts": list(hosts), "http": [*extra.get("before", []), {"route": route}]},
    }


DESTINATION_RULE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "web", "namespace": NS},
    "spec": {
        "host": "web",
        "subsets": [{"name": "stable", "labels": {"version": "stable"}}, {"name": "canary", "labels": CANARY}],
    },
}


def names(pods: list[Any]) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods)


def split(mesh_kind: str, result: tuple[str, list[Any]]) -> list[tuple[str, str, float, list[str]]]:
    kind, found = result
    assert kind == mesh_kind
    return [(b.service, b.subset, round(b.weight, 6), names(b.pods)) for b in found]


def test_without_a_mesh_every_ready_pod_gets_an_equal_share() -> None:
    mesh = index_mesh([WEB], PODS)
    assert split("none", backends(mesh, WEB)) == [("web", "", 1.0, ["c1", "s1", "s2"])]


def test_istio_weights_and_destination_rule_subsets_decide_the_split() -> None:
    vs = virtual_service(
        [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 80},
            {"destination": {"host": "web.shop.svc.cluster.local", "subset": "canary"}, "weight": 20},
        ]
    )
    mesh = index_mesh([WEB], PODS, [vs], [DESTINATION_RULE])
    assert split("istio", backends(mesh, WEB)) == [
        ("web", "stable", 0.8, ["s1", "s2"]),
        ("web", "canary", 0.2, ["c1"]),
    ]


def test_istio_routes_to_other_services_by_host_and_skips_conditional_routes() -> None:
    stable, canary = service("web-stable", STABLE), service("web-canary", CANARY)
    header_route = {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [{"destination": {"host": "x"}}]}
    vs = virtual_service(
        [
            {"destination": {"host": "web-stable"}, "weight": 90},
            {"destination": {"host": "web-canary.shop.svc"}, "weight": 10},
        ],
        hosts=("web.shop.svc.cluster.local",),
        before=[header_route],
    )
    mesh = index_mesh([WEB, stable, canary], PODS, [vs])
    assert split("istio", backends(mesh, WEB)) == [
        ("web-stable", "", 0.9, ["s1", "s2"]),
        ("web-canary", "", 0.1, ["c1"]),
    ]


def test_one_destination_takes_everything_and_an_undefined_subset_has_no_pods() -> None:
    mesh = index_mesh([WEB], PODS, [virtual_service([{"destination": {"host": "web", "subset": "canary"}}])])
    assert split("istio", backends(mesh, WEB)) == [("web", "canary", 1.0, [])]  # no DestinationRule: 503s
    mesh = index_mesh([WEB], PODS, [virtual_service([{"destination": {"host": "web"}, "weight": 0}])])
    assert split("istio", backends(mesh, WEB)) == [("web", "", 1.0, ["c1", "s1", "s2"])]


def test_a_virtual_service_for_another_host_or_only_conditional_routes_does_not_apply() -> None:
    other = virtual_service([{"destination": {"host": "web"}}], hosts=("api",))
    conditional = virtual_service([])
    conditional["spec"]["http"] = [{"match": [{"uri": {"prefix": "/v2"}}], "route": [{"destination": {"host": "x"}}]}]
    mesh = index_mesh([WEB], PODS, [other, conditional])
    assert backends(mesh, WEB)[0] == "none"


def http_route(parent: dict[str, Any] | None, refs: list[dict[str, Any]], matches: Any = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"backendRefs": refs}
    if matches is not None:
        rule["matches"] = matches
    spec: dict[str, Any] = {"rules": [rule]}
    if parent is not None:
        spec["parentRefs"] = [parent]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": NS},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "parent",
    [
        {"group": "", "kind": "Service", "name": "web", "port": 80},  # GAMMA: the route is bound to the Service
        None,  # no parent: the Service is the route's first backend
    ],
)
def test_gateway_api_backend_weights_decide_the_split(parent: dict[str, Any] | None) -> None:
    stable, canary = service("web-stable", STABLE), service("web-canary", CANARY)
    first = "web" if parent is None else "web-stable"
    route = http_route(
        parent,
        [{"name": first, "port": 80, "weight": 90}, {"name": "web-canary", "port": 80, "weight": 10}],
        matches=[{"path": {"type": "PathPrefix", "value": "/"}}],
    )
    mesh = index_mesh([WEB, stable, canary], PODS, http_routes=[route])
    expected_first = ["c1", "s1", "s2"] if parent is None else ["s1", "s2"]
    assert split("gateway-api", backends(mesh, WEB)) == [
        (first, "", 0.9, expected_first),
        ("web-canary", "", 0.1, ["c1"]),
    ]


def test_gateway_api_weights_default_to_one_and_routes_with_conditions_do_not_apply() -> None:
    stable, canary = service("web-stable", STABLE), service("web-canary", CANARY)
    parent = {"kind": "Service", "name": "web"}
    even = http_route(parent, [{"name": "web-stable"}, {"name": "web-canary"}])
    mesh = index_mesh([WEB, stable, canary], PODS, http_routes=[even])
    assert [round(b.weight, 6) for b in backends(mesh, WEB)[1]] == [0.5, 0.5]
    by_header = http_route(parent, [{"name": "web-canary"}], matches=[{"headers": [{"name": "x", "value": "1"}]}])
    assert backends(index_mesh([WEB, canary], PODS, http_routes=[by_header]), WEB)[0] == "none"


def test_istio_takes_precedence_over_gateway_api() -> None:
    vs = virtual_service([{"destination": {"host": "web"}}])
    route = http_route({"kind": "Service", "name": "web"}, [{"name": "web-canary"}])
    assert backends(index_mesh([WEB], PODS, [vs], http_routes=[route]), WEB)[0] == "istio"


def test_hosts_are_compared_fully_qualified_relative_to_the_naming_object() -> None:
    assert fqdn("web", "shop") == "web.shop.svc.cluster.local"
    assert fqdn("web.shop", "other") == "web.shop"  # not a Service host: taken as written
    assert fqdn("web.shop.svc", "other") == "web.shop.svc.cluster.local"
    assert fqdn("Web.Shop.svc.cluster.local.", "x") == "web.shop.svc.cluster.local"
    assert fqdn("example.com", "shop") == "example.com"
