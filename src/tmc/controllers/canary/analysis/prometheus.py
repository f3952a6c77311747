"""The Prometheus provider: instant queries (`/api/v1/query`) for metrics, range queries (`/api/v1/query_range`)
for the samples a baseline comparison needs. Answers follow Prometheus' HTTP API
(`{"status", "data": {"resultType", "result"}, "errorType", "error"}`)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from tmc.controllers.canary.analysis.readings import ProviderError, Reading, Series, Transport, preview

DEFAULT_TIMEOUT = 10.0


def _float(raw: Any) -> float:
    # Prometheus sends sample values as strings: "0.5", "NaN", "+Inf", "-Inf".
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise ProviderError(f"prometheus sent a sample value that is not a number: {raw!r}") from exc


def _series(result: Any, result_type: str) -> tuple[Series, ...]:
    if not isinstance(result, list):
        raise ProviderError(f"prometheus sent a {result_type} result that is not a list")
    out: list[Series] = []
    for item in result:
        if not isinstance(item, dict):
            raise ProviderError(f"prometheus sent a malformed {result_type} element")
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        if result_type == "vector":
            out.append(Series(labels, _float((item.get("value") or [None, None])[1])))
        else:
            out.append(Series(labels, [_float(pair[1]) for pair in item.get("values") or []]))
    return tuple(out)


def decode(status: int, body: bytes, query: str) -> Reading:
    """A Reading from one answer of the query API; ProviderError for an error answer or an unexpected body."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError(f"prometheus answered {status} with a body that is not JSON: {preview(body)}") from None
    if not isinstance(answer, dict):
        raise ProviderError(f"prometheus answered {status} with an unexpected body: {preview(body)}")
    if answer.get("status") != "success" or status >= 300:
        kind = answer.get("errorType") or "error"
        raise ProviderError(f"prometheus answered {status} ({kind}): {answer.get('error') or preview(body)}")
    data = answer.get("data") or {}
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "scalar":
        return Reading((Series({}, _float((result or [None, None])[1])),), scalar=True, query=query)
    if result_type in ("vector", "matrix"):
        return Reading(_series(result, result_type), query=query)
    raise ProviderError(f"prometheus returned a {result_type} result; a metric needs a scalar, vector or matrix")


class PrometheusProvider:
    """Queries one or several Prometheus servers; `default_address` serves metrics that name none."""

    def __init__(self, default_address: str = "", session: aiohttp.ClientSession | None = None) -> None:
        self.default_address = default_address.rstrip("/")
        self.transport = Transport(session)

    def _base(self, address: str) -> str:
        base = (address or self.default_address).rstrip("/")
        if not base:
            raise ProviderError("no prometheus address: the metric names none and no default is configured")
        return base

    async def _call(self, address: str, path: str, form: dict[str, str], timeout: float) -> Reading:
        base = self._base(address)
        # POST with a form body: long queries do not hit URL length limits (the API accepts both).
        status, body = await self.transport.request(
            "POST", base + path, data=form, timeout=timeout, what=f"prometheus at {base}"
        )
        return decode(status, body, form["query"])

    async def query(
        self, query: str, *, address: str = "", timeout: float = DEFAULT_TIMEOUT, at: float | None = None
    ) -> Reading:
        """An instant query, evaluated at `at` (Unix seconds; default now)."""
        form = {"query": query, "timeout": f"{timeout:g}s"}
        if at is not None:
            form["time"] = f"{at:.3f}"
        return await self._call(address, "/api/v1/query", form, timeout)

    async def query_range(
        self,
        query: str,
        *,
        lookback: float,
        step: float,
        address: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        end: float | None = None,
    ) -> Reading:
        """The samples of the last `lookback` seconds at `step` resolution; each series' value is a list."""
        finish = time.time() if end is None else end
        form = {
            "query": query,
            "start": f"{finish - lookback:.3f}",
            "end": f"{finish:.3f}",
            "step": f"{max(step, 0.001):g}",
            "timeout": f"{timeout:g}s",
        }
        return await self._call(address, "/api/v1/query_range", form, timeout)

    async def close(self) -> None:
        await self.transport.close()
