"""When each server last answered anything, shared by every client talking to it.

A watch that has gone quiet cannot tell a quiet collection from a stopped server (SIGSTOP, a suspended VM keeps its
TCP connections open). It asks this record instead: an answer to any request in the last few seconds means the
server is alive, otherwise one shared probe decides. Back-offs use it too: a client waiting to reconnect to a
server that had stopped answering can stop waiting as soon as anything gets an answer from it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class ServerHealth:
    """When one server last answered (monotonic seconds)."""

    last_answer: float = 0.0
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)
    _probe: asyncio.Task[bool] | None = None

    def answered(self) -> None:
        self.last_answer = time.monotonic()
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_answer(self, after: float, timeout: float) -> bool:
        """Wait up to `timeout` seconds for an answer later than `after` (monotonic); True when one came."""
        if self.last_answer > after:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def answers(self, within: float, probe: Callable[[], Coroutine[Any, Any, bool]]) -> bool:
        """True when the server answered anything in the last `within` seconds or answers a probe now. Concurrent
        callers share one probe."""
        if time.monotonic() - self.last_answer < within:
            return True
        task = self._probe
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._probe = asyncio.ensure_future(probe())
        return await asyncio.shield(task)


_servers: dict[str, ServerHealth] = {}


def server_health(url: str) -> ServerHealth:
    """The shared health record of the server at `url` (only its scheme, host and port count)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    health = _servers.get(origin)
    if health is None:
        health = _servers[origin] = ServerHealth()
    return health
