"""The asynchronous Kubernetes REST client: JSON verbs, paged lists and watches over one pooled aiohttp session.

No generated models and no threads: objects are dicts. Errors from the server raise the typed `ApiError`s of
`tmc.client.errors`; transport failures (refused, reset, timeout) raise `Unreachable`, so callers can tell "the
server said no" from "the server could not be asked" — a controller must never act on the second as if it were the
first.

A watch that has been silent for `WATCH_SILENCE_CHECK` seconds checks the server's shared health record (see
health.py), probing `/livez` when nothing else got an answer lately, and gives up when the server does not answer.
This is what client-go's HTTP/2 health check (read-idle 30 s, ping timeout 15 s) does for kube clients. A watch
silent for `WATCH_IDLE_TIMEOUT` seconds is dropped even if the server answers elsewhere (a dead connection to a live
server).

Metrics are the caller's: pass `observe`, called with (verb, HTTP status or None for no answer) once per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tmc.client.errors import Unreachable, from_response
from tmc.client.health import server_health
from tmc.client.kubeconfig import Kubeconfig, ssl_context
from tmc.client.media import JSON, JSON_PATCH, MERGE_PATCH  # noqa: F401 - also imported from here
from tmc.observability import tracing

WATCH_SILENCE_CHECK = 30.0  # seconds of silence on a watch before checking that the server still answers
WATCH_IDLE_TIMEOUT = 90.0  # seconds of silence after which a watch is re-opened anyway (bookmarks come every ~60 s)
PROBE_TIMEOUT = 10.0
RECENT_ANSWER = 5.0  # an answer this fresh from the server makes a probe unnecessary
PROBE_PATH = "/livez"

# Called once per request with its verb (an HTTP method, LIST or WATCH) and the answer's status (None: no answer).
RequestObserver = Callable[[str, int | None], None]


class KubeClient:
    """JSON over HTTPS against one API server. `base_url` overrides where requests go (default: the kubeconfig's
    server URL, path included; e.g. a workspace or a virtual workspace), keeping the kubeconfig's TLS settings and
    credentials. `observe` is told about every request (see RequestObserver)."""

    def __init__(
        self,
        config: Kubeconfig,
        *,
        base_url: str | None = None,
        connections: int = 64,
        timeout: float = 15.0,
        observe: RequestObserver | None = None,
        user_agent: str = "tmc",
    ) -> None:
        self.config = config
        self.user_agent = user_agent
        self.base_url = (base_url if base_url is not None else config.server).rstrip("/")
        self.timeout = timeout
        self.observe = observe
        self.health = server_health(self.base_url)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._owner = True  # False for clients made by `at`, which borrow another client's session
        # The hub names the field manager of a write after the User-Agent's product, as kube-apiserver does.
        self._headers = {"Accept": JSON, "User-Agent": user_agent}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"

    def at(self, base_url: str) -> KubeClient:
        """A client for another base URL sharing this one's connection pool (and observer)."""
        other = KubeClient(
            self.config,
            base_url=base_url,
            connections=self._connections,
            timeout=self.timeout,
            observe=self.observe,
            user_agent=self.user_agent,
        )
        other._session = self.session
        other._owner = False
        return other

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, ssl=ssl_context(self.config), keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owner:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _count(self, verb: str, code: int | None) -> None:
        if self.observe is not None:
            self.observe(verb, code)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
        verb: str | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, an ApiError for an error status, Unreachable for no answer.
        `verb` names the request to the observer (default: the method)."""
        headers = dict(self._headers)
        if tracing.enabled and (traceparent := tracing.current_traceparent()) is not None:
            # W3C trace context: the server's request span continues the caller's span.
            headers[tracing.TRACEPARENT_HEADER] = traceparent
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = content_type
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                params=params,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            self._count(verb or method, None)
            raise Unreachable(f"{method} {self.base_url}{path}: {type(e).__name__}: {e}") from e
        self.health.answered()
        self._count(verb or method, status)
        decoded = _decode(raw)
        if status >= 400:
            raise from_response(status, decoded)
        return decoded

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, obj: Any) -> Any:
        return await self.request("POST", path, obj)

    async def replace(self, path: str, obj: Any) -> Any:
        return await self.request("PUT", path, obj)

    async def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> Any:
        return await self.request("PATCH", path, patch, content_type=content_type)

    async def delete(self, path: str, options: Mapping[str, Any] | None = None) -> Any:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **(options or {})}
        return await self.request("DELETE", path, body)

    async def list_all(
        self, path: str, params: Mapping[str, str] | None = None, page: int = 500
    ) -> tuple[list[Any], str]:
        """Every item of a collection, fetched in pages; returns (items, resourceVersion of the list)."""
        items: list[Any] = []
        query = {**(params or {}), "limit": str(page)}
        while True:
            body = await self.request("GET", path, params=query, verb="LIST")
            items.extend(body.get("items") or [])
            md = body.get("metadata") or {}
            if not md.get("continue"):
                return items, str(md.get("resourceVersion") or "")
            query["continue"] = str(md["continue"])

    async def watch(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        on_open: Callable[[], None] | None = None,
        silence_check: float = WATCH_SILENCE_CHECK,
        idle_timeout: float = WATCH_IDLE_TIMEOUT,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Watch events as decoded dicts until the server ends the stream; `on_open` is called once the server has
        accepted the watch. Unreachable when it cannot be opened, when it has been silent (no event, no bookmark)
        for `silence_check` seconds and the server does not answer a probe, or when it has been silent for
        `idle_timeout` seconds. ERROR events are passed on as they are (see tmc.client.watch for resuming)."""
        query = {**params, "watch": "1", "allowWatchBookmarks": "true"}
        # The connect timeout covers TCP and TLS. sock_read bounds the wait for the response head; on the stream
        # the loop below notices silence first (sock_read is a backstop a little later).
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=idle_timeout + 5)
        opened = False
        try:
            async with self.session.get(
                self.base_url + path, params=query, headers=self._headers, timeout=timeout
            ) as response:
                opened = True
                self.health.answered()
                self._count("WATCH", response.status)
                if response.status >= 400:
                    raise from_response(response.status, _decode(await response.read()))
                if on_open is not None:
                    on_open()
                buffer = b""
                last_data = time.monotonic()
                while True:
                    wait = min(silence_check, idle_timeout - (time.monotonic() - last_data))
                    try:
                        async with asyncio.timeout(max(wait, 0.001)):  # cheaper per chunk than wait_for
                            chunk = await response.content.readany()
                    except aiohttp.ServerTimeoutError:
                        raise  # aiohttp's own sock_read backstop: the connection is done
                    except TimeoutError:
                        silent = time.monotonic() - last_data
                        if silent >= idle_timeout:
                            raise Unreachable(f"watch {self.base_url}{path}: silent for {silent:.0f}s") from None
                        if not await self.health.answers(RECENT_ANSWER, self._probe):
                            raise Unreachable(
                                f"watch {self.base_url}{path}: silent for {silent:.0f}s and the server does not answer"
                            ) from None
                        continue
                    if not chunk:
                        return  # the server ended the stream
                    last_data = time.monotonic()
                    self.health.answered()
                    buffer += chunk
                    while True:
                        line, newline, rest = buffer.partition(b"\n")
                        if not newline:
                            break
                        buffer = rest
                        if line.strip():
                            yield orjson.loads(line)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            if not opened:
                self._count("WATCH", None)
            raise Unreachable(f"watch {self.base_url}{path}: {type(e).__name__}: {e}") from e

    async def _probe(self) -> bool:
        """Does the server answer at all? Any HTTP status counts (a 401 or 503 is an answer)."""
        parts = urlsplit(self.base_url)
        try:
            async with self.session.get(
                f"{parts.scheme}://{parts.netloc}{PROBE_PATH}",
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT),
            ) as response:
                await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False
        self.health.answered()
        return True


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")
