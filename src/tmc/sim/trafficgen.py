"""The simulated cluster's request traffic: once a tick, every Service annotated `sim.tmc.io/request-rate` gets the
requests that arrived since the last tick, split over its routes and pods (tmc.sim.routing), answered as each pod's
annotations say (tmc.sim.traffic), and counted in Istio's metrics (tmc.sim.istiometrics).

A single key ("tick") re-queued every TICK_SECONDS; each tick reads the store directly (Services are skipped on
their raw bytes unless annotated, the other reads are per namespace that has traffic). The time covered is the
time since the previous tick, so a slow tick delays requests but never loses them."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.controllers.runtime import Result, requeue
from tmc.registry.service import ObjectService
from tmc.sim.base import PODS, SimController, SimSettings
from tmc.sim.istiometrics import METRICS, IstioMetrics, workload_of
from tmc.sim.routing import Mesh, backends, index_mesh
from tmc.sim.traffic import REQUEST_RATE, answer, behaviour, multinomial, poisson, request_rate, unanswered
from tmc.storage.interface import Event, Store

log = logging.getLogger("tmc.sim.traffic")

TICK = "tick"
TICK_SECONDS = 1.0
MAX_GAP_SECONDS = 10.0  # after a stall longer than this, the missed traffic is dropped, not dumped in one tick
SERVICES = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "services")
_ANNOTATION = REQUEST_RATE.encode()
# (group, plural) of the routing types; stored under one key whatever version wrote them.
_VIRTUAL_SERVICES = ("networking.istio.io", "virtualservices")
_DESTINATION_RULES = ("networking.istio.io", "destinationrules")
_HTTP_ROUTES = ("gateway.networking.k8s.io", "httproutes")


def _prefix(group: str, plural: str, cluster: str) -> str:
    return f"/registry/{group}/{plural}/{cluster}/"


class TrafficController(SimController):
    name = "sim-traffic"
    info: ResourceInfo = SERVICES
    workers = 1

    def __init__(
        self,
        store: Store,
        service: ObjectService,
        settings: SimSettings,
        metrics: IstioMetrics = METRICS,
        rng: random.Random | None = None,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        super().__init__(store, service, settings)
        self.metrics = metrics
        self.metrics.cluster = settings.name
        self.rng = rng or random.Random()
        self.tick_seconds = tick_seconds
        self._last: float | None = None
        self._warned: set[tuple[str, str]] = set()  # (pod uid, message) already logged

    def initial_keys(self) -> Iterable[str]:
        return (TICK,)

    def watch_prefixes(self) -> Iterable[str]:
        return ()  # driven by its clock alone

    def keys_for(self, event: Event) -> Iterable[str]:
        return ()

    async def reconcile(self, key: str) -> Result | None:
        now = time.monotonic()
        elapsed = 0.0 if self._last is None else min(now - self._last, MAX_GAP_SECONDS)
        self._last = now
        if elapsed > 0:
            self.tick(elapsed)
        return requeue(self.tick_seconds)

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        return [entry.obj for entry in self.store.list(prefix)]

    def tick(self, seconds: float) -> int:
        """Generate `seconds` of traffic for every annotated Service; returns the number of requests."""
        cluster = self.cluster
        annotated = [
            e.obj
            for e in self.store.list(SERVICES.key_prefix(cluster))
            if _ANNOTATION in e.raw and request_rate(e.obj) is not None
        ]
        if not annotated:
            return 0
        namespaces = {str(s["metadata"].get("namespace")) for s in annotated}
        routes = [*self._list(_prefix(*_VIRTUAL_SERVICES, cluster)), *self._list(_prefix(*_HTTP_ROUTES, cluster))]
        # Routes may send a Service's traffic to Services of other namespaces: read those namespaces too.
        for obj in routes:
            namespaces.add(str((obj.get("metadata") or {}).get("namespace")))
        services, pods = [], []
        for ns in sorted(namespaces):
            services += self._list(SERVICES.key_prefix(cluster, ns))
            pods += self._list(PODS.key_prefix(cluster, ns))
        mesh = index_mesh(
            services,
            pods,
            virtual_services=[r for r in routes if r.get("kind") == "VirtualService"],
            destination_rules=self._list(_prefix(*_DESTINATION_RULES, cluster)),
            http_routes=[r for r in routes if r.get("kind") == "HTTPRoute"],
        )
        return sum(self._serve(mesh, svc, seconds) for svc in annotated)

    def _serve(self, mesh: Mesh, service: dict[str, Any], seconds: float) -> int:
        rate = request_rate(service) or 0.0
        total = poisson(self.rng, rate * seconds)
        if total == 0:
            return 0
        _, split = backends(mesh, service)
        counts = multinomial(self.rng, total, [b.weight for b in split])
        for backend, n in zip(split, counts, strict=True):
            if n == 0:
                continue
            if not backend.pods:
                self.metrics.record(None, backend, "503", unanswered(n))
                continue
            share = 1.0 / len(backend.pods)
            for pod, k in zip(backend.pods, multinomial(self.rng, n, [share] * len(backend.pods)), strict=True):
                if k == 0:
                    continue
                how, problem = behaviour(pod, self.settings.name)
                if problem is not None:
                    self._warn(pod, problem)
                destination = workload_of(pod)
                for code, outcome in answer(self.rng, k, how).items():
                    self.metrics.record(destination, backend, code, outcome)
        return total

    def _warn(self, pod: Mapping[str, Any], problem: str) -> None:
        md = pod.get("metadata") or {}
        seen = (str(md.get("uid")), problem)
        if seen not in self._warned:
            if len(self._warned) > 10_000:  # pods come and go; forget old ones rather than grow forever
                self._warned.clear()
            self._warned.add(seen)
            log.warning(
                "pod annotation not understood; its default applies",
                extra={"namespace": md.get("namespace"), "pod": md.get("name"), "problem": problem},
            )
