"""The health monitor's pure parts: kube-apiserver's /livez /readyz /healthz rendering, the component rules and the
overall state, and the hub's monitor collector over a real store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.unit._scheduling_env import Env, rfc3339
from tmc.controllers.health.monitor import HealthMonitor
from tmc.observability import health
from tmc.observability.health import Check, ComponentHealth
from tmc.storage.health import store_checks

CHECKS = [Check("ping", True), Check("storage", True), Check("controller-placement", True)]
BROKEN = [Check("ping", True), Check("storage", False, "last commit failed: disk I/O error")]


def test_plain_get_is_ok() -> None:
    assert health.render("readyz", CHECKS, {}) == (200, "ok")


def test_verbose_lists_every_check_as_kube_apiserver_does() -> None:
    assert health.render("readyz", CHECKS, {"verbose": [""]}) == (
        200,
        "[+]ping ok\n[+]storage ok\n[+]controller-placement ok\nreadyz check passed\n",
    )


def test_failure_is_500_with_the_list_verbose_or_not_and_the_reason_withheld() -> None:
    want = "[+]ping ok\n[-]storage failed: reason withheld\nlivez check failed\n"
    assert health.render("livez", BROKEN, {}) == (500, want)
    assert health.render("livez", BROKEN, {"verbose": [""]}) == (500, want)


def test_exclude_skips_a_check_and_warns_about_unknown_names() -> None:
    status, body = health.render("readyz", BROKEN, {"verbose": [""], "exclude": ["storage", "etcd", "bogus"]})
    assert status == 200
    assert body == (
        "[+]ping ok\n[+]storage excluded: ok\n"
        'warn: some health checks cannot be excluded: no matches for "bogus","etcd"\n'
        "readyz check passed\n"
    )


def test_one_check() -> None:
    assert health.render_one(BROKEN, "ping") == (200, "ok")
    assert health.render_one(BROKEN, "storage") == (500, "internal server error: last commit failed: disk I/O error\n")
    assert health.render_one(BROKEN, "nope") is None


@pytest.mark.parametrize(
    ("kwargs", "state", "reason"),
    [
        ({"heartbeat_age": 5.0, "synced": 100, "failed": 10}, "healthy", "Healthy"),
        ({"heartbeat_age": None, "synced": 0, "failed": 0}, "unhealthy", "HeartbeatStale"),
        ({"heartbeat_age": 121.0, "synced": 10, "failed": 0}, "unhealthy", "HeartbeatStale"),
        ({"heartbeat_age": 121.0, "synced": 10, "failed": 0, "unreachable": "timed out"}, "unhealthy", "Unreachable"),
        ({"heartbeat_age": 1.0, "synced": 100, "failed": 11}, "unhealthy", "SyncFailures"),
        ({"heartbeat_age": 1.0, "synced": 0, "failed": 1}, "unhealthy", "SyncFailures"),
        # The member answered again: a fresh heartbeat wins over a stale report.
        ({"heartbeat_age": 1.0, "synced": 1, "failed": 0, "unreachable": "timed out"}, "healthy", "Healthy"),
    ],
)
def test_syncer_rules(kwargs: dict[str, Any], state: str, reason: str) -> None:
    verdict = health.syncer_health("eu-1", threshold=120.0, **kwargs)
    assert (verdict.component, verdict.state, verdict.reason) == ("syncer/eu-1", state, reason)


def _c(component: str, state: str) -> ComponentHealth:
    return ComponentHealth(component, state, "x")


@pytest.mark.parametrize(
    ("states", "want"),
    [
        ({"storage": "healthy", "syncer/a": "healthy", "syncer/b": "healthy"}, "healthy"),
        ({"storage": "healthy", "syncer/a": "unhealthy", "syncer/b": "healthy"}, "degraded"),
        ({"storage": "healthy", "syncer/a": "unhealthy", "syncer/b": "unhealthy"}, "unhealthy"),
        ({"storage": "unhealthy", "syncer/a": "healthy"}, "unhealthy"),
        ({"watch-cache": "degraded", "syncer/a": "healthy"}, "degraded"),
        ({"storage": "healthy"}, "healthy"),  # no syncers yet
    ],
)
def test_overall_state(states: dict[str, str], want: str) -> None:
    got = health.overall(_c(name, state) for name, state in states.items())
    assert got.component == "overall" and got.state == want
    assert got.value == {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}[want]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_monitor_collects_components_heartbeat_age_and_connections(tmp_path: Path) -> None:
    """Every metric of the collector changes with what the SyncTargets and checks say."""

    async def main() -> None:
        async with Env(tmp_path, heartbeat_threshold=30.0) as env:
            now = [time.time()]
            monitor = HealthMonitor(clock=lambda: now[0])
            registry = CollectorRegistry()
            registry.register(monitor)
            controllers_ok = [True]
            monitor.attach(
                env.store,
                lambda: [Check("controller-placement", controllers_ok[0], "not running")],
                30.0,
            )
            await env.target("a")
            await env.target("b")
            beat = rfc3339(now[0] - 3)
            for name in ("a", "b"):
                await env.heartbeat(name, extra={"lastSyncerHeartbeatTime": beat})

            def value(name: str, **labels: str) -> float | None:
                return _samples(registry).get((name, tuple(sorted(labels.items()))))

            assert value("tmc_syncer_heartbeat_age_seconds", cluster="a") == pytest.approx(3.0, abs=0.01)
            assert value("tmc_syncer_connections", cluster="a", status="connected") == 1.0
            assert value("tmc_syncer_connections", cluster="a", status="disconnected") == 0.0
            assert value("tmc_component_health", component="storage") == 1.0
            assert value("tmc_component_health", component="watch-cache") == 1.0
            assert value("tmc_component_health", component="syncer/a") == 1.0
            assert value("tmc_component_health", component="overall") == 1.0

            now[0] += 10
            assert value("tmc_syncer_heartbeat_age_seconds", cluster="a") == pytest.approx(13.0, abs=0.01)

            # One syncer goes silent: it turns unhealthy and disconnected, the system degraded.
            await env.heartbeat("a", ready=False)
            await env.until(lambda: value("tmc_component_health", component="syncer/a") == 0.0, "syncer/a unhealthy")
            assert value("tmc_syncer_connections", cluster="a", status="disconnected") == 1.0
            assert value("tmc_component_health", component="overall") == 0.5
            # Both silent: unhealthy.
            await env.heartbeat("b", ready=False)
            await env.until(lambda: value("tmc_component_health", component="overall") == 0.0, "overall unhealthy")
            # Back, then a hub component fails: unhealthy again.
            for name in ("a", "b"):
                await env.heartbeat(name)
            await env.until(lambda: value("tmc_component_health", component="overall") == 1.0, "overall healthy")
            controllers_ok[0] = False
            assert value("tmc_component_health", component="controller-placement") == 0.0
            assert value("tmc_component_health", component="overall") == 0.0
            monitor.detach(env.store)
            assert value("tmc_component_health", component="overall") == 1.0  # nothing left to judge
            assert value("tmc_syncer_heartbeat_age_seconds", cluster="a") is None

    asyncio.run(main())


def test_store_checks_follow_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            assert [(c.name, c.ok) for c in store_checks(env.store)] == [("storage", True), ("watch-cache", True)]
            store = env.store
            await store.close()
            checks = store_checks(store)
            assert [(c.name, c.ok) for c in checks] == [("storage", False), ("watch-cache", False)]
            assert checks[0].message == "store is closed"

    asyncio.run(main())
