"""The store's health checks for `/livez` and `/readyz` and the health monitor: `storage` (the store takes writes)
and `watch-cache` (a watch can be opened at the current revision, as every list and watch the API serves needs)."""

from __future__ import annotations

from tmc.observability.health import Check
from tmc.storage.interface import StorageError, Store

STORAGE = "storage"
WATCH_CACHE = "watch-cache"
# Matches no stored key: the probe watch never receives an event.
_PROBE_PREFIX = "/tmc-health-probe/"


def storage_check(store: Store) -> Check:
    problem = store.problem()
    return Check(STORAGE, not problem, problem)


def watch_cache_check(store: Store) -> Check:
    try:
        watch = store.watch(_PROBE_PREFIX, store.current_rev)
    except StorageError as e:
        return Check(WATCH_CACHE, False, f"cannot open a watch: {e}")
    watch.close()
    return Check(WATCH_CACHE, True)


def store_checks(store: Store) -> list[Check]:
    return [storage_check(store), watch_cache_check(store)]
