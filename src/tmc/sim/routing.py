"""Where a simulated Service's requests go, as pure functions over the objects of its cluster.

The rule, first match wins:
1. Istio: a VirtualService (any namespace) one of whose `hosts` is the Service's host. Its first http route without
   `match` conditions (the simulated requests carry no headers) splits by the `weight` of each `route[]` destination;
   a destination names a Service host and optionally a `subset`, whose labels come from the DestinationRule for that
   host and narrow the Service's pods. `gateways` is not looked at: the traffic follows the route as mesh traffic
   and gateway traffic would.
2. Gateway API: an HTTPRoute in the Service's namespace that names the Service as a parent (`kind: Service`, the
   GAMMA mesh binding) or as the first backendRef of its first rule. Its first rule that matches every request
   (no `matches`, or a match on path prefix `/` only) splits by `backendRefs[].weight` (default 1); each backend is
   a Service with its own pods.
3. No mesh: the Service's own Ready pods, each an equal share.

Hosts are compared fully qualified (`name.namespace.svc.cluster.local`); a short host (no dot) is relative to the
namespace of the object that names it, as Istio reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tmc.sim.podstatus import is_ready

DOMAIN = "svc.cluster.local"
Obj = Mapping[str, Any]


@dataclass
class Backend:
    """One destination of a split: a Service (and subset), its share of the requests, its Ready pods."""

    service: str
    namespace: str
    weight: float  # share of the Service's requests, the backends' shares summing to 1
    pods: list[Obj] = field(default_factory=list)
    subset: str = ""

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.{DOMAIN}"


@dataclass
class Mesh:
    """The routing objects and Services of one cluster, by namespace."""

    services: dict[tuple[str, str], Obj] = field(default_factory=dict)  # (namespace, name) -> Service
    pods: dict[str, list[Obj]] = field(default_factory=dict)  # namespace -> pods
    virtual_services: list[Obj] = field(default_factory=list)
    destination_rules: list[Obj] = field(default_factory=list)
    http_routes: list[Obj] = field(default_factory=list)


def _md(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def fqdn(host: str, namespace: str) -> str:
    """A host fully qualified as Istio reads it: a short name is a Service of `namespace` (`web` ->
    `web.shop.svc.cluster.local`), `web.shop.svc` gets the cluster domain, anything else is taken as written."""
    parts = host.strip().lower().rstrip(".").split(".")
    if len(parts) == 1:
        return f"{parts[0]}.{namespace}.{DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{parts[0]}.{parts[1]}.{DOMAIN}"
    return ".".join(parts)


def service_of_host(host: str) -> tuple[str, str] | None:
    """(namespace, name) of a fully qualified cluster-local Service host, None for any other host."""
    suffix = "." + DOMAIN
    if not host.endswith(suffix):
        return None
    parts = host[: -len(suffix)].split(".")
    return (parts[1], parts[0]) if len(parts) == 2 else None


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A Service-style equality selector; an empty or missing one selects nothing (as for Services)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def ready_pods(mesh: Mesh, namespace: str, name: str, subset_labels: Mapping[str, Any] | None = None) -> list[Obj]:
    """The Ready, not terminating pods the Service selects (narrowed by a subset's labels)."""
    service = mesh.services.get((namespace, name))
    if service is None:
        return []
    selector = _spec(service).get("selector") or {}
    out = []
    for pod in mesh.pods.get(namespace, ()):
        labels = _md(pod).get("labels") or {}
        if not selects(selector, labels) or _md(pod).get("deletionTimestamp") or not is_ready(pod):
            continue
        if subset_labels and not all(labels.get(k) == v for k, v in subset_labels.items()):
            continue
        out.append(pod)
    return out


def _normalize(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else [0.0 for _ in weights]


# ------------------------------------------------------------------ Istio


def _matching_virtual_service(mesh: Mesh, host: str) -> Obj | None:
    for vs in sorted(mesh.virtual_services, key=lambda o: (str(_md(o).get("creationTimestamp", "")), _key(o))):
        namespace = str(_md(vs).get("namespace") or "default")
        if any(fqdn(str(h), namespace) == host for h in _spec(vs).get("hosts") or () if isinstance(h, str)):
            return vs
    return None


def _key(obj: Obj) -> str:
    return f"{_md(obj).get('namespace')}/{_md(obj).get('name')}"


def _subset_labels(mesh: Mesh, host: str, subset: str) -> Mapping[str, Any] | None:
    """The labels of `subset` of the DestinationRule for `host`; None when no rule defines it."""
    for dr in mesh.destination_rules:
        namespace = str(_md(dr).get("namespace") or "default")
        if fqdn(str(_spec(dr).get("host") or ""), namespace) != host:
            continue
        for entry in _spec(dr).get("subsets") or ():
            if isinstance(entry, Mapping) and entry.get("name") == subset:
                labels = entry.get("labels") or {}
                return labels if isinstance(labels, Mapping) else {}
    return None


def istio_backends(mesh: Mesh, vs: Obj) -> list[Backend] | None:
    """The split of a VirtualService's first unconditional http route; None when it has none."""
    namespace = str(_md(vs).get("namespace") or "default")
    route = next(
        (r for r in _spec(vs).get("http") or () if isinstance(r, Mapping) and not r.get("match")),
        None,
    )
    if route is None:
        return None
    destinations = [d for d in route.get("route") or () if isinstance(d, Mapping)]
    if not destinations:
        return None
    # One destination takes everything; several split by weight, a missing weight counting as 0 unless none is set.
    if len(destinations) == 1 or all(d.get("weight") is None for d in destinations):
        raw = [1.0] * len(destinations)
    else:
        raw = [float(d.get("weight") or 0) for d in destinations]
    out = []
    for dest, weight in zip(destinations, _normalize(raw), strict=True):
        target = dest.get("destination") or {}
        host = fqdn(str(target.get("host") or ""), namespace)
        found = service_of_host(host)
        svc_ns, svc_name = found if found is not None else (namespace, host)
        subset = str(target.get("subset") or "")
        if subset:
            labels = _subset_labels(mesh, host, subset)
            # An undefined subset has no endpoints: its share is answered 503, as Envoy does.
            pods = [] if labels is None else ready_pods(mesh, svc_ns, svc_name, labels)
        else:
            pods = ready_pods(mesh, svc_ns, svc_name)
        out.append(Backend(svc_name, svc_ns, weight, pods, subset))
    return out


# ------------------------------------------------------------------ Gateway API


def _is_service_ref(ref: Mapping[str, Any]) -> bool:
    return str(ref.get("group") or "") in ("", "core") and str(ref.get("kind") or "Service") == "Service"


def _matches_everything(rule: Mapping[str, Any]) -> bool:
    matches = [m for m in rule.get("matches") or () if isinstance(m, Mapping)]
    if not matches:
        return True
    for match in matches:
        if set(match) - {"path"}:
            continue
        path = match.get("path") or {}
        if not path or (path.get("type", "PathPrefix") == "PathPrefix" and path.get("value", "/") == "/"):
            return True
    return False


def _route_binds(route: Obj, namespace: str, name: str) -> bool:
    spec = _spec(route)
    for parent in spec.get("parentRefs") or ():
        if (
            isinstance(parent, Mapping)
            and str(parent.get("kind") or "") == "Service"
            and str(parent.get("group") or "") in ("", "core")
            and parent.get("name") == name
            and str(parent.get("namespace") or namespace) == namespace
        ):
            return True
    rules = [r for r in spec.get("rules") or () if isinstance(r, Mapping)]
    refs = [r for r in (rules[0].get("backendRefs") or ()) if isinstance(r, Mapping)] if rules else []
    return (
        bool(refs)
        and _is_service_ref(refs[0])
        and refs[0].get("name") == name
        and (str(refs[0].get("namespace") or namespace) == namespace)
    )


def gateway_backends(mesh: Mesh, route: Obj) -> list[Backend] | None:
    namespace = str(_md(route).get("namespace") or "default")
    rule = next(
        (r for r in _spec(route).get("rules") or () if isinstance(r, Mapping) and _matches_everything(r)),
        None,
    )
    if rule is None:
        return None
    refs = [r for r in rule.get("backendRefs") or () if isinstance(r, Mapping) and _is_service_ref(r)]
    if not refs:
        return None
    weights = _normalize([float(r.get("weight", 1) if r.get("weight") is not None else 1) for r in refs])
    out = []
    for ref, weight in zip(refs, weights, strict=True):
        svc_ns = str(ref.get("namespace") or namespace)
        svc_name = str(ref.get("name") or "")
        out.append(Backend(svc_name, svc_ns, weight, ready_pods(mesh, svc_ns, svc_name)))
    return out


def _matching_route(mesh: Mesh, namespace: str, name: str) -> Obj | None:
    candidates = [r for r in mesh.http_routes if str(_md(r).get("namespace") or "default") == namespace]
    candidates.sort(key=lambda o: (str(_md(o).get("creationTimestamp", "")), _key(o)))
    return next((r for r in candidates if _route_binds(r, namespace, name)), None)


# ------------------------------------------------------------------ the rule


def backends(mesh: Mesh, service: Obj) -> tuple[str, list[Backend]]:
    """How the annotated Service's requests split: ("istio" | "gateway-api" | "none", backends)."""
    namespace = str(_md(service).get("namespace") or "default")
    name = str(_md(service).get("name"))
    vs = _matching_virtual_service(mesh, fqdn(name, namespace))
    if vs is not None:
        split = istio_backends(mesh, vs)
        if split is not None:
            return "istio", split
    route = _matching_route(mesh, namespace, name)
    if route is not None:
        split = gateway_backends(mesh, route)
        if split is not None:
            return "gateway-api", split
    return "none", [Backend(name, namespace, 1.0, ready_pods(mesh, namespace, name))]


def index_mesh(
    services: Iterable[Obj],
    pods: Iterable[Obj],
    virtual_services: Iterable[Obj] = (),
    destination_rules: Iterable[Obj] = (),
    http_routes: Iterable[Obj] = (),
) -> Mesh:
    mesh = Mesh(
        virtual_services=list(virtual_services),
        destination_rules=list(destination_rules),
        http_routes=list(http_routes),
    )
    for svc in services:
        mesh.services[(str(_md(svc).get("namespace") or "default"), str(_md(svc).get("name")))] = svc
    for pod in pods:
        mesh.pods.setdefault(str(_md(pod).get("namespace") or "default"), []).append(pod)
    return mesh
