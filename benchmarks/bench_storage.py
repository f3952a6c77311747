"""Storage benchmarks (SQLite store in a temporary directory, durable commits):

* durable creates/s with 1 and 32 concurrent callers,
* listing 10,000 entries (current and at an older revision),
* event delivery latency to 500 watchers, measured from the start of the create call (so it includes the commit).

Run: python -m benchmarks.bench_storage
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tmc.storage.sqlite import SqliteStore


def _object(name: str) -> dict[str, Any]:
    # Roughly a small ConfigMap as clients send it (~600 bytes encoded).
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "bench", "tier": "storage"},
            "annotations": {"bench.tmc.io/note": "x" * 200},
        },
        "data": {f"key{i}": "value" * 8 for i in range(6)},
    }


async def _creates(store: SqliteStore, prefix: str, callers: int, total: int) -> float:
    """Creates per second with `callers` concurrent tasks."""
    numbers = itertools.count()

    async def caller() -> None:
        while (i := next(numbers)) < total:
            name = f"obj-{i:07d}"
            await store.create(f"{prefix}{name}", _object(name))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return total / (time.perf_counter() - started)


def _median_ms(fn: Any, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def _fanout(store: SqliteStore, watchers: int, events: int, writers: int) -> tuple[list[float], list[float]]:
    """Per (event, watcher) delivery latencies and per-write ack latencies, in ms."""
    prefix = "/bench/watch/"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    acks: list[float] = []
    watches = [store.watch(prefix, store.current_rev) for _ in range(watchers)]

    async def consume(watch: Any) -> None:
        seen = 0
        async for event in watch:
            latencies.append((time.perf_counter() - sent[event.key]) * 1000)
            seen += 1
            if seen == events:
                return

    consumers = [asyncio.create_task(consume(w)) for w in watches]
    numbers = itertools.count()

    async def writer() -> None:
        while (i := next(numbers)) < events:
            key = f"{prefix}obj-{i:05d}"
            sent[key] = started = time.perf_counter()
            await store.create(key, _object(f"obj-{i:05d}"))
            acks.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(writer() for _ in range(writers)))
    await asyncio.wait_for(asyncio.gather(*consumers), 60)
    for watch in watches:
        watch.close()
    return latencies, acks


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(directory: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def add(name: str, value: float, unit: str) -> None:
        results.append({"name": name, "value": round(value, 3), "unit": unit})

    store = SqliteStore(str(Path(directory) / "tmc.db"), compact_interval=0)
    await store.start()
    try:
        add("durable creates, 1 caller", await _creates(store, "/bench/one/", 1, 1_000), "ops/s")
        add("durable creates, 32 callers", await _creates(store, "/bench/list/", 32, 10_000), "ops/s")

        add("list 10,000 entries", _median_ms(lambda: list(store.list("/bench/list/"))), "ms")
        old = store.current_rev
        for i in range(0, 10_000, 10):  # 1,000 later writes to undo
            name = f"obj-{i:07d}"
            await store.update(f"/bench/list/{name}", _object(name))
        add(
            "list 10,000 entries at an older revision",
            _median_ms(lambda: list(store.list("/bench/list/", at_rev=old))),
            "ms",
        )
        add("count 10,000 entries", _median_ms(lambda: store.count("/bench/list/")), "ms")

        latencies, acks = await _fanout(store, watchers=500, events=200, writers=4)
        add("create ack p50 (4 writers, 500 watchers)", _pct(acks, 0.5), "ms")
        add("event delivery p50 to 500 watchers", _pct(latencies, 0.5), "ms")
        add("event delivery p99 to 500 watchers", _pct(latencies, 0.99), "ms")
    finally:
        await store.close()
    return results


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="tmc-bench-storage-") as directory:
        return asyncio.run(_run(directory))


def main() -> None:
    results = run()
    width = max(len(r["name"]) for r in results)
    print(f"{'benchmark':<{width}}  {'value':>12}  unit")
    for r in results:
        print(f"{r['name']:<{width}}  {r['value']:>12,.3f}  {r['unit']}")


if __name__ == "__main__":
    main()
