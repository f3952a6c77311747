"""The hub's health monitor, computed at scrape time: `tmc_component_health` for the storage, the watch cache, each
controller, each syncer and the whole system (`overall`), and per SyncTarget `tmc_syncer_heartbeat_age_seconds` and
`tmc_syncer_connections`, read from SyncTarget status.

A syncer's state is its SyncTarget's `Healthy` condition, which the heartbeat controller keeps (it knows the time the
hub itself was stalled, which a scrape does not); a target the controller has not looked at yet is judged from its
status here. The rules are observability/health.py's. collect() reads the store's in-memory state, so it runs on the
hub's event loop, as the /metrics handler does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from tmc.api.workload import CONDITION_HEALTHY, CONDITION_HEARTBEAT_HEALTHY, SYNC_TARGETS
from tmc.apimachinery.conditions import find, is_true
from tmc.apimachinery.meta import parse_time
from tmc.controllers.synctarget.heartbeat import syncer_health
from tmc.observability import catalogue, fleet_metrics, health
from tmc.observability.catalogue import HUB
from tmc.observability.health import Check, ComponentHealth
from tmc.storage.health import store_checks
from tmc.storage.interface import Store

COMPONENT_HEALTH = catalogue.describe(
    "tmc_component_health",
    "gauge",
    "Health monitor state of a component: 1 healthy, 0.5 degraded, 0 unhealthy. Components: storage, watch-cache, "
    "controller-<name>, syncer/<SyncTarget> and overall (unhealthy when a hub component is or every syncer is, "
    "degraded when some syncers are).",
    ("component",),
    owners=(HUB,),
    promql='tmc_component_health{component="overall"} < 1',
)


@dataclass
class _Source:
    store: Store
    checks: Callable[[], Iterable[Check]]
    threshold: float


@dataclass(frozen=True)
class _Target:
    name: str
    verdict: ComponentHealth
    heartbeat_age: float
    connected: bool


class HealthMonitor:
    """One per process, registered with the Prometheus registry; a hub attaches its store, its controllers' checks
    and its heartbeat threshold."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._sources: list[_Source] = []

    def attach(self, store: Store, checks: Callable[[], Iterable[Check]], threshold: float) -> None:
        self._sources.append(_Source(store, checks, threshold))

    def detach(self, store: Store) -> None:
        self._sources = [s for s in self._sources if s.store is not store]

    def components(self) -> list[ComponentHealth]:
        """Every component's state, `overall` last."""
        hub: list[ComponentHealth] = []
        syncers: list[ComponentHealth] = []
        for source in list(self._sources):
            for check in [*store_checks(source.store), *source.checks()]:
                hub.append(health.from_check(check.name, check))
            syncers.extend(t.verdict for t in self._targets(source))
        return [*hub, *syncers, health.overall([*hub, *syncers])]

    def _targets(self, source: _Source) -> Iterator[_Target]:
        now = self.clock()
        seen: set[str] = set()
        for entry in source.store.list(SYNC_TARGETS.key_prefix(None)):
            obj = entry.obj
            name = str(obj["metadata"].get("name", ""))
            if name in seen:  # the same name in two workspaces: series are per name, the first one counts
                continue
            seen.add(name)
            status = obj.get("status") or {}
            conditions = status.get("conditions")
            healthy = find(conditions, CONDITION_HEALTHY)
            if healthy is None:
                verdict = syncer_health(name, status, now, source.threshold)
            else:
                ok = healthy.get("status") == "True"
                verdict = ComponentHealth(
                    health.SYNCER_PREFIX + name,
                    health.HEALTHY if ok else health.UNHEALTHY,
                    str(healthy.get("reason") or ""),
                    str(healthy.get("message") or ""),
                )
            last = parse_time(status.get("lastSyncerHeartbeatTime"))
            age = -1.0 if last is None else max(0.0, now - last)
            yield _Target(name, verdict, age, is_true(conditions, CONDITION_HEARTBEAT_HEALTHY))

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without this the registry would run a full collect to learn the names at registration. The syncer's
        # families of the same names are left out: a process that imports both (a test) must still register both.
        return [_families()[0]]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        component, age, connections = _families()
        for c in self.components():
            component.add_metric([c.component], c.value)
        for source in list(self._sources):
            for target in self._targets(source):
                age.add_metric([target.name], round(target.heartbeat_age, 3))
                connections.add_metric([target.name, "connected"], 1.0 if target.connected else 0.0)
                connections.add_metric([target.name, "disconnected"], 0.0 if target.connected else 1.0)
        yield from (component, age, connections)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return tuple(  # type: ignore[return-value]
        GaugeMetricFamily(doc.name, doc.meaning, labels=doc.labels)
        for doc in (COMPONENT_HEALTH, fleet_metrics.HEARTBEAT_AGE, fleet_metrics.CONNECTIONS)
    )


# One per process, registered on import like the module-level metrics; hubs attach their store to it.
MONITOR = HealthMonitor()
REGISTRY.register(MONITOR)
