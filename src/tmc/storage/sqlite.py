"""SQLite-backed store: a kine-style append-only table for durability, everything served from memory.

How a write flows: create/update/delete check the key against committed state overlaid with pending writes,
take the next revision, stamp metadata.resourceVersion, encode once, and queue the row for the writer thread
(sqlite_writer.SqliteWriter), which commits everything queued in one transaction. Back on the event loop the
batch is applied in revision order: committed state, event history, watchers, then the callers' futures. Readers
(get/list/watch) only ever see committed data.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from functools import partial
from typing import Any

import orjson
from sortedcontainers import SortedDict

from tmc.observability import tracing
from tmc.storage.history import EventHistory
from tmc.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
)
from tmc.storage.metrics import (
    STORAGE_BATCH_SIZE,
    STORAGE_COMMIT_SECONDS,
    STORAGE_COMPACTED_REVISION,
    STORAGE_COMPACTIONS,
    STORAGE_CURRENT_REVISION,
    STORAGE_OBJECTS,
    STORAGE_WRITE_FAILURES,
    STORAGE_WRITES,
    WATCH_CACHE,
)
from tmc.storage.sqlite_writer import Operation, SqliteWriter, WriteOp, compact_range, load
from tmc.storage.watchers import StoreWatch, WatcherHub

log = logging.getLogger("tmc.storage")

# Keys materialised per step of a list scan; a scan re-seeks after each step, so it survives concurrent writes.
_SCAN_CHUNK = 512
# Revisions deleted per compaction transaction, so queued writes are not held up behind one huge delete.
_COMPACT_STEP = 10_000


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with prefix (None: no upper bound)."""
    stem = prefix.rstrip("\U0010ffff")
    return stem[:-1] + chr(ord(stem[-1]) + 1) if stem else None


