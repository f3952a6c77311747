"""The `tmc syncer` command."""

from __future__ import annotations

import re

import click

from tmc.syncer import DEFAULT_RESOURCE_TYPES

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Duration(click.ParamType):
    """`10s`, `500ms`, `5m`, `1h`, or plain seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        m = _DURATION.match(str(value))
        if not m or float(m.group(1)) <= 0:
            self.fail(f"{value!r} is not a positive duration such as 10s, 500ms, 5m or 1h", param, ctx)
        return float(m.group(1)) * _UNITS[m.group(2)]


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k2=v2` -> {"k": "v", "k2": "v2"}."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{part!r} is not key=value", param_hint="--labels")
        out[key.strip()] = value.strip()
    return out


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
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
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
) -> None:
    """Sync the workloads assigned to one SyncTarget into its member cluster, and their status back."""
    from tmc.cli.main import _run
    from tmc.observability.logging import configure_logging
    from tmc.syncer.agent import SyncerConfig, run

    configure_logging(log_level, component="syncer")
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
    _run(run(config))
