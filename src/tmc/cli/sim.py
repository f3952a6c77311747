"""`tmc sim-cluster`: run a simulated member cluster (assembled in `tmc.server.member`)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import click

from tmc.apimachinery.quantity import parse_quantity
from tmc.cli.aio import run_async
from tmc.cli.params import Duration, log_level_option, parse_labels, start_tracing, tracing_options

if TYPE_CHECKING:
    from tmc.server.member import SimCluster


_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # It prefixes node names and names files, so it must be a short DNS label.
    if not _NAME.match(value):
        raise click.BadParameter(f"{value!r} must be a lowercase DNS label of at most 40 characters")
    return value


def _quantity(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        amount = parse_quantity(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if amount <= 0:
        raise click.BadParameter(f"{value!r} must be greater than zero")
    return value


@click.command("sim-cluster")
@click.option("--name", required=True, callback=_name, help="Cluster name: node names, kubeconfig context, file names.")
@click.option("--data-dir", default=".tmc", show_default=True, help="Directory shared by simulated clusters.")
@click.option(
    "--secure-port", default=0, show_default=True, type=click.IntRange(0, 65535), help="HTTPS port (0: a free one)."
)
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(0, 1000), help="Number of nodes.")
@click.option("--node-cpu", default="8", show_default=True, callback=_quantity, help="CPU capacity of each node.")
@click.option(
    "--node-memory", default="32Gi", show_default=True, callback=_quantity, help="Memory capacity of each node."
)
@click.option(
    "--ready-delay",
    default="1s",
    show_default=True,
    type=Duration(allow_zero=True),
    help="How long a bound pod takes to become Running and Ready (500ms, 2s or plain seconds).",
)
@click.option(
    "--labels",
    default="",
    callback=lambda ctx, param, value: parse_labels(value),
    help="k=v,... put on every node; region= and zone= also set topology.kubernetes.io/region|zone.",
)
@log_level_option
@tracing_options
def sim_cluster(
    name: str,
    data_dir: str,
    secure_port: int,
    nodes: int,
    node_cpu: str,
    node_memory: str,
    ready_delay: float,
    labels: dict[str, str],
    log_level: str,
    tracing_endpoint: str | None,
    tracing_sample_ratio: float | None,
) -> None:
    """Run a simulated member cluster (KWOK-like) serving the plain Kubernetes API.

    Writes DATA_DIR/NAME.kubeconfig. Serves Istio's VirtualService/DestinationRule and Gateway API's HTTPRoute.
    Traffic: Services annotated sim.tmc.io/request-rate get that many requests per second, split by their routes,
    counted in istio_requests_total on /metrics. Faults: pod template annotations sim.tmc.io/never-ready,
    sim.tmc.io/crash-loop, sim.tmc.io/error-rate and sim.tmc.io/latency, limited to the clusters named in
    sim.tmc.io/fault-clusters; outage: create DATA_DIR/NAME.outage (remove it to recover).
    """
    from tmc.observability.logging import configure_logging
    from tmc.server.member import SimConfig, run

    configure_logging(log_level, component="sim-cluster")
    start_tracing(
        "tmc-sim-cluster", tracing_endpoint, tracing_sample_ratio, attributes={"tmc.cluster": name}, member=True
    )
    config = SimConfig(
        name=name,
        data_dir=data_dir,
        secure_port=secure_port,
        nodes=nodes,
        node_cpu=node_cpu,
        node_memory=node_memory,
        ready_delay=ready_delay,
        labels=labels,
    )
    run_async(run(config, on_ready=_announce))


def _announce(sim: SimCluster) -> None:
    click.echo(
        f"sim-cluster {sim.config.name} ready on {sim.url} with {len(sim.nodes)} nodes; "
        f"kubeconfig {os.path.abspath(sim.kubeconfig_path)}"
    )
