"""List, then watch from the list's resourceVersion, resuming after every disconnect (client-go's reflector).

- A watch resumes from the last resourceVersion it saw (events or bookmarks) after any disconnect; only a 410
  Expired answer (`Gone`, as a status or as an ERROR event) makes it list again, after a back-off when the 410 came
  straight after a list, so a server that keeps answering 410 cannot turn the loop into a list loop.
- While the server cannot be reached nothing is reported: an unreachable server is not an empty collection.
  A stopped server is noticed by the client's silence check (see rest.py).
- Reconnects back off exponentially from 1 s to 30 s with +-20 % jitter. When the server had stopped answering
  altogether, the wait ends early once it answers anything again (another request through a client of the same
  server), after a jitter of up to a second, so a server that comes back is rejoined in about a second.

`ListWatcher` runs the loop and calls its hooks (`listing`, `listed`, `event`, `connection_changed`, `restarted`);
subclasses keep whatever they need (the syncer's informer keeps a cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from tmc.client.errors import ApiError, Gone, Unreachable, api_error
from tmc.client.rest import WATCH_IDLE_TIMEOUT, WATCH_SILENCE_CHECK, KubeClient

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
WATCH_TIMEOUT = 300  # seconds the server keeps one watch open before the client re-watches
# A failure counts as "the server stopped answering" when nothing at all was heard from it for this long.
SERVER_SILENT = 5.0


def backoff_delay(backoff: float) -> float:
    """The wait for one back-off step: +-20 % jitter, so many clients do not retry in lockstep."""
    return backoff * (0.8 + 0.4 * random.random())


class ListWatcher:
    """Lists and watches one collection (`path`, optional label selector) for as long as `run` runs. `name` labels
    the log records."""

    log = logging.getLogger("tmc.client.watch")

    def __init__(
        self,
        client: KubeClient,
        path: str,
        *,
        name: str,
        label_selector: str = "",
        silence_check: float = WATCH_SILENCE_CHECK,
        idle_timeout: float = WATCH_IDLE_TIMEOUT,
    ) -> None:
        self.client = client
        self.path = path
        self.name = name
        self.label_selector = label_selector
        self.silence_check = silence_check
        self.idle_timeout = idle_timeout
        self.connected = False
        self.resource_version = ""
        self.last_error = ""
        self._backoff = BACKOFF_START
        self._just_listed = False  # nothing delivered since the last list

    # ---------------------------------------------------------------- hooks

    def listing(self) -> None:
        """A list is about to be sent."""

    def listed(self, items: list[dict[str, Any]]) -> None:
        """A list answered with `items`; `resource_version` is already the list's."""

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        """An ADDED, MODIFIED or DELETED event (bookmarks only move `resource_version`)."""

    def connection_changed(self, connected: bool) -> None:
        """The watch connected (the server accepted a list or a watch) or lost its connection."""

    def restarted(self, reason: str) -> None:
        """A watch ended and will be re-opened: closed, unreachable, error, or expired (a list follows)."""

    # ---------------------------------------------------------------- the loop

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.connection_changed(connected)

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
                    self.restarted("closed")
                    continue
                self.restarted("closed")  # ended without a single event or bookmark: do not spin
                await asyncio.sleep(backoff_delay(self._backoff))
            except ApiError as e:
                self._set_connected(False)
                self.last_error = str(e)
                if isinstance(e, Gone):
                    self.restarted("expired")
                    self.log.info("watch expired; listing again", extra={"informer": self.name})
                    relist = True
                    if not self._just_listed:
                        continue
                    # Expired straight after a list: back off rather than turn into a list loop.
                else:
                    if watching:
                        self.restarted("error")
                    self.log.warning("list/watch failed", extra={"informer": self.name, "error": str(e)})
                await asyncio.sleep(backoff_delay(self._backoff))
            except Unreachable as e:
                failed_at = time.monotonic()
                silent = failed_at - self.client.health.last_answer >= SERVER_SILENT
                self.last_error = str(e)
                self._set_connected(False)
                if watching:
                    self.restarted("unreachable")
                self.log.warning(
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

    async def _list(self) -> None:
        self.listing()
        params = {"labelSelector": self.label_selector} if self.label_selector else {}
        items, rv = await self.client.list_all(self.path, params)
        self._set_connected(True)
        self._just_listed = True
        self.resource_version = rv
        self.listed(items)

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
                    raise api_error(code, str(obj.get("reason") or ""), str(obj.get("message") or ""), obj)
                if not delivered:
                    delivered = True
                    self._backoff = BACKOFF_START  # the server is serving this watch again
                    self._just_listed = False
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if rv:
                    self.resource_version = rv
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.event(str(kind), obj)
        return delivered
