"""Metrics of the storage, the work queue and the loop watch change as a user (a Prometheus query) would see:
each test does the real thing and reads the exposed sample from the registry."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from tmc.runtime.loopwatch import LoopWatch
from tmc.runtime.workqueue import WorkQueue
from tmc.storage.interface import CompactedError, StorageError
from tmc.storage.sqlite import SqliteStore


def value(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def opened(tmp_path: Path, **kwargs: Any) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0, **kwargs)
    await store.start()
    return store


def test_storage_writes_commits_objects_revisions_and_compaction(tmp_path: Path) -> None:
    names = (
        "tmc_storage_commit_duration_seconds_count",
        "tmc_storage_batch_size_count",
        "tmc_storage_compactions_total",
    )

    async def main() -> None:
        before = {name: value(name) for name in names}
        creates, deletes = (
            value("tmc_storage_writes_total", operation="create"),
            value("tmc_storage_writes_total", operation="delete"),
        )
        store = await opened(tmp_path)
        try:
            await asyncio.gather(*(store.create(f"/r/{i}", obj(str(i))) for i in range(5)))
            assert value("tmc_storage_writes_total", operation="create") == creates + 5
            assert value("tmc_storage_commit_duration_seconds_count") > before[names[0]]
            assert value("tmc_storage_batch_size_count") > before[names[1]]
            assert value("tmc_storage_objects") == 5
            assert value("tmc_storage_current_revision") == 5
            await store.delete("/r/0")
            assert value("tmc_storage_writes_total", operation="delete") == deletes + 1
            assert value("tmc_storage_objects") == 4
            await store.compact(store.current_rev)
            assert value("tmc_storage_compactions_total") == before[names[2]] + 1
            assert value("tmc_storage_compacted_revision") == store.compacted_rev > 0
        finally:
            await store.close()

    asyncio.run(main())


def test_storage_failures_overflows_and_watch_cache(tmp_path: Path) -> None:
    async def main() -> None:
        failures, overflows = value("tmc_storage_write_failures_total"), value("tmc_storage_watch_overflows_total")
        store = await opened(tmp_path, watch_queue_size=2)
        try:
            hits = value("tmc_cache_hit_rate_percent", cache_type="watch-cache")
            await store.create("/r/a", obj("a"))
            await store.create("/r/b", obj("b"))
            store.watch("/r/", 1).close()  # resumed from the in-memory history: a hit
            assert value("tmc_cache_hit_rate_percent", cache_type="watch-cache") >= hits
            assert value("tmc_cache_hit_rate_percent", cache_type="watch-cache") > 0

            slow = store.watch("/r/", store.current_rev)  # never read: overflows after two events
            for i in range(4):
                await store.create(f"/r/o{i}", obj(f"o{i}"))
            assert slow.overflowed
            assert value("tmc_storage_watch_overflows_total") == overflows + 1

            writer = store._writer
            assert writer is not None
            real = writer._write_batch

            def broken(rows: Any) -> None:
                writer._write_batch = real  # type: ignore[method-assign]
                raise sqlite3.OperationalError("disk I/O error")

            writer._write_batch = broken  # type: ignore[method-assign]
            try:
                await store.create("/r/lost", obj("lost"))
            except StorageError:
                pass
            assert value("tmc_storage_write_failures_total") == failures + 1

            await store.compact(store.current_rev)
            misses_before = value("tmc_cache_hit_rate_percent", cache_type="watch-cache")
            try:
                store.watch("/r/", 1)
            except CompactedError:
                pass
            assert value("tmc_cache_hit_rate_percent", cache_type="watch-cache") < misses_before
        finally:
            await store.close()

    asyncio.run(main())


def test_work_queue_adds_depth_retries() -> None:
    async def main() -> None:
        queue = WorkQueue("metrics-test")
        queue.add("a")
        queue.add("a")  # already waiting: not added twice
        queue.add("b")
        assert value("workqueue_adds_total", name="metrics-test") == 2
        assert value("workqueue_depth", name="metrics-test") == 2
        key = await queue.get()
        assert value("workqueue_depth", name="metrics-test") == 1
        queue.retry(key)
        queue.done(key)
        assert value("workqueue_retries_total", name="metrics-test") == 1

    asyncio.run(main())


def test_a_stalled_loop_is_counted() -> None:
    now = [1000.0]
    watch = LoopWatch(interval=0.25, min_stall=1.0, clock=lambda: now[0], monotonic=lambda: now[0])
    before = value("tmc_event_loop_stalls_total")
    now[0] += 0.3
    watch.check()
    assert value("tmc_event_loop_stalls_total") == before
    now[0] += 5.0  # the loop did not run for five seconds
    watch.check()
    assert value("tmc_event_loop_stalls_total") == before + 1
