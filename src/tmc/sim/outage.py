"""The soft outage switch: while `<data-dir>/<name>.outage` exists the cluster stops answering.

New requests (health endpoints included) are accepted but get no answer until the file is removed, then they are
served; requests already in flight when the outage starts, open watches in particular, have their connections cut,
so a client's re-watch also hangs. The file is looked at by one background task every 200 ms, never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("tmc.sim.outage")
POLL_SECONDS = 0.2


class OutageSwitch:
    def __init__(self, path: str) -> None:
        self.path = path
        self.active = False
        self._restored = asyncio.Event()
        self._restored.set()
        self._closing = False
        self._inflight: set[asyncio.Transport] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._check()
        self._task = asyncio.create_task(self._poll(), name="sim-outage-switch")

    async def stop(self) -> None:
        """Release held requests (they are refused) so shutdown does not wait for an outage to end."""
        self._closing = True
        self._restored.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            self._check()

    def _check(self) -> None:
        active = os.path.exists(self.path)
        if active == self.active:
            return
        self.active = active
        if active:
            log.warning("outage started: not answering API requests", extra={"switch": self.path})
            self._restored.clear()
            for transport in list(self._inflight):
                transport.abort()
            self._inflight.clear()
        else:
            log.warning("outage ended: answering API requests again", extra={"switch": self.path})
            self._restored.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.active:
            await self._restored.wait()
            if self._closing:
                if request.transport is not None:
                    request.transport.abort()
                raise web.HTTPServiceUnavailable(text="shutting down")
        transport = request.transport
        if transport is None:
            return await handler(request)
        self._inflight.add(transport)
        try:
            return await handler(request)
        finally:
            self._inflight.discard(transport)
