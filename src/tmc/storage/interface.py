"""The storage contract the API server and the controllers use.

Keys look like etcd keys (`/registry/<group>/<resource>/<cluster>/[<namespace>/]<name>`); lists and watches take a
key prefix. The store owns revisions: every write gets the next global revision, which is the object's
`metadata.resourceVersion`. Objects handed out are shared and must never be mutated by callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StorageError(Exception):
    def __init__(self, key: str, message: str = "", pending_rev: int = 0) -> None:
        super().__init__(message or key)
        self.key = key
        # A write of the key that is queued but not yet committed: reads show the truth once this revision is.
        self.pending_rev = pending_rev


class KeyExistsError(StorageError):
    """create() of a key that already exists."""


class KeyNotFoundError(StorageError):
    """update()/delete() of a key that does not exist."""


class ConflictError(StorageError):
    """update()/delete() whose expected revision is not the current one."""


class CompactedError(StorageError):
    """A list snapshot or watch start older than the retained history (the API answers 410 Expired)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__("", f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    rev: int  # the revision of the last write to this key (== metadata.resourceVersion)
    obj: dict[str, Any]  # shared; never mutate
    raw: bytes  # orjson encoding of obj, reused for responses


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    key: str
    rev: int
    obj: dict[str, Any]  # new state; for DELETED the last state with resourceVersion = the delete revision
    raw: bytes
    prev: dict[str, Any] | None  # state before this event (None for ADDED)


class Watch(Protocol):
    """Events for one prefix in revision order. Iteration ends when the watch is closed, by the caller, by
    store shutdown, or because the consumer fell too far behind (the client then re-watches from its last RV)."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def next(self, timeout: float) -> Event | None:
        """The next event, None after `timeout` seconds without one; StopAsyncIteration once the watch ended."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    @property
    def current_rev(self) -> int:
        """Revision of the newest committed write (0 for an empty store)."""
        ...

    @property
    def compacted_rev(self) -> int:
        """Oldest revision still served: watches from, and snapshots at, a revision below it raise CompactedError."""
        ...

    async def start(self) -> None: ...

    def problem(self) -> str:
        """Why the store cannot take writes now, "" when it can (the health monitor's storage check)."""
        ...

    async def close(self) -> None:
        """Finish pending writes, end all watches, release files."""
        ...

    async def create(self, key: str, obj: dict[str, Any]) -> Entry:
        """Store a new key; sets obj's metadata.resourceVersion. Raises KeyExistsError. Returns once durable."""
        ...

    async def update(self, key: str, obj: dict[str, Any], expected_rev: int | None = None) -> Entry:
        """Replace a key; `expected_rev` (when given) must equal the current revision. Raises KeyNotFoundError,
        ConflictError. Returns once durable."""
        ...

    async def delete(self, key: str, expected_rev: int | None = None) -> Entry:
        """Remove a key; returns the last state with resourceVersion set to the delete revision."""
        ...

    def get(self, key: str) -> Entry | None:
        """Newest committed state."""
        ...

    def list(self, prefix: str, start_after: str = "", at_rev: int = 0) -> Iterator[Entry]:
        """Committed entries under prefix in key order, beginning after `start_after` (for continue tokens).
        `at_rev` > 0 gives the snapshot as of that revision; raises CompactedError when it is older than
        the retained history."""
        ...

    def count(self, prefix: str, start_after: str = "") -> int:
        """Current keys under prefix (after `start_after` when given)."""
        ...

    def changed_keys(self, since_rev: int, prefix: str) -> Sequence[str] | None:
        """Keys under prefix written after `since_rev`, oldest first (a key written twice is listed twice); None
        when the retained history no longer reaches back to `since_rev`."""
        ...

    def watch(self, prefix: str, from_rev: int) -> Watch:
        """Events under prefix with revision > from_rev: first the retained history, then live.
        Raises CompactedError when from_rev is older than the retained history."""
        ...

    async def wait_for_rev(self, rev: int, timeout: float) -> bool:
        """Wait until current_rev >= rev; False on timeout."""
        ...
