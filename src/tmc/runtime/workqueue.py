"""A de-duplicating work queue with per-key exponential back-off, shaped like client-go's workqueue.

A key added while it is being processed is handed out again once `done` is called, never twice at once; failed keys
come back after 5 ms doubling to 60 s (`retry`) until `forget` clears their history.
"""

from __future__ import annotations

import asyncio

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB, SIM, SYNCER

QUEUE_DEPTH = catalogue.gauge(
    "workqueue_depth",
    "Keys waiting in a work queue (one queue per controller).",
    ("name",),
    owners=(HUB, SIM, SYNCER),
    promql="max_over_time(workqueue_depth[10m]) > 100",
)
QUEUE_ADDS = catalogue.counter(
    "workqueue_adds_total",
    "Keys added to a work queue (a key already waiting is not added twice).",
    ("name",),
    owners=(HUB, SIM, SYNCER),
    promql="sum by (name) (rate(workqueue_adds_total[5m]))",
)
QUEUE_RETRIES = catalogue.counter(
    "workqueue_retries_total",
    "Keys put back with back-off after a failed reconcile.",
    ("name",),
    owners=(HUB, SIM, SYNCER),
    promql="sum by (name) (rate(workqueue_retries_total[5m]))",
)


class WorkQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(key)
        QUEUE_ADDS.labels(self.name).inc()
        QUEUE_DEPTH.labels(self.name).set(len(self._queued))

    def add_after(self, key: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        QUEUE_DEPTH.labels(self.name).set(len(self._queued))
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def retry(self, key: str) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        QUEUE_RETRIES.labels(self.name).inc()
        self.add_after(key, min(60.0, 0.005 * (2**failures)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._queued)

    def keys(self) -> set[str]:
        """The keys waiting, a copy."""
        return set(self._queued)
