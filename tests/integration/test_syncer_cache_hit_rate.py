"""tmc_cache_hit_rate_percent of a whole syncer running against an in-process hub and simulated member cluster: a
syncer that only syncs answers every read from its caches; an orphan found downstream takes confirmation GETs, and
the rate says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tmc.api.workload import DOWNSTREAM_CLUSTER_LABEL, sync_error_annotation
from tmc.client import KubeClient, load_kubeconfig
from tmc.protocol.keys import sync_target_key
from tmc.server.hub import Hub, ServerConfig
from tmc.server.member import SimCluster, SimConfig
from tmc.syncer import engine
from tmc.syncer.agent import Syncer, SyncerConfig

NAME = "cache-rate"  # the metrics' cluster label; unique to this test in the shared registry
KEY = sync_target_key("root", NAME)
SYNC = {f"state.workload.kcp.io/{KEY}": "Sync"}


def reads(result: str) -> float:
    return REGISTRY.get_sample_value("tmc_syncer_cache_reads_total", {"cluster": NAME, "result": result}) or 0.0


def not_found_gets() -> float:
    """GETs the syncer sent that were answered 404, to either side."""
    return sum(
        REGISTRY.get_sample_value(
            "tmc_syncer_requests_total", {"cluster": NAME, "endpoint": endpoint, "method": "GET", "code": "404"}
        )
        or 0.0
        for endpoint in ("hub", "downstream")
    )


def hit_rate() -> float | None:
    return REGISTRY.get_sample_value("tmc_cache_hit_rate_percent", {"cache_type": "informer"})


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(tmp_path: Path, name: str) -> AsyncIterator[tuple[Hub, SimCluster, KubeClient, KubeClient, Syncer]]:
    """An in-process hub and simulated member cluster, clients for both, and a syncer of ConfigMaps (not started)."""
    hub = Hub(ServerConfig(data_dir=str(tmp_path / "hub"), secure_port=0))
    await hub.start()
    sim = SimCluster(SimConfig(name="m1", data_dir=str(tmp_path / "sims"), nodes=1))
    await sim.start()
    hub_config = load_kubeconfig(hub.kubeconfig_path)
    upstream = KubeClient(hub_config, base_url=hub_config.base_url)
    member = KubeClient(load_kubeconfig(sim.kubeconfig_path))
    syncer = Syncer(
        SyncerConfig(
            sync_target_name=name,
            kubeconfig=hub.kubeconfig_path,
            downstream_kubeconfig=sim.kubeconfig_path,
            metrics_port=0,
            health_port=0,
            resource_types="configmaps",
            heartbeat_period=1.0,
            concurrency=2,
        )
    )
    try:
        yield hub, sim, upstream, member, syncer
    finally:
        await syncer.stop()
        await upstream.close()
        await member.close()
        await sim.stop()  # a second stop of a stopped simulated cluster does nothing
        await hub.stop()


def test_hit_rate_is_100_while_syncing_and_drops_with_confirmation_gets(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, NAME) as (_, _, upstream, member, syncer):
            await upstream.create("/clusters/root/api/v1/namespaces", {"metadata": {"name": "shop", "labels": SYNC}})
            for name in ("a", "b"):
                body = {"metadata": {"name": name, "labels": SYNC}, "data": {"k": name}}
                await upstream.create("/clusters/root/api/v1/namespaces/shop/configmaps", body)
            assert hit_rate() is None  # no series before the first read

            await syncer.start()
            selector = {"labelSelector": f"{DOWNSTREAM_CLUSTER_LABEL}={KEY}"}

            async def synced_names() -> set[str]:
                items, _ = await member.list_all("/api/v1/configmaps", selector)
                return {str(i["metadata"]["name"]) for i in items}

            async def both_synced() -> bool:
                return await synced_names() == {"a", "b"}

            await until(both_synced, "both ConfigMaps in the member cluster")
            # Creating and re-checking the copies needed no GET: every read came from the caches.
            assert reads("hit") >= 4 and reads("miss") == 0, (reads("hit"), reads("miss"))
            assert hit_rate() == 100.0

            # A copy of this target's with no upstream object: only the hub can say it is gone, so the syncer asks
            # it (a GET through the virtual workspace, a miss) before deleting the copy; the copy's DELETED event
            # brings the key back, and the hub is asked again. Every such GET is a miss (and here all answer 404).
            gets_before = not_found_gets()
            down_ns = (await member.list_all("/api/v1/configmaps", selector))[0][0]["metadata"]["namespace"]
            orphan = {"metadata": {"name": "orphan", "labels": {DOWNSTREAM_CLUSTER_LABEL: KEY}}, "data": {}}
            await member.create(f"/api/v1/namespaces/{down_ns}/configmaps", orphan)

            async def orphan_gone() -> bool:
                return "orphan" not in await synced_names()

            await until(orphan_gone, "the orphan deleted")
            hits, misses = reads("hit"), reads("miss")
            assert misses >= 2 and misses == not_found_gets() - gets_before, (hits, misses, not_found_gets())
            rate = hit_rate()
            assert rate is not None and rate < 100.0
            assert abs(rate - 100.0 * hits / (hits + misses)) < 1e-9, (rate, hits, misses)

    asyncio.run(main())


def scraped_value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for parsed in family.samples:
            if parsed.name == name and parsed.labels == labels:
                return float(parsed.value)
    return None


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_writes_a_member_cannot_take_are_counted_as_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The member cluster goes away: the next downstream write fails, and the syncer's error counters, failed
    objects and the object's `sync.tmc.kcp.io/error.<key>` annotation on the hub say so (error_type `timeout`)."""
    name = "errors-seen"
    monkeypatch.setattr(engine, "FAILED_AFTER", 0.0)  # failed at the first failure, not after 10 s of them

    async def main() -> None:
        sync = {f"state.workload.kcp.io/{sync_target_key('root', name)}": "Sync"}
        async with running(tmp_path, name) as (_, sim, upstream, _, syncer):
            await upstream.create("/clusters/root/api/v1/namespaces", {"metadata": {"name": "shop", "labels": sync}})
            await syncer.start()
            assert syncer.engine is not None
            await until(lambda: _true(syncer.engine is not None and syncer.engine.ready.is_set()), "the syncer")
            await sim.stop()
            body = {"metadata": {"name": "late", "labels": sync}, "data": {"k": "v"}}
            await upstream.create("/clusters/root/api/v1/namespaces/shop/configmaps", body)
            failed = {"cluster": name, "resource": "configmaps", "error_type": "timeout"}
            await until(lambda: _true(sample("tmc_syncer_sync_errors_total", **failed) >= 1), "a sync error")
            assert sample("syncer_errors_total", sync_target=name, error_type="timeout") >= 1
            syncer.engine.observe_state()
            failing = {"sync_target": name, "resource_type": "configmaps", "status": "failed"}
            assert sample("syncer_resources_total", **failing) == 1
            scraped = (await syncer._metrics(None)).body  # type: ignore[arg-type]  # what /metrics answers
            assert isinstance(scraped, bytes)
            # Every key failing counts (the namespace's own copy may be failing too), as the engine holds them.
            shown = scraped_value(scraped.decode(), "tmc_syncer_objects", cluster=name, state="failed")
            assert shown == len(syncer.engine.failed) >= 1, (shown, syncer.engine.failed)

            # The persistent error is published on the hub object for `sync status` (docs/syncer.md).
            error = sync_error_annotation(sync_target_key("root", name))

            async def published() -> bool:
                cm = await upstream.get("/clusters/root/api/v1/namespaces/shop/configmaps/late")
                return str((cm["metadata"].get("annotations") or {}).get(error, "")).startswith("timeout: ")

            await until(published, "the error on the hub object")

    asyncio.run(main())


async def _true(value: bool) -> bool:
    return value
