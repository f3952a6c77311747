"""The in-memory event history: the newest N events, used for watch replay and list snapshots."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from tmc.storage.interface import Entry, Event

# An event plus the full entry it replaced (None for ADDED); the entry keeps the old revision and raw bytes so a
# snapshot can hand the old state out without re-encoding it.
Record = tuple[Event, Entry | None]


class EventHistory:
    """Events in revision order. Invariant: every event with rev > `floor` is retained (so `floor` is the oldest
    revision a watch can start from or a snapshot can be taken at)."""

    __slots__ = ("_records", "_window", "floor")

    def __init__(self, window: int, floor: int = 0) -> None:
        if window < 1:
            raise ValueError("history window must be at least 1")
        self._window = window
        self._records: deque[Record] = deque()
        self.floor = floor

    def __len__(self) -> int:
        return len(self._records)

    def append(self, event: Event, prev: Entry | None) -> None:
        records = self._records
        records.append((event, prev))
        if len(records) > self._window:
            self.floor = records.popleft()[0].rev

    def extend(self, records: Iterable[Record]) -> None:
        for event, prev in records:
            self.append(event, prev)

    def trim_to(self, rev: int) -> None:
        """Forget every event at or below rev."""
        records = self._records
        while records and records[0][0].rev <= rev:
            records.popleft()
        self.floor = max(self.floor, rev)

    def since(self, rev: int, prefix: str) -> list[Event]:
        """Events under prefix with revision > rev, oldest first. Walks back from the newest event, so the cost
        is proportional to how far back rev is, not to the window size."""
        out: list[Event] = []
        for event, _ in reversed(self._records):
            if event.rev <= rev:
                break
            if event.key.startswith(prefix):
                out.append(event)
        out.reverse()
        return out

    def state_at(self, rev: int, prefix: str) -> dict[str, Entry | None]:
        """For every key under prefix written after rev: its entry as of rev (None when it did not exist)."""
        changed: dict[str, Entry | None] = {}
        for event, prev in reversed(self._records):
            if event.rev <= rev:
                break
            if event.key.startswith(prefix):
                # Walking newest to oldest, the last assignment is the state before the oldest later event.
                changed[event.key] = prev
        return changed
