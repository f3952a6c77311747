"""The hub's /metrics with a large fleet: 1,000 SyncTargets that heartbeat (with capacity, allocatable, allocated
and syncer counts, so every per-cluster series exists) and 10,000 workloads placed on them (state labels for one
or two targets each, so tmc_workload_sync_status has a series per target and resource). Goal (issue 10): a scrape
in <= 50 ms; the body size is reported. Timed from the client, over the hub's TLS, as Prometheus scrapes it; the
first scrape after the writes is reported apart (tmc_workload_sync_status caches what each object says per
revision, so the first scrape after many writes reads every object)."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from benchmarks.report import Row, row
from benchmarks.servers import Server, start_hub
from tmc.protocol.keys import sync_target_key

TARGETS = 1_000
WORKLOADS = 10_000
NAMESPACES = 100
SCRAPES = 20
GOAL_MS = 50.0
ST_PATH = "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets"


def _session(hub: Server) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=hub.ssl_context(), limit=32)
    return aiohttp.ClientSession(hub.base_url, connector=connector, headers={"Authorization": f"Bearer {hub.token}"})


async def _send(s: aiohttp.ClientSession, method: str, path: str, body: Any, ctype: str = "application/json") -> None:
    async with s.request(method, path, json=body, headers={"Content-Type": ctype}) as r:
        if r.status >= 300 and r.status != 409:
            raise RuntimeError(f"{method} {path}: {r.status} {(await r.text())[:300]}")


async def _bounded(calls: list[Any], parallel: int = 32) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(call: Any) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


def _status(i: int) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "status": {
            "lastSyncerHeartbeatTime": now,
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1100"},
            "allocatable": {"cpu": "60", "memory": "240Gi", "pods": "1000"},
            "allocated": {"cpu": str(i % 60), "memory": f"{i % 240}Gi", "pods": str(i % 1000)},
            "syncerStatus": {"syncedResources": 10, "pendingResources": 0, "failedResources": i % 3},
        }
    }


def _deployment(i: int, targets: int = TARGETS) -> dict[str, Any]:
    """Workload `i`, placed on SyncTarget i (and i + 1 for odd i) of `targets`."""
    labels = {"app": f"w{i}", f"state.workload.kcp.io/{sync_target_key('root', f'st-{i % targets:04d}')}": "Sync"}
    if i % 2:
        labels[f"state.workload.kcp.io/{sync_target_key('root', f'st-{(i + 1) % targets:04d}')}"] = "Sync"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"w-{i:05d}", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": f"w{i}"}},
            "template": {
                "metadata": {"labels": {"app": f"w{i}"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


async def _populate(hub: Server) -> None:
    async with _session(hub) as s:
        names = [f"st-{i:04d}" for i in range(TARGETS)]
        await _bounded([_send(s, "POST", ST_PATH, {"metadata": {"name": n}}) for n in names])
        status = "application/merge-patch+json"
        await _bounded([_send(s, "PATCH", f"{ST_PATH}/{n}/status", _status(i), status) for i, n in enumerate(names)])
        await _bounded(
            [
                _send(s, "POST", "/clusters/root/api/v1/namespaces", {"metadata": {"name": f"ns-{n:03d}"}})
                for n in range(NAMESPACES)
            ]
        )
        await _bounded(
            [
                _send(
                    s,
                    "POST",
                    f"/clusters/root/apis/apps/v1/namespaces/ns-{i % NAMESPACES:03d}/deployments",
                    _deployment(i),
                )
                for i in range(WORKLOADS)
            ]
        )


def _sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((name + "{", name + " ")))


async def _settle(hub: Server, timeout: float = 120.0) -> float:
    """Seconds until the hub's controllers are done with the writes: empty work queues and no new revision for a
    second; the scrape is timed on a quiet hub, as it would be between changes."""
    started = time.monotonic()
    last = -1.0
    async with _session(hub) as s:
        while time.monotonic() - started < timeout:
            async with s.get("/metrics") as r:
                text = await r.text()
            rev = _sum(text, "tmc_storage_current_revision")
            if _sum(text, "workqueue_depth") == 0 and rev == last:
                break
            last = rev
            await asyncio.sleep(1.0)
    return time.monotonic() - started


async def _scrapes(hub: Server, count: int) -> tuple[list[float], int]:
    samples: list[float] = []
    size = 0
    async with _session(hub) as s:
        for _ in range(count):
            started = time.perf_counter()
            async with s.get("/metrics") as r:
                body = await r.read()
            samples.append((time.perf_counter() - started) * 1000)
            size = len(body)
    return samples, size


def bench_scrape(data_dir: str) -> tuple[list[Row], list[str]]:
    hub = start_hub(data_dir)
    try:
        started = time.monotonic()
        asyncio.run(_populate(hub))
        populated = time.monotonic() - started
        first, _ = asyncio.run(_scrapes(hub, 1))
        settled = asyncio.run(_settle(hub))
        warm, size = asyncio.run(_scrapes(hub, SCRAPES))
    finally:
        hub.stop()
    p50 = statistics.median(warm)
    worst = max(warm)
    rows = [
        row(
            f"hub /metrics scrape, {TARGETS:,} SyncTargets, {WORKLOADS:,} placed workloads (median)",
            p50,
            "ms",
            goal=("<=", GOAL_MS),
        ),
        row(f"hub /metrics scrape, slowest of {SCRAPES}", worst, "ms", goal=("<=", GOAL_MS)),
        row("hub /metrics first scrape after the writes", first[0], "ms"),
        row("hub /metrics body size", size / 1024, "KiB"),
    ]
    notes = [
        f"scrape: {TARGETS:,} SyncTargets and {WORKLOADS:,} Deployments written in {populated:.1f}s; the hub's "
        f"controllers settled {settled:.1f}s after the first scrape"
    ]
    return rows, notes
