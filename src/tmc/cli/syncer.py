"""The `tmc syncer` command."""

from __future__ import annotations

import click

from tmc.cli.aio import run_async
from tmc.cli.params import Duration, log_level_option, parse_labels, start_tracing, tracing_options
from tmc.syncer import DEFAULT_RESOURCE_TYPES


@click.command()
@click.option("--sync-target-name", required=True, help="Name of this member cluster's SyncTarget on the hub.")
@click.option("--workspace", default="root", show_default=True, help="Workspace of the SyncTarget.")
@click.option("--kubeconfig", required=True, type=click.Path(exists=True, dir_okay=False), help="Hub kubeconfig.")
@click.option(
    "--downstream-kubeconfig",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Kubeconfig of the member cluster the syncer writes to.",
)
@click.option("--metrics-port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 disables.")
@click.option("--health-port", default=8081, show_default=True, type=click.IntRange(0, 65535), help="0 disables.")
@click.option("--bind-address", default="127.0.0.1", show_default=True, help="Address of the metrics/health ports.")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1024), help="Sync workers.")
@click.option(
    "--resync-period", default="10m", show_default=True, type=Duration(), help="How often every object is re-checked."
)
@click.option("--heartbeat-period", default="10s", show_default=True, type=Duration(), help="SyncTarget heartbeat.")
@click.option("--namespaces", default="", help="Only sync these upstream namespaces (comma list; default all).")
@click.option(
    "--resource-types",
    default="",
    help=f"Types to sync as resource.group (comma list). Default: {','.join(DEFAULT_RESOURCE_TYPES)}. "
    "configmaps and secrets are always synced.",
)
@click.option("--labels", default="", help="Labels for the SyncTarget, k=v,k2=v2 (e.g. region and zone).")
@log_level_option
@tracing_options
def syncer(
    sync_target_name: str,
    workspace: str,
    kubeconfig: str,
    downstream_kubeconfig: str,
    metrics_port: int,
    health_port: int,
    bind_address: str,
    concurrency: int,
    resync_period: float,
    heartbeat_period: float,
    namespaces: str,
    resource_types: str,
    labels: str,
    log_level: str,
    tracing_endpoint: str | None,
    tracing_sample_ratio: float | None,
) -> None:
    """Sync the workloads assigned to one SyncTarget into its member cluster, and their status back."""
    from tmc.observability.logging import configure_logging
    from tmc.syncer.agent import SyncerConfig, run

    configure_logging(log_level, component="syncer")
    start_tracing(
        "tmc-syncer",
        tracing_endpoint,
        tracing_sample_ratio,
        attributes={"tmc.sync_target": sync_target_name, "tmc.workspace": workspace},
        sync_metrics=True,
    )
    config = SyncerConfig(
        sync_target_name=sync_target_name,
        kubeconfig=kubeconfig,
        downstream_kubeconfig=downstream_kubeconfig,
        workspace=workspace,
        metrics_port=metrics_port,
        health_port=health_port,
        bind_address=bind_address,
        concurrency=concurrency,
        resync_period=resync_period,
        heartbeat_period=heartbeat_period,
        namespaces=frozenset(n.strip() for n in namespaces.split(",") if n.strip()),
        resource_types=resource_types,
        labels=parse_labels(labels),
    )
    run_async(run(config))
