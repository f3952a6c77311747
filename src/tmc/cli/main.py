"""`tmc` command line (also installed as `kubectl-tmc` and `tmcctl`)."""

from __future__ import annotations

import sys

import click

from tmc import __version__
from tmc.cli.catalogue import metrics_catalogue
from tmc.cli.lazy import LazyGroup
from tmc.cli.server import server
from tmc.cli.sim import sim_cluster
from tmc.cli.syncer import syncer as syncer_command
from tmc.cli.up import up

# The dashboard is named, not imported: Textual loads only when it runs (tmc.tui sits above tmc.cli).
DASHBOARD = ("tmc.tui.command:dashboard", "A live terminal dashboard of the hub (clusters, Placements, workloads).")


@click.group(cls=LazyGroup, lazy={"dashboard": DASHBOARD}, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tmc")
def cli() -> None:
    """TMC: a transparent multi-cluster control plane with a Kubernetes-compatible hub."""


cli.add_command(server)
cli.add_command(syncer_command)
cli.add_command(sim_cluster)
cli.add_command(up)
cli.add_command(metrics_catalogue)
cli.add_command(
    LazyGroup(
        "docs",
        help="Documentation generated from the API itself.",
        lazy={"api": ("tmc.cli.docs:api", "Generate the API reference (Markdown, HTML, OpenAPI JSON).")},
    )
)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
