"""Bounded connections: the listening site accepts sockets itself so that it can cap their number and time the TLS
handshake, and each connection's protocol closes it when a request's headers do not arrive within the header timeout
(slowloris, or a client that connects and never sends a request). Idle keep-alive connections are closed by aiohttp's
own keep-alive timer, set to the idle timeout. Malformed request heads are answered with a Kubernetes Status."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from tmc.apimachinery import errors

log = logging.getLogger("tmc.server")
# After this many connections have closed, once things settle for TRIM_DELAY seconds, memory is handed back.
TRIM_AFTER_CLOSED = 1000
TRIM_DELAY = 1.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to trim
    return trim


_malloc_trim = _load_malloc_trim()


@dataclass
class ConnectionLimits:
    header_timeout: float = 30.0  # from accept (TLS handshake included), or from a request's first byte, to its headers
    idle_timeout: float = 90.0  # a keep-alive connection with no request in progress
    max_connections: int = 10_000  # open sockets, handshaking ones included; 0 = no limit
    max_line_size: int = 16 * 1024  # request line, and each header line
    max_headers: int = 128

    def handler_args(self) -> dict[str, Any]:
        """Keyword arguments for aiohttp's RequestHandler."""
        return {
            "keepalive_timeout": self.idle_timeout,
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_line_size,
            "max_headers": self.max_headers,
            "access_log": None,
        }


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with a header timeout and Status answers for malformed request heads."""

    def __init__(
        self,
        manager: Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        accepted_at: float,
        release: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self.made = False
        self._header_timeout = header_timeout
        # The first request's clock starts at accept, so a slow or silent TLS handshake counts against it too.
        self._header_started: float | None = accepted_at
        self._header_timer: asyncio.TimerHandle | None = None
        self._release: Callable[[], None] | None = release

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True
        super().connection_made(transport)
        assert self._header_started is not None
        self._arm(self._header_started + self._header_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        release, self._release = self._release, None
        if release is not None:
            release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_started is None and self._awaiting_request():
            # The first bytes of the next request on a kept-alive connection.
            self._header_started = self._loop.time()
            self._arm(self._header_started + self._header_timeout)
        super().data_received(data)
        if not self._awaiting_request():
            self._header_started = None  # headers complete; the body and the handler are not timed here

    def _awaiting_request(self) -> bool:
        # aiohttp's own keep-alive check uses the same state: start() waits on _waiter for the next parsed request.
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm(self, when: float) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(when, self._header_deadline)

    def _header_deadline(self) -> None:
        self._header_timer = None
        started = self._header_started
        if started is None or not self._awaiting_request():
            return
        deadline = started + self._header_timeout
        if self._loop.time() < deadline:
            self._arm(deadline)
            return
        log.debug("closing a connection whose request headers did not arrive within %ss", self._header_timeout)
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """A Status instead of aiohttp's plain text. Go's server (kube-apiserver) answers 431 for request heads over
        its limit; this server's limit is per line, so a request line or header line over it gets the same 431."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; no error can be sent")
        text = getattr(exc, "message", None) or message or (str(exc) if exc else "")
        if isinstance(exc, LineTooLong) or "too many headers" in str(text).lower():
            err = errors.StatusError(431, "RequestHeaderFieldsTooLarge", f"request header fields too large: {text}")
        elif isinstance(exc, ContentEncodingError):
            err = errors.unsupported_media_type(f"unsupported Content-Encoding: {text}")
        elif status < 500:
            err = errors.bad_request(f"malformed HTTP request: {text}")
        else:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            err = errors.internal_error("an error on the server has prevented the request from succeeding")
        log.debug("malformed request from %s: %s", request.remote, text)
        resp = web.Response(status=err.code, body=orjson.dumps(err.to_status()), content_type="application/json")
        resp.force_close()
        return resp


class GuardedSite(web.BaseSite):
    """A TCP (TLS) listener that accepts sockets itself: beyond `max_connections` open sockets a new one is closed as
    soon as it is accepted (the client sees the connection reset or closed before the TLS handshake), and each TLS
    handshake must finish within the header timeout."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self.port = port
        self.limits = limits
        self.open_connections = 0
        self._closed_since_trim = 0
        self._trim_timer: asyncio.TimerHandle | None = None
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        family, kind, proto, _, address = socket.getaddrinfo(
            self._host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(self._backlog)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop(listener))

    async def stop(self) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None
        tasks = [t for t in (self._accepting, *self._starting) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        await super().stop()

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        limit = self.limits.max_connections
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as e:
                # Out of file descriptors, or a connection reset while queued: wait a little instead of spinning.
                log.warning("accepting a connection failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            if limit and self.open_connections >= limit:
                conn.close()
                continue
            self.open_connections += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._start_connection(conn, loop.time()))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    def _release(self) -> None:
        self.open_connections -= 1
        self._closed_since_trim += 1
        if self._closed_since_trim >= TRIM_AFTER_CLOSED and self._trim_timer is None:
            self._trim_timer = asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim)

    def _trim(self) -> None:
        """Give the memory of many closed connections back to the system: their protocol, transport and TLS objects
        form reference cycles that the hub's rare collections (see server/process.py) leave for a long time, and
        glibc keeps freed heap pages unless asked to return them."""
        self._trim_timer = None
        self._closed_since_trim = 0
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)

    async def _start_connection(self, conn: socket.socket, accepted_at: float) -> None:
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        handler = GuardedRequestHandler(
            server,
            loop=loop,
            header_timeout=self.limits.header_timeout,
            accepted_at=accepted_at,
            release=self._release,
            **self.limits.handler_args(),
        )
        try:
            await loop.connect_accepted_socket(
                lambda: handler,
                conn,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self.limits.header_timeout if self._ssl_context else None,
            )
        except BaseException as e:
            # A handshake that failed or timed out never reaches the protocol, which would otherwise release the slot.
            if not handler.made:
                self._release()
                conn.close()
            if isinstance(e, asyncio.CancelledError):
                raise
            log.debug("TLS handshake failed: %s", e)
