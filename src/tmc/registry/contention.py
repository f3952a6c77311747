"""Turns for writers of one object, taken only when they collide.

An unconditional update, patch or apply (no resourceVersion from the client) that loses a race reads the object
again and retries, as kube-apiserver's GuaranteedUpdate does. When many such writers hit one object at once, they
lose to each other round after round: with a bounded number of attempts most of them ended in a 409 the client
never asked for (200 concurrent merge patches of one ConfigMap: 8 succeeded). So a writer that lost once waits for
the object's turn and retries holding it; writers that never collide take no turn and pay nothing.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class _Slot:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holding or waiting


class Turns:
    """A lock per object key, made when a writer first needs one and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    def of(self, key: str) -> Turn:
        return Turn(self._slots, key)


class Turn:
    """`async with turns.of(key) as turn:` around a write's attempts; `await turn.take()` after a lost race."""

    __slots__ = ("_key", "_slots", "_taken")

    def __init__(self, slots: dict[str, _Slot], key: str) -> None:
        self._slots = slots
        self._key = key
        self._taken = False

    async def take(self) -> None:
        if self._taken:
            return
        slot = self._slots.get(self._key)
        if slot is None:
            slot = self._slots[self._key] = _Slot()
        slot.users += 1
        try:
            await slot.lock.acquire()
        except BaseException:
            self._leave(slot)
            raise
        self._taken = True

    def _leave(self, slot: _Slot) -> None:
        slot.users -= 1
        if not slot.users:
            del self._slots[self._key]

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._taken:
            slot = self._slots[self._key]
            slot.lock.release()
            self._leave(slot)
