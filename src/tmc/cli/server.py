"""`tmc server`: run the hub."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from tmc.cli.aio import run_async
from tmc.cli.params import Duration, log_level_option, start_tracing, tracing_options

if TYPE_CHECKING:
    from tmc.server.hub import Hub


@click.command()
@click.option(
    "--data-dir", default=".tmc", show_default=True, help="Where the hub keeps its database, PKI and kubeconfig."
)
@click.option("--bind-address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--secure-port",
    default=6443,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="HTTPS port (0 picks a free one).",
)
@click.option("--storage", default="sqlite", show_default=True, type=click.Choice(["sqlite"]), help="Storage backend.")
@log_level_option
@click.option(
    "--bookmark-interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between watch bookmarks.",
)
@click.option(
    "--sync-target-heartbeat-threshold",
    default="2m",
    show_default=True,
    type=Duration(),
    help="A SyncTarget whose syncer has not sent a heartbeat for this long turns Ready=False and Healthy=False "
    "(e.g. 30s, 2m).",
)
@click.option(
    "--request-header-timeout",
    default="30s",
    show_default=True,
    type=Duration(),
    help="Close a connection whose request headers (and, for a new connection, TLS handshake) take longer.",
)
@click.option(
    "--idle-timeout",
    default="90s",
    show_default=True,
    type=Duration(),
    help="Close a keep-alive connection with no request for this long.",
)
@click.option(
    "--max-connections",
    default=10_000,
    show_default=True,
    type=click.IntRange(0),
    help="Open connections beyond this are closed when accepted (0: no limit).",
)
@click.option(
    "--max-requests-inflight",
    default=400,
    show_default=True,
    type=click.IntRange(0),
    help="Read-only requests served at once (watches excluded); more get 429 with Retry-After (0: no limit).",
)
@click.option(
    "--max-mutating-requests-inflight",
    default=200,
    show_default=True,
    type=click.IntRange(0),
    help="Mutating requests served at once; more get 429 with Retry-After (0: no limit).",
)
@click.option(
    "--prometheus-url",
    default="",
    help="Prometheus the canary analysis queries when a metric names no address (e.g. http://127.0.0.1:9090).",
)
@tracing_options
def server(
    data_dir: str,
    bind_address: str,
    secure_port: int,
    storage: str,
    log_level: str,
    bookmark_interval: float,
    sync_target_heartbeat_threshold: float,
    request_header_timeout: float,
    idle_timeout: float,
    max_connections: int,
    max_requests_inflight: int,
    max_mutating_requests_inflight: int,
    prometheus_url: str,
    tracing_endpoint: str | None,
    tracing_sample_ratio: float | None,
) -> None:
    """Run the hub: the Kubernetes-compatible API server with workspaces."""
    from tmc.observability.logging import configure_logging
    from tmc.server.hub import ServerConfig, serve

    configure_logging(log_level, component="server")
    start_tracing("tmc-hub", tracing_endpoint, tracing_sample_ratio, hub=True)
    config = ServerConfig(
        data_dir=data_dir,
        bind_address=bind_address,
        secure_port=secure_port,
        storage=storage,
        bookmark_interval=bookmark_interval,
        sync_target_heartbeat_threshold=sync_target_heartbeat_threshold,
        request_header_timeout=request_header_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight,
        prometheus_url=prometheus_url,
    )
    run_async(serve(config, on_ready=_print_usage))


def _print_usage(hub: Hub) -> None:
    kubeconfig = os.path.abspath(hub.kubeconfig_path)
    click.echo(
        f"TMC hub ready on https://{hub.config.bind_address}:{hub.port} (workspace root at /clusters/root)\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        "  kubectl get namespaces\n"
        "  kubectl api-resources\n"
        "Stop with Ctrl-C."
    )
