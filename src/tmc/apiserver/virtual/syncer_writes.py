"""Writes through the syncer virtual workspace, combined per hub object.

Every target's syncer writes the same hub objects: each adds its finalizer when the object arrives, and reports
its member cluster's status into its own annotation, so with N targets an object gets N writes at about the same
time. Written one by one, each must read the state the previous one committed (one group commit each, in
sequence), and each write wakes the hub's controllers and watchers again. Instead, the writes queued for an object
while one is being committed are applied together, in arrival order, to the newest state and stored as one write:
the same result as writing them one after the other, in one commit.

A write that pins a resourceVersion is applied alone (its precondition names exactly one state). A write whose own
change is invalid fails alone; when a combined write is refused, each write in it is retried on its own so that
one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo
from tmc.protocol.view import apply_write, is_assigned, to_view
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Store

WRITE_ATTEMPTS = 8
SETTLE_SECONDS = 1.0  # longest wait for a racing write to commit before the next attempt


@dataclass
class ViewWrite:
    """One syncer's write: `make_view` turns the target's current view into the view it wants."""

    target_key: str
    make_view: Callable[[dict[str, Any]], dict[str, Any]]
    subresource: str
    pinned: str = ""  # the resourceVersion the client requires, or ""
    manager: str = "syncer"  # the field manager: the request's fieldManager, else its User-Agent product
    future: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class HubObject:
    info: ResourceInfo
    cluster: str
    namespace: str | None
    name: str

    @property
    def key(self) -> str:
        return self.info.key(self.cluster, self.namespace, self.name)


class WriteCombiner:
    def __init__(self, store: Store, service: ObjectService) -> None:
        self.store = store
        self.service = service
        self._locks = _KeyedLocks()
        self._queued: dict[str, list[ViewWrite]] = {}
        self._flushing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, obj: HubObject, write: ViewWrite) -> dict[str, Any]:
        """Apply one write; returns the target's view of the object afterwards."""
        if write.pinned:
            async with self._locks.hold(obj.key):
                await self._apply(obj, [write])
            return await write.future
        self._queued.setdefault(obj.key, []).append(write)
        if obj.key not in self._flushing:
            self._flushing.add(obj.key)
            task = asyncio.create_task(self._flush(obj))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await write.future

    async def _flush(self, obj: HubObject) -> None:
        try:
            async with self._locks.hold(obj.key):
                while batch := self._queued.pop(obj.key, []):
                    await self._apply(obj, batch)
        except asyncio.CancelledError:  # shutting down: nobody may wait forever
            for w in self._queued.pop(obj.key, []):
                _fail(w, _unavailable())
            raise
        finally:
            self._flushing.discard(obj.key)

    async def _apply(self, obj: HubObject, batch: list[ViewWrite]) -> None:
        try:
            await self._apply_once(obj, batch)
        except errors.StatusError as e:
            if len(batch) == 1:
                _fail(batch[0], e)
                return
            for w in batch:  # refused together: each on its own, so only the culprit fails
                if not w.future.done():
                    await self._apply(obj, [w])
        except asyncio.CancelledError:
            for w in batch:
                _fail(w, _unavailable())
            raise
        except Exception as e:  # the requests answer 500, as they would have written alone
            for w in batch:
                _fail(w, e)

    async def _apply_once(self, obj: HubObject, batch: list[ViewWrite]) -> None:
        info = obj.info
        pinned = len(batch) == 1 and bool(batch[0].pinned)
        for _ in range(WRITE_ATTEMPTS):
            entry = self.store.get(obj.key)
            current = self.service.served(info, entry.obj) if entry is not None else None
            new = current
            applied: list[ViewWrite] = []
            for w in batch:
                if w.future.done():
                    continue
                if new is None or not is_assigned(new, w.target_key):
                    _fail(w, errors.not_found(info.plural, obj.name, info.group))
                    continue
                assert entry is not None
                if w.pinned and w.pinned != str(entry.rev):
                    _fail(w, errors.conflict(info.plural, obj.name, info.group))
                    continue
                try:
                    wanted = w.make_view(to_view(new, w.target_key, obj.cluster))
                    patched_rv = str((wanted.get("metadata") or {}).get("resourceVersion") or "")
                    if patched_rv and patched_rv != str(entry.rev):
                        raise errors.conflict(info.plural, obj.name, info.group)
                    changed = apply_write(new, wanted, w.target_key, w.subresource)
                except errors.StatusError as e:
                    _fail(w, e)
                    continue
                new = changed if changed is not None else new
                applied.append(w)
            if not applied:
                return
            assert entry is not None and new is not None
            if new is current:
                _answer(applied, new, obj.cluster)  # nothing to write
                return
            new["metadata"]["resourceVersion"] = str(entry.rev)
            try:
                written = await self.service.update(
                    info,
                    obj.cluster,
                    obj.namespace,
                    obj.name,
                    new,
                    WriteOptions(field_manager=applied[0].manager, body_owned=True),
                )
            except errors.StatusError as e:
                if e.code == 409 and e.reason == "Conflict" and not pinned:
                    # Someone else wrote since we read, usually a write still queued for commit: reads show it only
                    # once it is committed, so wait for the next commit before recomputing from the new state
                    # (retrying at once would read the same state and lose every attempt).
                    await self.store.wait_for_rev(self.store.current_rev + 1, SETTLE_SECONDS)
                    continue
                raise
            _answer(applied, self.service.served(info, written), obj.cluster)
            return
        for w in batch:
            _fail(w, errors.conflict(info.plural, obj.name, info.group))


def _answer(writes: list[ViewWrite], obj: dict[str, Any], cluster: str) -> None:
    for w in writes:
        if not w.future.done():
            w.future.set_result(to_view(obj, w.target_key, cluster))


def _unavailable() -> errors.StatusError:
    return errors.StatusError(503, "ServiceUnavailable", "the server is shutting down")


def _fail(write: ViewWrite, error: BaseException) -> None:
    if not write.future.done():
        write.future.set_exception(error)


class _KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
