"""A real Prometheus scrapes a tiny /metrics endpoint labelled by cluster; the analysis queries it through the
provider and fails the canary in the one cluster whose error ratio is too high."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.tools import require_prometheus
from tmc.cli import prometheus as prom
from tmc.controllers.canary.analysis import (
    FAILED,
    AnalysisRun,
    PrometheusProvider,
    Providers,
    measure_metric,
    parse_analysis,
)

RATIOS = {"eu-1": "0.01", "us-1": "0.2"}


def _metrics_server(cluster: str) -> ThreadingHTTPServer:
    body = (
        f'# TYPE canary_error_ratio gauge\ncanary_error_ratio{{deployment="web",namespace="shop"}} {RATIOS[cluster]}\n'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_prometheus("prometheus")
    servers = {cluster: _metrics_server(cluster) for cluster in RATIOS}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    targets = [
        prom.Target("canary", f"127.0.0.1:{s.server_address[1]}", labels={"cluster": c}) for c, s in servers.items()
    ]
    server = prom.Prometheus(binary, str(Path(tmp_path_factory.mktemp("prometheus"))), _free_port())
    server.write_config(prom.scrape_config(targets, interval="1s", evaluation_interval="1s"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        for s in servers.values():
            s.shutdown()
            s.server_close()


def test_a_real_prometheus_fails_the_canary_in_the_bad_cluster(prometheus_url: str) -> None:
    spec = parse_analysis(
        {
            "metrics": [
                {
                    "name": "error-ratio",
                    "interval": "1s",
                    "count": 3,
                    "successCondition": "result < 0.05",
                    "provider": {
                        "prometheus": {
                            "query": 'max by (cluster) (canary_error_ratio{namespace="{{ args.namespace }}",'
                            'deployment="{{ args.workload }}"})'
                        }
                    },
                }
            ]
        },
        known_args=["namespace", "workload"],
    )
    args = {"namespace": "shop", "workload": "web"}

    async def main() -> None:
        providers = Providers(PrometheusProvider(prometheus_url))
        run = AnalysisRun(spec, time.time())
        try:
            deadline = time.monotonic() + 30
            while True:  # until both targets have been scraped once; until then the answer is partial
                measurement = await measure_metric(spec.metrics[0], args, providers, clusters=list(RATIOS))
                scraped = len(measurement.clusters) == len(RATIOS) and all(c.value for c in measurement.clusters)
                if scraped or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            phase = run.record("error-ratio", measurement)
            # Quotes and backslashes in an argument stay inside their literals: real PromQL parses the query.
            hostile = {"namespace": "sh\"o'p\\", "workload": "web"}
            for query in (
                'canary_error_ratio{namespace="{{ args.namespace }}"}',
                "x{namespace='{{ args.namespace }}'}",
            ):
                probe = parse_analysis(
                    {"metrics": [{"name": "probe", "provider": {"prometheus": {"query": query}}}]}
                ).metrics[0]
                answer = await measure_metric(probe, hostile, providers)
                assert (answer.phase, answer.message.split(" for ")[0]) == ("Error", "probe: no data")
        finally:
            await providers.close()
        assert (measurement.phase, measurement.cluster, measurement.value) == (FAILED, "us-1", "0.2")
        assert [(c.cluster, c.value) for c in measurement.clusters] == [("eu-1", "0.01"), ("us-1", "0.2")]
        assert phase == FAILED
        assert run.message == (
            "analysis failed: metric error-ratio in cluster us-1: value 0.2 does not meet successCondition "
            "'result < 0.05' (1 failed > failureLimit 0)"
        )

    asyncio.run(main())