class SqliteStore:
    """The `Store` protocol on one SQLite file.

    path: database file (created if missing); one process at a time may open it.
    history_window: events kept in memory for watch replay and list snapshots (older ones answer CompactedError).
    compact_interval: seconds between compaction passes (0 disables the periodic pass; `compact()` still works).
    compact_keep_seconds: a periodic pass never compacts revisions written less than this long ago, nor the newest
        `history_window` revisions, so a restart can rebuild a full history window from disk.
    watch_queue_size: live events a watch may have buffered before it is closed as too slow.
    """

    def __init__(
        self,
        path: str,
        *,
        history_window: int = 100_000,
        compact_interval: float = 60.0,
        compact_keep_seconds: float = 300.0,
        watch_queue_size: int = 10_000,
    ) -> None:
        self._path = path
        self._history_window = history_window
        self._compact_interval = compact_interval
        self._compact_keep_seconds = compact_keep_seconds
        self._watch_queue_size = watch_queue_size

        self._state: Any = SortedDict()  # key -> Entry, committed
        self._tombstones: dict[str, int] = {}  # key -> revision of its tombstone row still on disk
        self._history = EventHistory(history_window)
        self._hub = WatcherHub()
        self._current_rev = 0
        self._db_compacted = 0

        self._assigned_rev = 0
        self._epoch = 0
        self._pending: dict[str, WriteOp] = {}  # key -> newest uncommitted write (the CAS overlay)
        self._inflight: dict[int, WriteOp] = {}  # rev -> uncommitted write, in revision order

        self._rev_waiters: list[tuple[int, int, asyncio.Future[bool]]] = []
        self._waiter_seq = itertools.count()
        self._rev_marks: deque[tuple[float, int]] = deque()  # (monotonic time, current_rev) per compaction tick
        self._compact_lock = asyncio.Lock()
        self._compact_task: asyncio.Task[None] | None = None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: SqliteWriter | None = None
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        self._commit_error = ""  # the last commit's error, until a commit succeeds again

    # --- lifecycle -------------------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def current_rev(self) -> int:
        return self._current_rev

    @property
    def compacted_rev(self) -> int:
        return max(self._history.floor, self._db_compacted)

    async def start(self) -> None:
        if self._writer is not None or self._closed:
            raise StorageError("", "store already started or closed")
        loop = self._loop = asyncio.get_running_loop()
        writer = self._writer = SqliteWriter(self._path, loop, self._on_batch)
        writer.start()
        try:
            loaded = await writer.call(partial(load, window=self._history_window))
        except Exception as e:
            await writer.stop()
            self._closed = True
            raise StorageError("", f"cannot open {self._path}: {e}") from e
        self._state = loaded.state
        self._tombstones = loaded.tombstones
        self._history = EventHistory(self._history_window, loaded.history_floor)
        self._history.extend(loaded.records)
        self._current_rev = self._assigned_rev = loaded.current_rev
        self._db_compacted = loaded.compacted_rev
        self._update_gauges()
        log.info(
            "storage opened %s: %d objects, revision %d, history from %d",
            self._path,
            len(self._state),
            self._current_rev,
            self.compacted_rev,
        )
        if self._compact_interval > 0:
            self._compact_task = loop.create_task(self._compact_loop(), name="tmc-storage-compactor")

    async def close(self) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self._closed = True
        if self._compact_task is not None:
            self._compact_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compact_task
        # Writes already queued still commit (the writer stops only after them); waiting here means their events
        # are published before the watches end.
        if self._inflight:
            await asyncio.gather(*(op.future for op in list(self._inflight.values())), return_exceptions=True)
        if self._writer is not None:
            await self._writer.stop()
        self._hub.close_all()
        for _, _, future in self._rev_waiters:
            if not future.done():
                future.set_result(False)
        self._rev_waiters.clear()

    def problem(self) -> str:
        """Why the store cannot take writes now ("" when it can): closed, its writer thread gone, or its last commit
        failed (until one succeeds)."""
        if self._closed:
            return "store is closed"
        if self._writer is None:
            return "store not started"
        if not self._writer.alive:
            return "writer thread stopped"
        if self._commit_error:
            return f"last commit failed: {self._commit_error}"
        return ""

    # --- writes ----------------------------------------------------------------------------------------------

    async def create(self, key: str, obj: dict[str, Any]) -> Entry:
        self._check_writable()
        pending = self._pending.get(key)
        exists = pending.op != "delete" if pending is not None else key in self._state
        if exists:
            raise KeyExistsError(key)
        # The row a re-create follows is the key's tombstone, if that is still on disk (UNIQUE(name, prev)).
        prev_rev = pending.rev if pending is not None else self._tombstones.get(key, 0)
        rev = self._assigned_rev + 1
        entry = Entry(key, rev, obj, _stamp(obj, rev))
        if tracing.enabled:
            return await self._traced_submit("create", entry, prev_rev)
        return await self._submit("create", entry, prev_rev)

    async def update(self, key: str, obj: dict[str, Any], expected_rev: int | None = None) -> Entry:
        self._check_writable()
        current = self._check_current(key, expected_rev)
        rev = self._assigned_rev + 1
        entry = Entry(key, rev, obj, _stamp(obj, rev))
        if tracing.enabled:
            return await self._traced_submit("update", entry, current.rev)
        return await self._submit("update", entry, current.rev)

    async def delete(self, key: str, expected_rev: int | None = None) -> Entry:
        self._check_writable()
        current = self._check_current(key, expected_rev)
        rev = self._assigned_rev + 1
        obj = dict(current.obj)
        obj["metadata"] = dict(obj.get("metadata") or {})
        entry = Entry(key, rev, obj, _stamp(obj, rev))
        if tracing.enabled:
            return await self._traced_submit("delete", entry, current.rev)
        return await self._submit("delete", entry, current.rev)

    def _check_writable(self) -> None:
        if self._closed or self._writer is None:
            raise StorageError("", "store is not open")

    def _check_current(self, key: str, expected_rev: int | None) -> Entry:
        """The key's newest state including pending writes; raises unless it exists at expected_rev."""
        pending = self._pending.get(key)
        current = (None if pending.op == "delete" else pending.entry) if pending is not None else self._state.get(key)
        pending_rev = pending.rev if pending is not None else 0
        if current is None:
            raise KeyNotFoundError(key, pending_rev=pending_rev)
        if expected_rev is not None and expected_rev != current.rev:
            message = f"{key}: expected revision {expected_rev}, current revision is {current.rev}"
            raise ConflictError(key, message, pending_rev)
        return current

    async def _traced_submit(self, op: Operation, entry: Entry, prev_rev: int) -> Entry:
        """Queue the write and wait for its group commit, as a child span of the API request that asked for it."""
        if not (tracing.commit_spans and tracing.commit_span_wanted()):
            return await self._submit(op, entry, prev_rev)
        with tracing.span("storage.commit", attributes={"db.operation": op, "db.system": "sqlite"}):
            return await self._submit(op, entry, prev_rev)

    def _submit(self, op: Operation, entry: Entry, prev_rev: int) -> asyncio.Future[Entry]:
        assert self._loop is not None and self._writer is not None
        write = WriteOp(op, entry, prev_rev, self._epoch, self._loop.create_future())
        self._assigned_rev = entry.rev
        self._pending[entry.key] = write
        self._inflight[entry.rev] = write
        self._writer.submit(write)
        return write.future

    def _on_batch(self, ops: list[WriteOp], error: BaseException | None, seconds: float) -> None:
        """Writer thread callback, on the loop, in revision order."""
        if error is not None:
            self._on_failure(ops, error)
            return
        self._commit_error = ""
        STORAGE_COMMIT_SECONDS.observe(seconds)
        STORAGE_BATCH_SIZE.observe(len(ops))
        state, tombstones, history, pending, inflight = (
            self._state,
            self._tombstones,
            self._history,
            self._pending,
            self._inflight,
        )
        counts = {"create": 0, "update": 0, "delete": 0}
        events: list[Event] = []
        for op in ops:
            key, entry = op.key, op.entry
            prev: Entry | None = state.get(key)
            if op.op == "delete":
                state.pop(key, None)
                tombstones[key] = op.rev
                event = Event("DELETED", key, op.rev, entry.obj, entry.raw, prev.obj if prev else None)
            else:
                state[key] = entry
                tombstones.pop(key, None)
                kind: EventType = "ADDED" if op.op == "create" else "MODIFIED"
                event = Event(kind, key, op.rev, entry.obj, entry.raw, prev.obj if prev else None)
            history.append(event, prev)
            events.append(event)
            counts[op.op] += 1
            if pending.get(key) is op:
                del pending[key]
            inflight.pop(op.rev, None)
        self._current_rev = ops[-1].rev
        self._hub.publish(events)
        for op in ops:
            if not op.future.done():
                op.future.set_result(op.entry)
        for name, n in counts.items():
            if n:
                STORAGE_WRITES.labels(name).inc(n)
        self._update_gauges()
        waiters = self._rev_waiters
        while waiters and waiters[0][0] <= self._current_rev:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(True)

    def _on_failure(self, ops: list[WriteOp], error: BaseException) -> None:
        # Writes queued after the failed ones were checked against an overlay that included them, so every
        # uncommitted write fails; the writer drops the ones it has not reached yet (same or older epoch).
        self._commit_error = str(error) or type(error).__name__
        doomed = ops
        if max(op.epoch for op in ops) == self._epoch:
            self._epoch += 1
            doomed = list(self._inflight.values())  # includes ops
            self._inflight.clear()
            self._pending.clear()
        STORAGE_WRITE_FAILURES.inc(len(doomed))
        for op in doomed:
            if not op.future.done():
                failure = StorageError(op.key, f"storage commit failed: {error}")
                failure.__cause__ = error
                op.future.set_exception(failure)

    # --- reads -----------------------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        entry: Entry | None = self._state.get(key)
        return entry

    def changed_keys(self, since_rev: int, prefix: str) -> list[str] | None:
        if since_rev < self._history.floor:
            return None
        return [event.key for event in self._history.since(since_rev, prefix)]

    def count(self, prefix: str, start_after: str = "") -> int:
        state = self._state
        end = _prefix_end(prefix)
        hi = state.bisect_left(end) if end is not None else len(state)
        lo = state.bisect_right(start_after) if start_after >= prefix else state.bisect_left(prefix)
        return max(0, hi - lo)

    def list(self, prefix: str, start_after: str = "", at_rev: int = 0) -> Iterator[Entry]:
        """Entries under prefix in key order. at_rev <= 0 or >= current_rev means "now" (callers that need a
        revision the store has not reached yet wait with wait_for_rev first). The result is a snapshot: it stays
        at its revision even if consumed across awaits while writes commit."""
        rev = self._current_rev
        if 0 < at_rev < rev:
            if at_rev < self.compacted_rev:
                WATCH_CACHE.miss()
                raise CompactedError(at_rev, self.compacted_rev)
            WATCH_CACHE.hit()
            rev = at_rev
        return self._scan(prefix, start_after, rev)

    def _scan(self, prefix: str, start_after: str, rev: int) -> Iterator[Entry]:
        state = self._state
        end = _prefix_end(prefix)
        lo, lo_inclusive = (start_after, False) if start_after >= prefix else (prefix, True)
        changed: dict[str, Entry | None] = {}
        changed_at = rev
        while True:
            i = state.bisect_left(lo) if lo_inclusive else state.bisect_right(lo)
            j = state.bisect_left(end) if end is not None else len(state)
            items: list[tuple[str, Entry | None]] = state.items()[i : min(j, i + _SCAN_CHUNK)]
            done = i + _SCAN_CHUNK >= j
            if self._current_rev != rev:
                # Writes committed after the snapshot revision: undo them from the history.
                if changed_at != self._current_rev:
                    if rev < self.compacted_rev:
                        raise CompactedError(rev, self.compacted_rev)
                    changed = self._history.state_at(rev, prefix)
                    changed_at = self._current_rev
                hi = None if done else items[-1][0]
                extra = {
                    k: e
                    for k, e in changed.items()
                    if (k > lo or (lo_inclusive and k == lo)) and (hi is None or k <= hi)
                }
                if extra:
                    merged = dict(items)
                    merged.update(extra)
                    items = sorted(merged.items())
            if end is None and prefix:
                # Only for prefixes ending in U+10FFFF: matching keys are contiguous, so stop at the first miss.
                matching = [(k, e) for k, e in items if k.startswith(prefix)]
                done = done or len(matching) < len(items)
                items = matching
            for _, entry in items:
                if entry is not None:
                    yield entry
            if done or not items:
                return
            lo, lo_inclusive = items[-1][0], False

    def watch(self, prefix: str, from_rev: int) -> StoreWatch:
        """Events under prefix with rev > from_rev. from_rev is a real revision: 0 means "from the very beginning"
        and works only while nothing has been compacted (the API layer maps resourceVersion=0 to a list plus a
        watch from current_rev). Replay and live hand-over happen in this synchronous call, so nothing is missed
        or repeated."""
        if from_rev < 0:
            raise ValueError(f"invalid revision {from_rev}")
        if self._closed:
            raise StorageError("", "store is closed")
        if from_rev < self.compacted_rev:
            WATCH_CACHE.miss()
            raise CompactedError(from_rev, self.compacted_rev)
        WATCH_CACHE.hit()
        replay = self._history.since(from_rev, prefix) if from_rev < self._current_rev else []
        watch = StoreWatch(self._hub, prefix, from_rev, replay, self._watch_queue_size)
        self._hub.add(watch)
        return watch

    async def wait_for_rev(self, rev: int, timeout: float) -> bool:
        if self._current_rev >= rev:
            return True
        if self._closed:
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        item = (rev, next(self._waiter_seq), future)
        heapq.heappush(self._rev_waiters, item)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return self._current_rev >= rev
        finally:
            if not future.done():
                future.cancel()
                with contextlib.suppress(ValueError):
                    self._rev_waiters.remove(item)
                    heapq.heapify(self._rev_waiters)

    # --- compaction ------------------------------------------------------------------------------------------

    async def compact(self, rev: int) -> int:
        """Forget history at or below rev (capped at current_rev): deletes superseded rows and tombstones up to it
        and persists the compacted revision. Returns compacted_rev."""
        self._check_writable()
        assert self._writer is not None
        async with self._compact_lock:
            target = min(rev, self._current_rev)
            lo = self._db_compacted
            if target <= lo:
                return self.compacted_rev
            removed = 0
            while lo < target and not self._closed:
                hi = min(target, lo + _COMPACT_STEP)
                # Stop serving the range before its rows go, so nothing is ever promised that disk lacks.
                self._history.trim_to(hi)
                removed += await self._writer.call(partial(compact_range, lo=lo, hi=hi))
                self._db_compacted = lo = hi
            # Tombstone rows at or below target are gone, so a re-create of those keys follows no row.
            # (Stale entries would be harmless; dropping live ones would not, hence only after the commits.)
            self._tombstones = {k: r for k, r in self._tombstones.items() if r > lo}
            STORAGE_COMPACTIONS.inc()
            self._update_gauges()
            log.info("storage compacted to revision %d (%d rows removed)", lo, removed)
            return self.compacted_rev

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                target = self._compaction_target(time.monotonic())
                if target > self._db_compacted:
                    await self.compact(target)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("storage compaction failed")

    def _compaction_target(self, now: float) -> int:
        """The newest revision that is both older than compact_keep_seconds and outside the history window."""
        marks = self._rev_marks
        marks.append((now, self._current_rev))
        cutoff = now - self._compact_keep_seconds
        while len(marks) >= 2 and marks[1][0] <= cutoff:
            marks.popleft()
        if marks[0][0] > cutoff:
            return 0
        return max(0, min(marks[0][1], self._current_rev - self._history_window))

    def _update_gauges(self) -> None:
        STORAGE_OBJECTS.set(len(self._state))
        STORAGE_CURRENT_REVISION.set(self._current_rev)
        STORAGE_COMPACTED_REVISION.set(self.compacted_rev)


def _stamp(obj: dict[str, Any], rev: int) -> bytes:
    """Set metadata.resourceVersion and encode (once; the bytes are reused for every response and the row)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    metadata["resourceVersion"] = str(rev)
    return orjson.dumps(obj)
