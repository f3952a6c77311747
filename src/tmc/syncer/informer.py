"""List-then-watch caches over the async client, with the syncer's safety rules built in.

- A watch resumes from the last resourceVersion it saw (events or bookmarks) after any disconnect; only a 410
  Expired answer makes it list again (after a back-off when the 410 came straight after a list, so a server that
  keeps answering 410 cannot turn the informer into a list loop).
- While the server cannot be reached, the cache is kept as it was and nothing is reported: an unreachable hub is not
  an empty hub (https://github.com/kcp-dev/kcp/issues/2671). A stopped server is noticed by the client's silence check
  (see client.py).
- Reconnects back off exponentially from 1 s to 30 s with +-20 % jitter. When the server had stopped answering
  altogether, the wait ends early once it answers anything again (a heartbeat, another watch), after a jitter of
  up to a second, so a hub that comes back is rejoined in about a second rather than after the current back-off.
- A relist reports the objects that are no longer listed as VANISHED, not DELETED: the handler must confirm with
  the server before acting on them (the syncer does, with a GET).
- An optional `transform` slims every object before it is cached or handed on (the heartbeat keeps only what its
  sums need of each Pod); it must keep `metadata.name`, `namespace` and `resourceVersion`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from tmc.syncer import metrics
from tmc.syncer.client import WATCH_IDLE_TIMEOUT, WATCH_SILENCE_CHECK, ApiError, KubeClient, Unreachable

log = logging.getLogger("tmc.syncer.informer")

# (event type, object, cache key); types: ADDED, MODIFIED, DELETED, VANISHED (missing from a relist).
Handler = Callable[[str, dict[str, Any], str], None]
KeyOf = Callable[[dict[str, Any]], str]
Transform = Callable[[dict[str, Any]], dict[str, Any]]

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
WATCH_TIMEOUT = 300  # seconds the server keeps one watch open before the client re-watches
# A failure counts as "the server stopped answering" when nothing at all was heard from it for this long.
SERVER_SILENT = 5.0


def backoff_delay(backoff: float) -> float:
    """The wait for one back-off step: +-20 % jitter, so many informers do not retry in lockstep."""
    return backoff * (0.8 + 0.4 * random.random())


def namespaced_key(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace') or ''}/{md.get('name')}"


def resource_version(obj: dict[str, Any]) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


class Informer:
    """One collection (`path`, optional label selector) kept in `cache`, changes passed to `handler`. `name` is
    `<endpoint>/<resource>` (e.g. `hub/deployments.apps`); with `cluster` it labels logs and metrics."""

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
        self.client = client
        self.path = path
        self.handler = handler
        self.name = name
        self.key_of = key_of
        self.label_selector = label_selector
        self.on_connection = on_connection
        self.silence_check = silence_check
        self.idle_timeout = idle_timeout
        self.transform = transform
        self.cache: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.connected = False
        self.resource_version = ""
        self.last_error = ""
        self._backoff = BACKOFF_START
        self._just_listed = False  # nothing delivered since the last list
        endpoint, _, resource = name.partition("/")
        self._labels = (cluster, endpoint, resource or endpoint)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self.on_connection is not None:
                self.on_connection(self, connected)

    def remember(self, obj: dict[str, Any]) -> None:
        """Put an object a write just returned into the cache, unless the cache already holds a newer state. This
        keeps the next reconcile from acting on the state before its own write while the watch event is in flight."""
        if self.transform is not None:
            obj = self.transform(obj)
        key = self.key_of(obj)
        current = self.cache.get(key)
        if current is None or resource_version(obj) >= resource_version(current):
            self.cache[key] = obj

    async def run(self) -> None:
        relist = True
        while True:
            watching = False
            try:
                if relist:
                    await self._list()
                    relist = False
                watching = True
                if await self._watch():
                    self._restarted("closed")
                    continue
                self._restarted("closed")  # ended without a single event or bookmark: do not spin
                await asyncio.sleep(backoff_delay(self._backoff))
            except ApiError as e:
                self._set_connected(False)
                self.last_error = str(e)
                if e.code == 410:
                    self._restarted("expired")
                    log.info("watch expired; listing again", extra={"informer": self.name})
                    relist = True
                    if not self._just_listed:
                        continue
                    # Expired straight after a list: back off rather than turn into a list loop.
                else:
                    if watching:
                        self._restarted("error")
                    log.warning("list/watch failed", extra={"informer": self.name, "error": str(e)})
                await asyncio.sleep(backoff_delay(self._backoff))
            except Unreachable as e:
                failed_at = time.monotonic()
                silent = failed_at - self.client.health.last_answer >= SERVER_SILENT
                self.last_error = str(e)
                self._set_connected(False)
                if watching:
                    self._restarted("unreachable")
                log.warning(
                    "server unreachable", extra={"informer": self.name, "error": str(e), "retry_in": self._backoff}
                )
                await self._wait_to_retry(self._backoff, failed_at if silent else None)
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)

    async def _wait_to_retry(self, backoff: float, silent_since: float | None) -> None:
        """Back off; when the server had stopped answering (`silent_since` set), stop waiting once it answers."""
        delay = backoff_delay(backoff)
        if silent_since is None:
            await asyncio.sleep(delay)
            return
        started = time.monotonic()
        if await self.client.health.wait_answer(silent_since, delay):
            remaining = delay - (time.monotonic() - started)
            await asyncio.sleep(min(remaining, random.uniform(0.0, BACKOFF_START)))

    def _restarted(self, reason: str) -> None:
        metrics.WATCH_RESTARTS.labels(*self._labels, reason).inc()

    async def _list(self) -> None:
        metrics.LISTS.labels(*self._labels, "expired" if self.synced.is_set() else "initial").inc()
        params = {"labelSelector": self.label_selector} if self.label_selector else {}
        items, rv = await self.client.list_all(self.path, params)
        if self.transform is not None:
            items = [self.transform(obj) for obj in items]
        self._set_connected(True)
        self._just_listed = True
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
        events = self.client.watch(
            self.path,
            params,
            on_open=lambda: self._set_connected(True),
            silence_check=self.silence_check,
            idle_timeout=self.idle_timeout,
        )
        # aclosing: leaving the loop early (an ERROR event, cancellation) closes the connection now, not at GC.
        async with contextlib.aclosing(events):
            async for event in events:
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    raise ApiError(code, str(obj.get("reason") or ""), str(obj.get("message") or ""), obj)
                if not delivered:
                    delivered = True
                    self._backoff = BACKOFF_START  # the server is serving this watch again
                    self._just_listed = False
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if rv:
                    self.resource_version = rv
                if kind == "BOOKMARK":
                    continue
                if self.transform is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
                    obj = self.transform(obj)
                key = self.key_of(obj)
                if kind == "DELETED":
                    self.cache.pop(key, None)
                elif kind in ("ADDED", "MODIFIED"):
                    self.cache[key] = obj
                else:
                    continue
                self.handler(str(kind), obj, key)
        return delivered
