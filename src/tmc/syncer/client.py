"""A small asynchronous Kubernetes REST client on aiohttp, configured from a kubeconfig.

The syncer needs only raw JSON verbs, list and watch, so this is a thin typed layer over one pooled HTTPS session:
no generated models, no threads. Errors from the server raise `ApiError` (with the Status reason and code);
transport failures (refused, reset, timeout) raise `Unreachable`, so callers can tell "the server said no" from
"the server could not be asked" — the syncer must never act on the second as if it were the first.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import yaml

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


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
    keeping the kubeconfig's TLS settings and credentials."""

    def __init__(
        self,
        config: Kubeconfig,
        *,
        base_url: str | None = None,
        connections: int = 64,
        timeout: float = 15.0,
    ) -> None:
        self.config = config
        self.base_url = (base_url if base_url is not None else config.server).rstrip("/")
        self.timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._owner = True  # False for clients made by `at`, which borrow another client's session
        self._headers = {"Accept": JSON}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"

    def at(self, base_url: str) -> KubeClient:
        """A client for another base URL sharing this one's connection pool."""
        other = KubeClient(self.config, base_url=base_url, connections=self._connections, timeout=self.timeout)
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

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, ApiError for an error status, Unreachable for no answer."""
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
            raise Unreachable(f"{method} {self.base_url}{path}: {type(e).__name__}: {e}") from e
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
            body = await self.get(path, query)
            items.extend(body.get("items") or [])
            md = body.get("metadata") or {}
            if not md.get("continue"):
                return items, str(md.get("resourceVersion") or "")
            query["continue"] = str(md["continue"])

    async def watch(
        self, path: str, params: Mapping[str, str], *, idle_timeout: float = 90.0
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events as decoded dicts until the server ends the stream. Unreachable when it cannot be opened or
        goes silent for `idle_timeout` seconds (no event, no bookmark): a stopped server looks exactly like that."""
        query = {**params, "watch": "1", "allowWatchBookmarks": "true"}
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=idle_timeout)
        try:
            async with self.session.get(
                self.base_url + path, params=query, headers=self._headers, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise _api_error(response.status, _decode(await response.read()))
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    while True:
                        line, newline, rest = buffer.partition(b"\n")
                        if not newline:
                            break
                        buffer = rest
                        if line.strip():
                            yield orjson.loads(line)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise Unreachable(f"watch {self.base_url}{path}: {type(e).__name__}: {e}") from e


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
