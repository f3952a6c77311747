"""The `kubectl tmc` command tree. Subcommands are imported when run, so `kubectl tmc --help` stays fast."""

from __future__ import annotations

import os
import sys

import click

from tmc import __version__
from tmc.cli.errors import run
from tmc.cli.lazy import LazyGroup

PROG = "kubectl tmc"
COMPLETE_VAR = "_KUBECTL_TMC_COMPLETE"

COMMANDS = {
    "get": ("tmc.cli.plugin.get:get", "List SyncTargets, Placements, clusters or placed workloads."),
    "describe": ("tmc.cli.plugin.describe:describe", "Show one SyncTarget, Placement, cluster or workload in detail."),
    "health": ("tmc.cli.plugin.health:health", "The health monitor's view: hub components and clusters."),
    "ws": ("tmc.cli.plugin.ws:ws", "Show, list, enter or create kcp workspaces."),
    "debug": ("tmc.cli.plugin.debug:debug", "Explain a syncer's or a Placement's state."),
    "sync": ("tmc.cli.plugin.sync:sync", "Sync status; force, pause or resume syncing."),
    "placement": ("tmc.cli.plugin.placement:placement", "Create, update or simulate Placements."),
    "rollout": (
        "tmc.cli.plugin.rollout:rollout",
        "Canary rollouts (get, list, promote, abort, ...); history and undo of any placed workload.",
    ),
    "dashboard": (
        "tmc.tui.command:dashboard",
        "A live terminal dashboard of the hub (clusters, Placements, workloads).",
    ),
    "completion": ("tmc.cli.completion:plugin_completion", "Print a shell completion script (bash, zsh, fish)."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """kubectl tmc: TMC's placements, clusters, workloads and sync state, from the hub kubectl talks to.

    Client flags (--kubeconfig, --context, --server, --token, --workspace, -n) go after the subcommand, as in
    kubectl.

    \b
    Examples:
      kubectl tmc get clusters
      kubectl tmc describe pl web
      kubectl tmc health
      kubectl tmc ws use root:team-a
      kubectl tmc sync pause deployment/web -n shop --cluster cluster-1
      kubectl tmc rollout get web -n shop -w
    """


def main() -> None:
    # kubectl runs plugins as `kubectl-tmc`; usage lines say `kubectl tmc` then, as the plugin guidelines ask.
    invoked = os.path.basename(sys.argv[0])
    run(cli, PROG if invoked.startswith("kubectl") else invoked, COMPLETE_VAR)
