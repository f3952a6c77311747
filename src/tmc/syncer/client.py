"""A small asynchronous Kubernetes REST client on aiohttp, configured from a kubeconfig.

The syncer needs only raw JSON verbs, list and watch, so this is a thin typed layer over one pooled HTTPS session:
no generated models, no threads. Errors from the server raise `ApiError` (with the Status reason and code);
transport failures (refused, reset, timeout) raise `Unreachable`, so callers can tell "the server said no" from
"the server could not be asked" — the syncer must never act on the second as if it were the first.

Every client to the same server (scheme, host and port) shares one record of when that server last answered
anything. A watch that has been silent for `WATCH_SILENCE_CHECK` seconds checks that record, probing the server's
`/livez` when nothing else got an answer lately, and gives up when the server does not answer: a stopped server
(SIGSTOP, a suspended VM) keeps its TCP connections open and would otherwise look like a quiet watch. This is what
client-go's HTTP/2 health check (read-idle 30 s, ping timeout 15 s) does for kube clients. A watch silent for
`WATCH_IDLE_TIMEOUT` seconds is dropped even if the server answers elsewhere (a dead connection to a live server).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import yaml

from tmc.syncer import metrics

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

WATCH_SILENCE_CHECK = 30.0  # seconds of silence on a watch before checking that the server still answers
WATCH_IDLE_TIMEOUT = 90.0  # seconds of silence after which a watch is re-opened anyway (bookmarks come every ~60 s)
PROBE_TIMEOUT = 10.0
RECENT_ANSWER = 5.0  # an answer this fresh from the server makes a probe unnecessary
PROBE_PATH = "/livez"


class ApiError(Exception):
    """The server answered with an error Status."""

    def __init__(self, code: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.body = body


class Unreachable(Exception):
    """The request did not get an answer: connection refused or reset, TLS failure, or timeout."""


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    ca_pem: bytes | None = None
    insecure: bool = False
    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

    @property
    def base_url(self) -> str:
        """scheme://host:port, without any path the server URL carries (e.g. the hub's `/clusters/root`)."""
        parts = urlsplit(self.server)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path_prefix(self) -> str:
        return urlsplit(self.server).path.rstrip("/")


def load_kubeconfig(path: str, context: str | None = None) -> Kubeconfig:
    """The current (or named) context's server and credentials; file references are resolved relative to the file."""
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    name = context or config.get("current-context")
    ctx = _named(config, "contexts", name, path) if name else (config.get("contexts") or [{}])[0].get("context", {})
    cluster = _named(config, "clusters", ctx.get("cluster"), path)
    user = _named(config, "users", ctx.get("user"), path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(base, user["tokenFile"]).decode().strip()
    return Kubeconfig(
        server=str(cluster["server"]),
        ca_pem=_data(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(token) if token else None,
        cert_pem=_data(user, "client-certificate", base),
        key_pem=_data(user, "client-key", base),
    )


def _named(config: dict[str, Any], section: str, name: Any, path: str) -> dict[str, Any]:
    for item in config.get(section) or []:
        if item.get("name") == name:
            return dict(item.get(section[:-1]) or {})
    raise ValueError(f"{path}: no {section[:-1]} named {name!r}")


def _read(base: str, name: str) -> bytes:
    with open(os.path.join(base, name), "rb") as f:
        return f.read()


def _data(section: Mapping[str, Any], field: str, base: str) -> bytes | None:
    if section.get(f"{field}-data"):
        return base64.b64decode(section[f"{field}-data"])
    if section.get(field):
        return _read(base, str(section[field]))
    return None


@dataclass
class ServerHealth:
    """When one server last answered (monotonic seconds), shared by all clients talking to it."""

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

    async def answers(self, within: float, probe: Callable[[], Any]) -> bool:
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


def ssl_context(config: Kubeconfig) -> ssl.SSLContext | bool:
    if not config.server.startswith("https"):
        return False
    ctx = ssl.create_default_context()
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_pem:
        ctx.load_verify_locations(cadata=config.ca_pem.decode())
    if config.cert_pem and config.key_pem:
        # ssl only loads client certificates from files; they live only as long as this call.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for file, data in ((cert, config.cert_pem), (key, config.key_pem)):
                with open(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx


class KubeClient:
    """JSON over HTTPS against one API server. `base_url` overrides where requests go (e.g. a virtual workspace),
    keeping the kubeconfig's TLS settings and credentials. `cluster` and `endpoint` (hub or downstream) label the
    client's `tmc_syncer_requests_total` series."""

    def __init__(
        self,
        config: Kubeconfig,
        *,
        base_url: str | None = None,
        connections: int = 64,
        timeout: float = 15.0,
        cluster: str = "",
        endpoint: str = "",
    ) -> None:
        self.config = config
        self.base_url = (base_url if base_url is not None else config.server).rstrip("/")
        self.timeout = timeout
        self.cluster = cluster
        self.endpoint = endpoint
        self.health = server_health(self.base_url)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._owner = True  # False for clients made by `at`, which borrow another client's session
        self._headers = {"Accept": JSON}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        self._counted: dict[tuple[str, str], Any] = {}

    def at(self, base_url: str) -> KubeClient:
        """A client for another base URL sharing this one's connection pool."""
        other = KubeClient(
            self.config,
            base_url=base_url,
            connections=self._connections,
            timeout=self.timeout,
            cluster=self.cluster,
            endpoint=self.endpoint,
        )
        other._session = self.session
        other._owner = False
        return other

    def _count(self, verb: str, code: int | None) -> None:
        key = (verb, "unreachable" if code is None else str(code))
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = metrics.REQUESTS.labels(self.cluster, self.endpoint, *key)
        child.inc()

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
        """Send one request; the decoded JSON answer, ApiError for an error status, Unreachable for no answer.
        `verb` names the request in metrics (default: the method)."""
        headers = dict(self._headers)
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
            raise _api_error(status, decoded)
        return decoded

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, obj: Any) -> Any:
        return await self.request("POST", path, obj)

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
        `idle_timeout` seconds."""
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
                    raise _api_error(response.status, _decode(await response.read()))
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


def _api_error(status: int, body: Any) -> ApiError:
    if isinstance(body, dict) and body.get("kind") == "Status":
        return ApiError(int(body.get("code") or status), str(body.get("reason") or ""), str(body.get("message")), body)
    return ApiError(status, "", str(body)[:500], body)


def error_type(error: BaseException) -> str:
    """The `error_type` label of tmc_syncer_sync_errors_total for a failure."""
    if isinstance(error, Unreachable):
        return "timeout"
    if isinstance(error, ApiError):
        return {
            404: "not_found",
            409: "conflict",
            403: "forbidden",
            401: "forbidden",
            429: "rate_limited",
            504: "server_timeout",
        }.get(error.code, "unknown")
    return "unknown"
