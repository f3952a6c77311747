"""In-process controller runtime (controller-runtime's shape): a store watch feeds a de-duplicating work queue drained
by reconcile workers, and `reconcile()` says with its `Result` whether and when to look at the key again.

Errors are handled here, once, not in every controller:
- a Kubernetes 404 (the object went away while reconciling) ends the reconcile, as if it had returned;
- a 409 (another writer got there first, or a write of the same key is still being committed) looks again after
  `conflict_retry` seconds, never at once: an immediate retry would not let that commit land;
- anything else is logged, counted in `tmc_controller_errors_total` and retried with exponential back-off (5 ms
  doubling to 60 s, like client-go's default controller rate limiter).
`Controller.process` is the one place a reconcile is timed, counted and traced: with tracing on, each reconcile is
a span, the child of the trace context its object carries (`tracing.k8s.io/traceparent`) when it has one.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tmc.apimachinery import errors
from tmc.observability import catalogue, tracing
from tmc.observability.catalogue import HUB, SIM
from tmc.runtime.workqueue import WorkQueue
from tmc.storage.interface import CompactedError, Event, Store

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

RECONCILES = catalogue.counter(
    "tmc_controller_reconciles_total",
    "Reconciles by controller and result: success, requeue (a write conflict, tried again shortly), requeue_after "
    "(the controller asked for another look later) or error (retried with back-off).",
    ("controller", "result"),
    owners=(HUB, SIM),
    promql='sum by (controller) (rate(tmc_controller_reconciles_total{result="error"}[5m]))',
)
ERRORS = catalogue.counter(
    "tmc_controller_errors_total",
    "Failed reconciles by controller and error type (not_found, conflict, forbidden, rate_limited, server_timeout, "
    "timeout or unknown: an API error's code, or any other exception).",
    ("controller", "error_type"),
    owners=(HUB, SIM),
    promql="topk(5, sum by (controller, error_type) (increase(tmc_controller_errors_total[1h])))",
)
RECONCILE_SECONDS = catalogue.histogram(
    "workqueue_work_duration_seconds",
    "Time spent reconciling one key, by work queue (one per controller).",
    ("name",),
    owners=(HUB, SIM),
    promql="histogram_quantile(0.99, sum by (le, name) (rate(workqueue_work_duration_seconds_bucket[5m])))",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)
# Delay before reconciling again after a write conflict. Never zero: a conflict often means another write to the
# object is being committed, and an immediate retry (the work queue hands out ready keys without suspending)
# would spin without ever letting that commit complete.
CONFLICT_RETRY = 0.02

log = logging.getLogger("tmc.controllers")


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for: nothing more (the default), or another look after `requeue_after` seconds."""

    requeue_after: float | None = None


DONE = Result()


def requeue(after: float) -> Result:
    return Result(requeue_after=max(0.0, after))


class Controller(abc.ABC):
    """Subclasses set `name` and `prefix`, map events to keys (`keys_for`) and implement `reconcile`."""

    name = "controller"
    prefix = "/registry/"
    workers = 1
    # Whether only one replica of the hub may run it at a time (a controller that writes shared state). The manager
    # starts such controllers once its elector says this process leads; today's elector always does.
    needs_leader_election = True
    conflict_retry = CONFLICT_RETRY
    # Whether a key whose `requeue_after` has come goes ahead of the keys queued by events: for controllers whose
    # timed looks are deadlines (a canary's pause ending), not periodic resyncs.
    due_first = False
    # Status codes that end a reconcile quietly: the object is gone (404), or, for some, the write is refused for
    # good (a simulated cluster's 403 for a terminating namespace).
    quiet_codes: frozenset[int] = frozenset({404})

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
    async def reconcile(self, key: str) -> Result | None:
        """Bring the world in line with the object at `key` (which may be gone); None means `DONE`."""

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

    def running(self) -> bool:
        """Started, and none of its watch or worker tasks has died."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await (self.traced_process(key) if tracing.enabled else self.process(key))
            finally:
                self.queue.done(key)
            # Queue.get does not suspend while keys are ready: yield so a key re-queued at once cannot starve the
            # store's commit callbacks and the HTTP handlers.
            await asyncio.sleep(0)

    def trace_parent(self, key: str) -> SpanContext | None:
        """The trace a reconcile of `key` continues: the one recorded on the object at `key`, if any."""
        entry = self.store.get(key)
        return tracing.object_traceparent(entry.obj if entry is not None else None)

    async def traced_process(self, key: str) -> None:
        """`process` inside the reconcile's span."""
        parent = self.trace_parent(key)
        if parent is None and not tracing.reconcile_roots:
            await self.process(key)
            return
        # Only a reconcile that continues an object's trace passes it on through the writes it makes. Either is a
        # span only if it did something (wrote, made a span of its own, or failed).
        attributes = {"controller": self.name, "key": key}
        continued = parent is not None
        with tracing.deferred_span(f"reconcile {self.name}", parent=parent, attributes=attributes, carry=continued):
            await self.process(key)

    async def process(self, key: str) -> None:
        """Reconcile one key: time it, count it, and requeue it as its result or its error asks."""
        with RECONCILE_SECONDS.labels(self.name).time():
            try:
                result = await self.reconcile(key) or DONE
            except asyncio.CancelledError:
                raise
            except errors.StatusError as e:
                if e.code in self.quiet_codes:
                    result = DONE
                elif e.code == 409:
                    RECONCILES.labels(self.name, "requeue").inc()
                    self.queue.forget(key)
                    self.queue.add_after(key, self.conflict_retry)
                    return
                else:
                    self._failed(key, errors.error_type(e.code), e)
                    return
            except Exception as e:
                self._failed(key, "unknown", e)
                return
            RECONCILES.labels(self.name, "success" if result.requeue_after is None else "requeue_after").inc()
            self.queue.forget(key)
            if result.requeue_after is not None:
                self.queue.add_after(key, result.requeue_after, first=self.due_first)

    def _failed(self, key: str, error_type: str, error: Exception) -> None:
        if tracing.enabled:
            tracing.record_error(error)
        RECONCILES.labels(self.name, "error").inc()
        ERRORS.labels(self.name, error_type).inc()
        log.exception("reconcile failed", extra={"controller": self.name, "key": key})
        self.queue.retry(key)


class MultiPrefixController(Controller):
    """A controller fed by several store prefixes (`prefixes`), so it sees, say, SyncTargets, Locations and Placements
    without watching (and filtering) every write under /registry/. Subclasses map both the initial listing
    (`initial_keys`) and events (`keys_for`) to keys."""

    prefixes: tuple[str, ...] = ()

    def initial_keys(self) -> Iterable[str]:
        return ()

    def watch_prefixes(self) -> Iterable[str]:
        return self.prefixes
