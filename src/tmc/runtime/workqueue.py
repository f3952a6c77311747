"""A de-duplicating work queue with per-key exponential back-off, shaped like client-go's workqueue.

A key added while it is being processed is handed out again once `done` is called, never twice at once; failed keys
come back after 5 ms doubling to 60 s (`retry`) until `forget` clears their history.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge

QUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of the work queue", ["name"])
QUEUE_ADDS = Counter("workqueue_adds", "Keys added to the work queue", ["name"])


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
        self.add_after(key, min(60.0, 0.005 * (2**failures)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._queued)
