"""`tmc server`: run the hub."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from tmc.cli.aio import run_async
from tmc.cli.params import Duration, log_level_option

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
    default="30s",
    show_default=True,
    type=Duration(),
    help="A SyncTarget whose syncer has not sent a heartbeat for this long turns Ready=False (e.g. 30s, 1m).",
)
def server(
    data_dir: str,
    bind_address: str,
    secure_port: int,
    storage: str,
    log_level: str,
    bookmark_interval: float,
    sync_target_heartbeat_threshold: float,
) -> None:
    """Run the hub: the Kubernetes-compatible API server with workspaces."""
    from tmc.observability.logging import configure_logging
    from tmc.server.hub import ServerConfig, serve

    configure_logging(log_level, component="server")
    config = ServerConfig(
        data_dir=data_dir,
        bind_address=bind_address,
        secure_port=secure_port,
        storage=storage,
        bookmark_interval=bookmark_interval,
        sync_target_heartbeat_threshold=sync_target_heartbeat_threshold,
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
