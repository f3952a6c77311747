"""`SyncClient`: the client layer's verbs for short-lived synchronous programs, over http.client.

A CLI command that makes a few requests and exits spends most of its time importing: aiohttp and an event loop
cost more than a list of 1,000 objects. This transport uses only the standard library, with the same kubeconfig
reader and TLS settings (`ssl_context`), the same headers, and the same answers as `KubeClient`: decoded JSON, the
typed `ApiError` for an error status (`from_response`), `Unreachable` when nothing answers. One keep-alive connection,
re-opened once if the server closed it between requests. Watches, and anything long-running, use `KubeClient`.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from tmc.client.errors import Unreachable, from_response
from tmc.client.kubeconfig import Kubeconfig, ssl_context
from tmc.client.media import JSON, MERGE_PATCH

# A request that failed this way on a reused connection was never processed: the server had closed it.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class SyncClient:
    """Blocking JSON requests to one server; `base_url` as for KubeClient (default: the kubeconfig's server URL)."""

    def __init__(self, config: Kubeconfig, *, base_url: str | None = None, timeout: float = 15.0) -> None:
        self.config = config
        self.base_url = (base_url if base_url is not None else config.server).rstrip("/")
        self.timeout = timeout
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self._headers = {"Accept": JSON, "User-Agent": "tmc-cli"}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                context = ssl_context(self.config)
                assert isinstance(context, ssl.SSLContext)
                self._conn = http.client.HTTPSConnection(self._host, self._port, context=context, timeout=self.timeout)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded answer, an ApiError for an error status, Unreachable for no answer."""
        url = self._prefix + path + (("?" + urlencode(params)) if params else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            if timeout is not None:
                conn.timeout = timeout
            try:
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                break
            except _STALE as e:
                self.close()
                if reused and attempt == 1:
                    continue
                raise Unreachable(f"{method} {self.base_url}{path}: {type(e).__name__}: {e}") from e
            except (TimeoutError, OSError, http.client.HTTPException) as e:
                self.close()
                raise Unreachable(f"{method} {self.base_url}{path}: {type(e).__name__}: {e}") from e
        decoded = _decode(raw)
        if status >= 400:
            raise from_response(status, decoded)
        return decoded

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def create(self, path: str, obj: Any) -> Any:
        return self.request("POST", path, obj)

    def replace(self, path: str, obj: Any) -> Any:
        return self.request("PUT", path, obj)

    def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> Any:
        return self.request("PATCH", path, patch, content_type=content_type)

    def delete(self, path: str, options: Mapping[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", **(options or {})})

    def list_all(self, path: str, params: Mapping[str, str] | None = None, page: int = 500) -> tuple[list[Any], str]:
        """Every item of a collection, in pages; (items, resourceVersion of the list)."""
        items: list[Any] = []
        query = {**(params or {}), "limit": str(page)}
        while True:
            body = self.request("GET", path, params=query)
            items.extend(body.get("items") or [])
            md = body.get("metadata") or {}
            if not md.get("continue"):
                return items, str(md.get("resourceVersion") or "")
            query["continue"] = str(md["continue"])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")
