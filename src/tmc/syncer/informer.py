"""List-then-watch caches over the async client, with the syncer's safety rules built in.

- A watch resumes from the last resourceVersion it saw (events or bookmarks) after any disconnect; only a 410
  Expired answer makes it list again.
- While the server cannot be reached, the cache is kept as it was and nothing is reported: an unreachable hub is
  not an empty hub (kcp #2671). Reconnects back off from 1 s to 30 s.
- A relist reports the objects that are no longer listed as VANISHED, not DELETED: the handler must confirm with
  the server before acting on them (the syncer does, with a GET).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from tmc.syncer.client import ApiError, KubeClient, Unreachable

log = logging.getLogger("tmc.syncer.informer")

# (event type, object, cache key); types: ADDED, MODIFIED, DELETED, VANISHED (missing from a relist).
Handler = Callable[[str, dict[str, Any], str], None]
KeyOf = Callable[[dict[str, Any]], str]

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
WATCH_TIMEOUT = 300  # seconds the server keeps one watch open before the client re-watches


def namespaced_key(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace') or ''}/{md.get('name')}"


def resource_version(obj: dict[str, Any]) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


class Informer:
    """One collection (`path`, optional label selector) kept in `cache`, changes passed to `handler`."""

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
        idle_timeout: float = 90.0,
    ) -> None:
        self.client = client
        self.path = path
        self.handler = handler
        self.name = name
        self.key_of = key_of
        self.label_selector = label_selector
        self.on_connection = on_connection
        self.idle_timeout = idle_timeout
        self.cache: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.connected = False
        self.resource_version = ""
        self.last_error = ""

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self.on_connection is not None:
                self.on_connection(self, connected)

    def remember(self, obj: dict[str, Any]) -> None:
        """Put an object a write just returned into the cache, unless the cache already holds a newer state. This
        keeps the next reconcile from acting on the state before its own write while the watch event is in flight."""
        key = self.key_of(obj)
        current = self.cache.get(key)
        if current is None or resource_version(obj) >= resource_version(current):
            self.cache[key] = obj

    async def run(self) -> None:
        backoff = BACKOFF_START
        relist = True
        while True:
            try:
                if relist:
                    await self._list()
                    relist = False
                    backoff = BACKOFF_START
                if await self._watch():
                    backoff = BACKOFF_START
                    continue
            except ApiError as e:
                if e.code == 410:
                    log.info("watch expired; listing again", extra={"informer": self.name})
                    relist = True
                    continue
                self.last_error = str(e)
                log.warning("list/watch failed", extra={"informer": self.name, "error": str(e)})
            except Unreachable as e:
                self.last_error = str(e)
                self._set_connected(False)
                log.warning("server unreachable", extra={"informer": self.name, "error": str(e), "retry_in": backoff})
            await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
            backoff = min(BACKOFF_MAX, backoff * 2)

    async def _list(self) -> None:
        params = {"labelSelector": self.label_selector} if self.label_selector else {}
        items, rv = await self.client.list_all(self.path, params)
        self._set_connected(True)
        fresh = {self.key_of(obj): obj for obj in items}
        old = self.cache
        self.cache = fresh
        self.resource_version = rv
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

    async def _watch(self) -> bool:
        """Watch from the last resourceVersion until the stream ends; True when it delivered anything."""
        params = {"resourceVersion": self.resource_version, "timeoutSeconds": str(WATCH_TIMEOUT)}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        delivered = False
        async for event in self.client.watch(self.path, params, idle_timeout=self.idle_timeout):
            self._set_connected(True)
            delivered = True
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 0)
                raise ApiError(code, str(obj.get("reason") or ""), str(obj.get("message") or ""), obj)
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if rv:
                self.resource_version = rv
            if kind == "BOOKMARK":
                continue
            key = self.key_of(obj)
            if kind == "DELETED":
                self.cache.pop(key, None)
            elif kind in ("ADDED", "MODIFIED"):
                self.cache[key] = obj
            else:
                continue
            self.handler(str(kind), obj, key)
        return delivered
