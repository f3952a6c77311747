"""Where the hub keeps its objects: the `Store` contract (revisioned create, get, list, update, delete and watch;
see interface.py) and its SQLite backend, with watch fan-out and history for resumable watches."""

from __future__ import annotations

import os

from tmc.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    Store,
    Watch,
)

SUPPORTED_BACKENDS = ("sqlite",)

__all__ = [
    "SUPPORTED_BACKENDS",
    "CompactedError",
    "ConflictError",
    "Entry",
    "Event",
    "EventType",
    "KeyExistsError",
    "KeyNotFoundError",
    "StorageError",
    "Store",
    "Watch",
    "open_store",
]


def open_store(kind: str, data_dir: str) -> Store:
    """A store of the given backend under data_dir (created if missing). The caller must `await store.start()`
    before use and `await store.close()` at shutdown."""
    if kind == "sqlite":
        # Imported here so that importing the package does not load a backend (and its metrics) nobody uses.
        from tmc.storage.sqlite import SqliteStore

        os.makedirs(data_dir, exist_ok=True)
        return SqliteStore(os.path.join(data_dir, "tmc.db"))
    raise ValueError(f"unknown storage backend {kind!r}; supported: {', '.join(SUPPORTED_BACKENDS)}")
