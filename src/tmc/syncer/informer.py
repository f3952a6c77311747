"""List-then-watch caches over the client layer's `ListWatcher`, with the syncer's safety rules built in.

The list, watch, resume, back-off and reconnect rules are the ListWatcher's (see tmc.client.watch). On top:

- While the server cannot be reached, the cache is kept as it was and nothing is reported: an unreachable hub is
  not an empty hub (https://github.com/kcp-dev/kcp/issues/2671).
- A relist reports the objects that are no longer listed as VANISHED, not DELETED: the handler must confirm with
  the server before acting on them (the syncer does, with a GET).
- An optional `transform` slims every object before it is cached or handed on (the heartbeat keeps only what its
  sums need of each Pod); it must keep `metadata.name`, `namespace` and `resourceVersion`.
- Lists and watch restarts are counted in tmc_syncer_lists_total and tmc_syncer_watch_restarts_total.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tmc.client.rest import WATCH_IDLE_TIMEOUT, WATCH_SILENCE_CHECK, KubeClient
from tmc.client.watch import ListWatcher
from tmc.syncer import metrics

# (event type, object, cache key); types: ADDED, MODIFIED, DELETED, VANISHED (missing from a relist).
Handler = Callable[[str, dict[str, Any], str], None]
KeyOf = Callable[[dict[str, Any]], str]
Transform = Callable[[dict[str, Any]], dict[str, Any]]


def namespaced_key(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace') or ''}/{md.get('name')}"


def resource_version(obj: dict[str, Any]) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


class Informer(ListWatcher):
    """One collection (`path`, optional label selector) kept in `cache`, changes passed to `handler`. `name` is
    `<endpoint>/<resource>` (e.g. `hub/deployments.apps`); with `cluster` it labels logs and metrics."""

    log = logging.getLogger("tmc.syncer.informer")

    def __init__(
        self,
        client: KubeClient,
        path: str,
        handler: Handler,
        *,
        name: str,
        key_of: KeyOf = namespaced_key,
        label_selector: str = "",
        on_connection: Callable[[Informer, bool], None] | None = None,
        cluster: str = "",
        silence_check: float = WATCH_SILENCE_CHECK,
        idle_timeout: float = WATCH_IDLE_TIMEOUT,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(
            client,
            path,
            name=name,
            label_selector=label_selector,
            silence_check=silence_check,
            idle_timeout=idle_timeout,
        )
        self.handler = handler
        self.key_of = key_of
        self.on_connection = on_connection
        self.transform = transform
        self.cache: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        endpoint, _, resource = name.partition("/")
        self._labels = (cluster, endpoint, resource or endpoint)

    def remember(self, obj: dict[str, Any]) -> None:
        """Put an object a write just returned into the cache, unless the cache already holds a newer state. This
        keeps the next reconcile from acting on the state before its own write while the watch event is in flight."""
        if self.transform is not None:
            obj = self.transform(obj)
        key = self.key_of(obj)
        current = self.cache.get(key)
        if current is None or resource_version(obj) >= resource_version(current):
            self.cache[key] = obj

    # ---------------------------------------------------------------- ListWatcher hooks

    def connection_changed(self, connected: bool) -> None:
        if self.on_connection is not None:
            self.on_connection(self, connected)

    def restarted(self, reason: str) -> None:
        metrics.WATCH_RESTARTS.labels(*self._labels, reason).inc()

    def listing(self) -> None:
        metrics.LISTS.labels(*self._labels, "expired" if self.synced.is_set() else "initial").inc()

    def listed(self, items: list[dict[str, Any]]) -> None:
        if self.transform is not None:
            items = [self.transform(obj) for obj in items]
        fresh = {self.key_of(obj): obj for obj in items}
        old = self.cache
        self.cache = fresh
        for key, obj in old.items():
            if key not in fresh:
                self.handler("VANISHED", obj, key)
        for key, obj in fresh.items():
            previous = old.get(key)
            if previous is None:
                self.handler("ADDED", obj, key)
            elif resource_version(previous) != resource_version(obj):
                self.handler("MODIFIED", obj, key)
        self.synced.set()

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        if self.transform is not None:
            obj = self.transform(obj)
        key = self.key_of(obj)
        if kind == "DELETED":
            self.cache.pop(key, None)
        else:
            self.cache[key] = obj
        self.handler(kind, obj, key)
