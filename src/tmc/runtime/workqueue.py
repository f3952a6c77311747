"""A de-duplicating work queue with per-key exponential back-off, shaped like client-go's workqueue.

A key added while it is being processed is handed out again once `done` is called, never twice at once; failed keys
come back after 5 ms doubling to 60 s (`retry`) until `forget` clears their history. Keys are handed out in the
order they were added, except that a key added with `first=True` (a deadline that has come, say) goes ahead of the
keys waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque

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
        self._ready: deque[str] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._first: set[str] = set()  # dirty keys to put first once done
        self._failures: dict[str, int] = {}

    def add(self, key: str, first: bool = False) -> None:
        if key in self._processing:
            self._dirty.add(key)
            if first:
                self._first.add(key)
            return
        if key in self._queued:
            if first and self._ready[0] != key:
                self._ready.remove(key)
                self._ready.appendleft(key)
            return
        self._queued.add(key)
        if first:
            self._ready.appendleft(key)
        else:
            self._ready.append(key)
        QUEUE_ADDS.labels(self.name).inc()
        QUEUE_DEPTH.labels(self.name).set(len(self._queued))
        self._wake_next()

    def add_after(self, key: str, delay: float, first: bool = False) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key, first)

    async def get(self) -> str:
        while not self._ready:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                # Pass a wake-up this getter took on to the next one, as asyncio.Queue does.
                if getter.done() and not getter.cancelled() and self._ready:
                    self._wake_next()
                raise
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        QUEUE_DEPTH.labels(self.name).set(len(self._queued))
        return key

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            first = key in self._first
            self._first.discard(key)
            self.add(key, first)

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
