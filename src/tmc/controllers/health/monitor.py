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
from dataclasses import dataclass, field
from typing import Any

from tmc.api.workload import CONDITION_HEALTHY, CONDITION_HEARTBEAT_HEALTHY, SYNC_TARGETS
from tmc.apimachinery.conditions import find, is_true
from tmc.apimachinery.meta import parse_time
from tmc.controllers.synctarget.heartbeat import syncer_health
from tmc.observability import catalogue, exposition, fleet_metrics, health
from tmc.observability.catalogue import HUB
from tmc.observability.exposition import label_value
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


@dataclass(frozen=True)
class _Facts:
    """What one SyncTarget revision says, whatever the time: read once per revision, not once per scrape."""

    rev: int
    name: str
    verdict: ComponentHealth | None  # from its Healthy condition; None when the controller has not set one yet
    last_heartbeat: float | None
    connected: bool


@dataclass
class _Source:
    store: Store
    checks: Callable[[], Iterable[Check]]
    threshold: float
    facts: dict[str, _Facts] = field(default_factory=dict)  # SyncTarget storage key -> its latest facts


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
        known, source.facts = source.facts, {}
        for entry in source.store.list(SYNC_TARGETS.key_prefix(None)):
            facts = known.get(entry.key)
            if facts is None or facts.rev != entry.rev:
                facts = _read(entry.rev, entry.obj)
            source.facts[entry.key] = facts
            if facts.name in seen:  # the same name in two workspaces: series are per name, the first one counts
                continue
            seen.add(facts.name)
            verdict = facts.verdict
            if verdict is None:
                verdict = syncer_health(facts.name, entry.obj.get("status") or {}, now, source.threshold)
            age = -1.0 if facts.last_heartbeat is None else max(0.0, now - facts.last_heartbeat)
            yield _Target(facts.name, verdict, age, facts.connected)

    # Exposition lines (observability/exposition.py: a fleet has thousands of these series).

    def component_samples(self) -> Iterator[str]:
        name = COMPONENT_HEALTH.name
        for c in self.components():
            yield f'{name}{{component="{label_value(c.component)}"}} {float(c.value)!r}\n'

    def heartbeat_age_samples(self) -> Iterator[str]:
        name = fleet_metrics.HEARTBEAT_AGE.name
        for source in list(self._sources):
            for target in self._targets(source):
                yield f'{name}{{cluster="{label_value(target.name)}"}} {round(target.heartbeat_age, 3)!r}\n'

    def connection_samples(self) -> Iterator[str]:
        name = fleet_metrics.CONNECTIONS.name
        for source in list(self._sources):
            for target in self._targets(source):
                cluster = label_value(target.name)
                up = 1.0 if target.connected else 0.0
                yield f'{name}{{cluster="{cluster}",status="connected"}} {up!r}\n'
                yield f'{name}{{cluster="{cluster}",status="disconnected"}} {1.0 - up!r}\n'


def _read(rev: int, obj: dict[str, Any]) -> _Facts:
    name = str(obj["metadata"].get("name", ""))
    status = obj.get("status") or {}
    conditions = status.get("conditions")
    healthy = find(conditions, CONDITION_HEALTHY)
    verdict = None
    if healthy is not None:
        verdict = ComponentHealth(
            health.SYNCER_PREFIX + name,
            health.HEALTHY if healthy.get("status") == "True" else health.UNHEALTHY,
            str(healthy.get("reason") or ""),
            str(healthy.get("message") or ""),
        )
    last = parse_time(status.get("lastSyncerHeartbeatTime"))
    return _Facts(rev, name, verdict, last, is_true(conditions, CONDITION_HEARTBEAT_HEALTHY))


# One per process, exposed on import like the module-level metrics; hubs attach their store to it.
MONITOR = HealthMonitor()
exposition.register(COMPONENT_HEALTH.name, MONITOR.component_samples)
exposition.register(fleet_metrics.HEARTBEAT_AGE.name, MONITOR.heartbeat_age_samples)
exposition.register(fleet_metrics.CONNECTIONS.name, MONITOR.connection_samples)
