"""The web provider: one HTTP request whose JSON answer is narrowed with a JSONPath (Argo's `web` metric)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import orjson

from tmc.apimachinery.jsonpath import jsonpath
from tmc.controllers.canary.analysis.readings import ProviderError, Reading, Series, Transport, preview


class WebProvider:
    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self.transport = Transport(session)

    async def fetch(
        self,
        url: str,
        *,
        json_path: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str = "",
        timeout: float = 10.0,
    ) -> Reading:
        """One series per JSONPath match, holding the matched JSON value as it is."""
        status, raw = await self.transport.request(
            method, url, data=body.encode() if body else None, headers=headers, timeout=timeout, what=url
        )
        if not 200 <= status < 300:
            raise ProviderError(f"{method} {url} answered {status}: {preview(raw)}")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(f"{method} {url} answered with a body that is not JSON: {preview(raw)}") from None
        try:
            found = jsonpath(json_path, document)
        except ValueError as exc:
            raise ProviderError(str(exc)) from exc
        return Reading(tuple(Series({}, value) for value in found), query=url)

    async def close(self) -> None:
        await self.transport.close()
