"""Watch fan-out: watchers indexed by prefix, each with a bounded buffer that closes the watch on overflow."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from tmc.storage.interface import Event
from tmc.storage.metrics import STORAGE_WATCH_OVERFLOWS, STORAGE_WATCHERS


class StoreWatch:
    """One watch: replayed history first, then live events. Implements the `Watch` protocol.

    `overflowed` tells why iteration ended early: True when the consumer fell more than `limit` live events behind
    (the client should re-watch from the last revision it saw)."""

    __slots__ = (
        "_hub",
        "_limit",
        "_live",
        "_min_rev",
        "_replay",
        "_replay_pos",
        "_waiter",
        "closed",
        "overflowed",
        "prefix",
    )

    def __init__(self, hub: WatcherHub, prefix: str, from_rev: int, replay: list[Event], limit: int) -> None:
        self.prefix = prefix
        self.closed = False
        self.overflowed = False
        self._hub = hub
        self._min_rev = from_rev
        # Replay events are already held by the history, so they do not count against the live limit.
        self._replay = replay
        self._replay_pos = 0
        self._live: deque[Event] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> StoreWatch:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self.closed:
                raise StopAsyncIteration
            if self._replay_pos < len(self._replay):
                event = self._replay[self._replay_pos]
                self._replay_pos += 1
                if self._replay_pos == len(self._replay):
                    self._replay = []
                    self._replay_pos = 0
                return event
            if self._live:
                return self._live.popleft()
            # Cancelling the caller cancels only this waiter; buffered events stay for the next call.
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` seconds without one. Unlike wrapping `__anext__` in
        `asyncio.wait`, this creates no task per event, which matters with hundreds of watchers per change."""
        if self.closed:
            raise StopAsyncIteration
        if self._replay or self._live:
            return await self.__anext__()
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if self._waiter is waiter:
                self._waiter = None
        if self.closed:
            raise StopAsyncIteration
        if self._replay or self._live:
            return await self.__anext__()
        return None

    def close(self) -> None:
        if self.closed:
            return
        self._end()
        self._hub.remove(self)

    def pending(self) -> int:
        """Events buffered and not yet consumed."""
        return len(self._replay) - self._replay_pos + len(self._live)

    def _end(self) -> None:
        self.closed = True
        self._replay = []
        self._live.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, events: Sequence[Event]) -> bool:
        """Queue live events; False when the watch is (now) closed and must leave the index."""
        if self.closed:
            return False
        if events[0].rev <= self._min_rev:
            # Only for watches started at a revision the store had not reached yet.
            events = [e for e in events if e.rev > self._min_rev]
            if not events:
                return True
        if len(self._live) + len(events) > self._limit:
            self.overflowed = True
            STORAGE_WATCH_OVERFLOWS.inc()
            self._end()
            return False
        self._live.extend(events)
        self._wake()
        return True


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class WatcherHub:
    """Watchers indexed by prefix. An event for key k reaches the watchers registered at "" and at every prefix of k
    ending in '/' (one dict lookup each); prefixes not ending in '/' (e.g. an exact key) are matched with startswith,
    which costs nothing when, as usual, there are none."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[StoreWatch]] = {}
        self._odd: set[str] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, watch: StoreWatch) -> None:
        prefix = watch.prefix
        self._by_prefix.setdefault(prefix, set()).add(watch)
        if prefix and not prefix.endswith("/"):
            self._odd.add(prefix)
        self._count += 1
        STORAGE_WATCHERS.inc()

    def remove(self, watch: StoreWatch) -> None:
        prefix = watch.prefix
        members = self._by_prefix.get(prefix)
        if members is None or watch not in members:
            return
        members.discard(watch)
        if not members:
            del self._by_prefix[prefix]
            self._odd.discard(prefix)
        self._count -= 1
        STORAGE_WATCHERS.dec()

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver a committed batch (in revision order). Each watcher gets one list per batch, so the per-watcher
        cost is one buffer extend and at most one wake-up, however many events the batch holds."""
        if not self._count:
            return
        by_prefix = self._by_prefix
        odd = self._odd
        batches: dict[str, list[Event]] = {}
        for event in events:
            key = event.key
            if "" in by_prefix:
                batches.setdefault("", []).append(event)
            i = key.find("/")
            while i >= 0:
                prefix = key[: i + 1]
                if prefix in by_prefix:
                    batches.setdefault(prefix, []).append(event)
                i = key.find("/", i + 1)
            for prefix in odd:
                if key.startswith(prefix):
                    batches.setdefault(prefix, []).append(event)
        dead: list[StoreWatch] = []
        for prefix, batch in batches.items():
            for watch in by_prefix[prefix]:
                if not watch._push(batch):
                    dead.append(watch)
        for watch in dead:
            self.remove(watch)

    def close_all(self) -> None:
        for members in list(self._by_prefix.values()):
            for watch in list(members):
                watch.close()
