"""The durable half of the SQLite store: schema, the single writer thread (group commit), loading and compaction.

Table layout follows kine: one append-only table whose INTEGER PRIMARY KEY is the global revision. Every write
inserts a row; a delete inserts a tombstone (deleted=1) whose value is the last state stamped with the delete
revision. `prev_revision` is the row this one replaces (for a create: the key's tombstone, or 0), and
UNIQUE(name, prev_revision) makes a lost compare-and-swap impossible to commit twice even if the in-memory checks
were bypassed. The compacted revision lives in the `meta` table.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import orjson
from sortedcontainers import SortedDict

from tmc.storage.history import Record
from tmc.storage.interface import Entry, Event

log = logging.getLogger("tmc.storage")

T = TypeVar("T")
Operation = Literal["create", "update", "delete"]
# (id, name, created, deleted, prev_revision, value)
Row = tuple[int, str, int, int, int, bytes]

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (name, prev_revision)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
SCHEMA_VERSION = 1
_INSERT = "INSERT INTO kv (id, name, created, deleted, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?)"


class WriteOp:
    """One pending write: assigned a revision on the event loop, committed by the writer thread."""

    __slots__ = ("entry", "epoch", "future", "key", "op", "rev", "row")

    def __init__(self, op: Operation, entry: Entry, prev_rev: int, epoch: int, future: asyncio.Future[Entry]) -> None:
        self.op = op
        self.key = entry.key
        self.rev = entry.rev
        self.entry = entry
        self.epoch = epoch
        self.future = future
        self.row: Row = (entry.rev, entry.key, int(op == "create"), int(op == "delete"), prev_rev, entry.raw)


@dataclass
class Loaded:
    """What start() needs, read in one pass over the table."""

    state: Any  # SortedDict[str, Entry]
    tombstones: dict[str, int] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    current_rev: int = 0
    compacted_rev: int = 0
    history_floor: int = 0


@dataclass
class _Call(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]


_STOP = object()
BatchCallback = Callable[[list[WriteOp], BaseException | None, float], None]


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=True)
    try:
        # EXCLUSIVE: one process owns the file (revisions come from this process alone); it also lets WAL run
        # without the shared-memory index. FULL: the WAL is fsynced on every commit, so acknowledged = durable.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
        # A write takes the exclusive lock now, so a second process fails at open rather than at its first write.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('compact_rev', 0)")
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


def load(conn: sqlite3.Connection, window: int) -> Loaded:
    """Newest state of every key, tombstones, and the events above the compacted revision (at most `window`)."""
    (compacted,) = conn.execute("SELECT value FROM meta WHERE key = 'compact_rev'").fetchone()
    (max_id,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM kv").fetchone()
    floor = compacted
    # The (window+1)-th newest row above the compacted revision, if any, bounds what fits in memory.
    over = conn.execute(
        "SELECT id FROM kv WHERE id > ? ORDER BY id DESC LIMIT 1 OFFSET ?", (compacted, window)
    ).fetchone()
    if over is not None:
        floor = over[0]
    state: dict[str, Entry] = {}
    tombstones: dict[str, int] = {}
    records: list[Record] = []
    loads = orjson.loads
    for rev, name, created, deleted, _prev_rev, value in conn.execute(
        "SELECT id, name, created, deleted, prev_revision, value FROM kv ORDER BY id"
    ):
        prev = state.get(name)
        if deleted:
            state.pop(name, None)
            tombstones[name] = rev
            if rev > floor:
                obj = loads(value)
                records.append((Event("DELETED", name, rev, obj, value, prev.obj if prev else None), prev))
            continue
        entry = Entry(name, rev, loads(value), value)
        state[name] = entry
        tombstones.pop(name, None)
        if rev > floor:
            kind: Literal["ADDED", "MODIFIED"] = "ADDED" if created or prev is None else "MODIFIED"
            records.append((Event(kind, name, rev, entry.obj, value, prev.obj if prev else None), prev))
    return Loaded(
        state=SortedDict(state),
        tombstones=tombstones,
        records=records,
        # A compacted-away tombstone may have been the newest row: never hand its revision out again.
        current_rev=max(max_id, compacted),
        compacted_rev=compacted,
        history_floor=floor,
    )


def compact_range(conn: sqlite3.Connection, lo: int, hi: int) -> int:
    """Compact (lo, hi], given that everything up to lo is already compacted: delete the rows that a row in the
    range supersedes and the tombstones in the range. What remains at or below hi is exactly the state at hi."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        superseded = conn.execute(
            "DELETE FROM kv WHERE id IN (SELECT prev_revision FROM kv WHERE id > ? AND id <= ? AND prev_revision > 0)",
            (lo, hi),
        ).rowcount
        tombstones = conn.execute("DELETE FROM kv WHERE deleted = 1 AND id > ? AND id <= ?", (lo, hi)).rowcount
        conn.execute("UPDATE meta SET value = ? WHERE key = 'compact_rev'", (hi,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return superseded + tombstones


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            # SQLite may already have rolled back on its own (e.g. after an I/O error).
            log.warning("storage rollback failed: %s", e)


class SqliteWriter:
    """Owns the connection on one thread. Writes queued by the event loop are drained together and committed in
    one transaction (one fsync); results go back through loop.call_soon_threadsafe, in revision order.

    After a failed commit every queued write of that epoch or older is dropped unwritten: those writes were checked
    against state that included the failed ones, and the event loop fails them all and starts a new epoch."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop, on_batch: BatchCallback) -> None:
        self._path = path
        self._loop = loop
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: list[WriteOp] = []  # submitted during this turn of the event loop
        self._conn: sqlite3.Connection | None = None
        self._open_error: BaseException | None = None
        self._dead_epoch = -1
        self._stopping = False
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="tmc-sqlite-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, op: WriteOp) -> None:
        # Writes submitted in one turn of the event loop go to the thread as one item: one wake-up (and GIL
        # hand-over) per turn instead of per write, which was a sixth of a busy server's CPU.
        if not self._pending:
            self._loop.call_soon(self._hand_over)
        self._pending.append(op)

    def _hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run fn(conn) on the writer thread, after every write queued before it has been committed."""
        future: asyncio.Future[T] = self._loop.create_future()
        if self._stopping:
            future.set_exception(sqlite3.OperationalError("storage writer is stopped"))
        else:
            self._hand_over()  # it runs after the writes submitted before it
            self._queue.put(_Call(fn, future))
        return future

    async def stop(self) -> None:
        """Commit everything queued so far, close the connection and end the thread."""
        if not self._stopping and self._thread.is_alive():
            self._stopping = True
            self._hand_over()
            self._queue.put(_STOP)
            await asyncio.shield(self._stopped)
            self._thread.join()

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            # The loop is gone (closed without store.close()); nobody is left to tell.
            log.warning("storage writer: event loop closed, dropping a result")

    def _run(self) -> None:
        try:
            self._conn = open_db(self._path)
        except Exception as e:
            self._open_error = e
        try:
            self._serve()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._fail_leftovers()
            self._post(_resolve, self._stopped, None, None)

    def _fail_leftovers(self) -> None:
        """Anything still queued after the thread ends gets an error rather than silence."""
        gone = sqlite3.OperationalError("storage writer is stopped")
        writes: list[WriteOp] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, list):
                writes.extend(item)
            elif isinstance(item, _Call):
                self._post(_resolve, item.future, None, gone)
        if writes:
            self._post(self._on_batch, writes, gone, 0.0)

    def _serve(self) -> None:
        q = self._queue
        while True:
            items = [q.get()]
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            writes: list[WriteOp] = []
            for item in items:
                if isinstance(item, list):
                    writes.extend(item)
                    continue
                if writes:
                    self._commit(writes)
                    writes = []
                if item is _STOP:
                    # The store enqueues nothing after _STOP.
                    return
                assert isinstance(item, _Call)
                self._run_call(item)
            if writes:
                self._commit(writes)

    def _run_call(self, call: _Call[Any]) -> None:
        try:
            if self._conn is None:
                raise self._open_error or sqlite3.OperationalError("database is closed")
            result = call.fn(self._conn)
        except Exception as e:
            self._post(_resolve, call.future, None, e)
        else:
            self._post(_resolve, call.future, result, None)

    def _commit(self, ops: list[WriteOp]) -> None:
        live = [op for op in ops if op.epoch > self._dead_epoch]
        if not live:
            return
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            self._write_batch([op.row for op in live])
        except Exception as e:
            error = e
            self._dead_epoch = max(op.epoch for op in live)
            log.error("storage commit of %d writes failed: %s", len(live), e)
        self._post(self._on_batch, live, error, time.perf_counter() - started)

    def _write_batch(self, rows: list[Row]) -> None:
        conn = self._conn
        if conn is None:
            raise self._open_error or sqlite3.OperationalError("database is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
