"""The analysis providers over real sockets: a small aiohttp server stands in for Prometheus' HTTP API and for a
JSON endpoint, and answers well, badly, slowly or not at all."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from tmc.controllers.canary.analysis import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    PrometheusProvider,
    Providers,
    measure_comparison,
    measure_metric,
    parse_analysis,
)

ARGS = {"namespace": 'shop"x', "workload": "web", "cluster": "eu-1"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def vector(*items: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [1.8e9, value]} for labels, value in items]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def metric(query: str, condition: str = "result < 0.05", **provider: Any) -> Any:
    raw = {"name": "errors", "successCondition": condition, "provider": {"prometheus": {"query": query, **provider}}}
    return parse_analysis({"metrics": [raw]}).metrics[0]


def test_instant_queries_judged_per_cluster_with_arguments_escaped() -> None:
    seen: list[dict[str, str]] = []

    async def prometheus(request: web.Request) -> web.Response:
        assert request.path == "/api/v1/query"
        seen.append(dict(await request.post()))
        return web.json_response(vector(({"cluster": "eu-1"}, "0.01"), ({"cluster": "us-1"}, "0.25")))

    async def main() -> None:
        async with serve(prometheus) as url:
            providers = Providers(PrometheusProvider(url))
            try:
                spec = metric('sum by (cluster) (rate(errors{namespace="{{ args.namespace }}"}[1m]))')
                result = await measure_metric(spec, ARGS, providers, clusters=["eu-1", "us-1"])
            finally:
                await providers.close()
        assert seen[0]["query"] == 'sum by (cluster) (rate(errors{namespace="shop\\"x"}[1m]))'
        assert seen[0]["timeout"] == "10s"
        assert (result.phase, result.cluster, result.value) == (FAILED, "us-1", "0.25")
        assert result.message == "errors in cluster us-1: value 0.25 does not meet successCondition 'result < 0.05'"
        assert [(c.cluster, c.phase) for c in result.clusters] == [("eu-1", SUCCESSFUL), ("us-1", FAILED)]

    asyncio.run(main())


def test_backend_trouble_is_an_error_measurement_with_the_reason() -> None:
    release: list[asyncio.Event] = []

    async def prometheus(request: web.Request) -> web.Response:
        query = (await request.post())["query"]
        if query == "slow":
            await release[0].wait()  # answers only after the client gave up (its timeout is 0.3s)
        if query == "bad(":
            body = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unclosed left parenthesis"}
            return web.json_response(body, status=400)
        if query == "html":
            return web.Response(text="<html>proxy error</html>", status=502)
        return web.json_response(vector())

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]

    async def main() -> None:
        release.append(asyncio.Event())
        async with serve(prometheus) as url:
            providers = Providers(PrometheusProvider(url))
            try:
                results = {
                    q: await measure_metric(metric(q, timeout="300ms"), ARGS, providers)
                    for q in ("bad(", "html", "up == 2", "slow")
                }
                refused = await measure_metric(metric("up", address=f"http://127.0.0.1:{closed}"), ARGS, providers)
                unset = await measure_metric(metric("up"), ARGS, Providers())
            finally:
                release[0].set()
                await providers.close()
        assert all(r.phase == ERROR for r in [*results.values(), refused, unset])
        assert results["bad("].message == (
            "errors: prometheus answered 400 (bad_data): 1:5: parse error: unclosed left parenthesis"
        )
        assert results["html"].message == (
            "errors: prometheus answered 502 with a body that is not JSON: <html>proxy error</html>"
        )
        assert results["up == 2"].message == "errors: no data for up == 2"
        assert results["slow"].message == f"errors: prometheus at {url} did not answer within 0.3s"
        assert refused.message.startswith(f"errors: prometheus at http://127.0.0.1:{closed} is unreachable: ")
        assert unset.message == "errors: no prometheus address: the metric names none and no default is configured"

    asyncio.run(main())


def test_web_provider_reads_a_json_path() -> None:
    async def endpoint(request: web.Request) -> web.Response:
        if request.path == "/down":
            return web.Response(text="maintenance", status=503)
        assert request.headers["X-Cluster"] == "eu-1" and request.query["ns"] == 'shop"x'
        return web.json_response({"checks": [{"name": "db", "ok": True, "latency": 12}]})

    async def main() -> None:
        async with serve(endpoint) as url:
            raw = {
                "name": "health",
                "successCondition": "result.ok && result.latency < 50",
                "provider": {
                    "web": {
                        "url": url + "/health?ns={{ args.namespace }}",
                        "headers": [{"key": "X-Cluster", "value": "{{ args.cluster }}"}],
                        "jsonPath": "{$.checks[?(@.name=='db')]}",
                    }
                },
            }
            spec = parse_analysis({"metrics": [raw]}).metrics[0]
            down = parse_analysis(
                {"metrics": [{**raw, "provider": {"web": {"url": url + "/down", "jsonPath": "$.x"}}}]}
            ).metrics[0]
            providers = Providers()
            try:
                ok = await measure_metric(spec, ARGS, providers)
                failed = await measure_metric(down, ARGS, providers)
            finally:
                await providers.close()
        assert (ok.phase, ok.value) == (SUCCESSFUL, '{"name":"db","ok":true,"latency":12}')
        assert (failed.phase, failed.message) == (ERROR, f"health: GET {url}/down answered 503: maintenance")

    asyncio.run(main())


def matrix(by_cluster: dict[str, list[float]]) -> dict[str, Any]:
    series = [
        {"metric": {"cluster": cluster}, "values": [[1.8e9 + 15 * i, repr(v)] for i, v in enumerate(values)]}
        for cluster, values in by_cluster.items()
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


def test_comparison_over_range_queries() -> None:
    rng = random.Random(3)

    def gauss(center: float, spread: float) -> list[float]:
        return [rng.gauss(center, spread) for _ in range(20)]

    # The canary is slow in us-1 only; errors are the same everywhere.
    series = {
        "canary_latency": {"eu-1": gauss(100, 5), "us-1": gauss(130, 5)},
        "stable_latency": {"eu-1": gauss(100, 5), "us-1": gauss(100, 5)},
        "canary_errors": {"eu-1": gauss(1, 0.1), "us-1": gauss(1, 0.1)},
        "stable_errors": {"eu-1": gauss(1, 0.1), "us-1": gauss(1, 0.1)},
    }
    forms: list[dict[str, str]] = []

    async def prometheus(request: web.Request) -> web.Response:
        assert request.path == "/api/v1/query_range"
        form = dict(await request.post())
        forms.append(form)
        name = form["query"].split("{")[0]
        if name not in series:
            return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": []}})
        return web.json_response(matrix(series[name]))

    def comparison(**kw: Any) -> Any:
        metrics = [
            {"name": "latency", "canaryQuery": 'canary_latency{ns="{{ args.namespace }}"}', "direction": "increase"},
            {"name": "errors", "canaryQuery": "canary_errors", "direction": "increase"},
        ]
        for m in metrics:
            m["baselineQuery"] = str(m["canaryQuery"]).replace("canary_", "stable_")
        raw = {"lookback": "5m", "step": "15s", "metrics": metrics, **kw}
        spec = parse_analysis({"comparison": raw}).comparison
        assert spec is not None
        return spec

    async def main() -> None:
        async with serve(prometheus) as url:
            providers = Providers(PrometheusProvider(url))
            try:
                failed = await measure_comparison(comparison(), ARGS, providers, clock=lambda: 1.8e9 + 300)
                marginal = await measure_comparison(
                    comparison(passScore=60, marginalScore=50), ARGS, providers, clock=lambda: 1.8e9 + 300
                )
                empty = comparison(metrics=[{"name": "m", "canaryQuery": "none", "baselineQuery": "none"}])
                nodata = await measure_comparison(empty, ARGS, providers)
            finally:
                await providers.close()
        first = forms[0]
        assert (first["start"], first["end"], first["step"]) == ("1800000000.000", "1800000300.000", "15")
        assert first["query"] == 'canary_latency{ns="shop\\"x"}'
        assert (failed.phase, failed.score, failed.cluster) == (FAILED, "50", "us-1")
        latency, errors = failed.comparison
        assert (latency["classification"], latency["cluster"]) == ("High", "us-1")
        assert float(latency["pValue"]) < 1e-6 and latency["canarySamples"] == 20
        assert [(c["cluster"], c["classification"]) for c in latency["clusters"]] == [
            ("eu-1", "Pass"),
            ("us-1", "High"),
        ]
        assert errors["classification"] == "Pass"
        assert failed.message.startswith(
            "comparison: score 50 (latency High) < marginalScore 75; latency High: in cluster us-1: canary median 1"
        )
        assert "p=" in failed.message and "< 0.05" in failed.message
        assert marginal.phase == INCONCLUSIVE and "< passScore 60" in marginal.message
        assert nodata.phase == ERROR and nodata.message == "comparison: too little data to compare (m)"
        assert nodata.comparison[0]["classification"] == "NoData"

    asyncio.run(main())
