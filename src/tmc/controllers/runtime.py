"""In-process controller runtime: a store watch feeds a de-duplicating work queue drained by reconcile workers.

Failed reconciles are retried with exponential back-off (5 ms doubling to 60 s, like client-go's default
controller rate limiter); a key that is queued while being processed is processed again afterwards.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from tmc.runtime.workqueue import WorkQueue
from tmc.storage.interface import CompactedError, Event, Store

RECONCILES = Counter("tmc_controller_reconciles", "Reconciles by controller and result", ["controller", "result"])
ERRORS = Counter("tmc_controller_errors", "Reconcile errors by controller", ["controller"])
RECONCILE_SECONDS = Histogram(
    "workqueue_work_duration_seconds",
    "Time spent reconciling one key",
    ["name"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)

log = logging.getLogger("tmc.controllers")


class Controller(abc.ABC):
    """Subclasses set `name` and `prefix`, map events to keys (`keys_for`) and implement `reconcile`."""

    name = "controller"
    prefix = "/registry/"
    workers = 1

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue = WorkQueue(self.name)
        self._tasks: list[asyncio.Task[None]] = []

    def keys_for(self, event: Event) -> Iterable[str]:
        return (event.key,)

    def initial_keys(self) -> Iterable[str]:
        return (entry.key for entry in self.store.list(self.prefix))

    def watch_prefixes(self) -> Iterable[str]:
        """The store prefixes whose events feed `keys_for` (one watch each)."""
        return (self.prefix,)

    def observe(self, event: Event) -> None:
        """Hook for controllers that keep an index of what they have seen."""

    @abc.abstractmethod
    async def reconcile(self, key: str) -> None:
        """Bring the world in line with the object at `key` (which may be gone)."""

    async def start(self) -> None:
        start_rev = self.store.current_rev
        for key in list(self.initial_keys()):
            self.queue.add(key)
        for prefix in self.watch_prefixes():
            self._tasks.append(asyncio.create_task(self._watch(prefix, start_rev), name=f"{self.name}-watch"))
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _watch(self, prefix: str, rev: int) -> None:
        while True:
            try:
                watch = self.store.watch(prefix, rev)
            except CompactedError:
                # Fell behind the retained history: resync everything, like an informer relist.
                rev = self.store.current_rev
                for key in list(self.initial_keys()):
                    self.queue.add(key)
                continue
            try:
                async for event in watch:
                    rev = event.rev
                    self.observe(event)
                    for key in self.keys_for(event):
                        self.queue.add(key)
            finally:
                watch.close()
            await asyncio.sleep(0.1)  # the watch ended (overflow or shutdown): resume from the last revision

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            with RECONCILE_SECONDS.labels(self.name).time():
                try:
                    await self.reconcile(key)
                    RECONCILES.labels(self.name, "success").inc()
                    self.queue.forget(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    RECONCILES.labels(self.name, "error").inc()
                    ERRORS.labels(self.name).inc()
                    log.exception("reconcile failed", extra={"controller": self.name, "key": key})
                    self.queue.retry(key)
                finally:
                    self.queue.done(key)
            # Queue.get does not suspend while keys are ready: yield so a key re-queued at once cannot starve the
            # store's commit callbacks and the HTTP handlers.
            await asyncio.sleep(0)
