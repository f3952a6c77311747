"""The `tmcctl` command tree (operators). Subcommands are imported when run."""

from __future__ import annotations

import click

from tmc import __version__
from tmc.cli.errors import run
from tmc.cli.lazy import LazyGroup

PROG = "tmcctl"
COMPLETE_VAR = "_TMCCTL_COMPLETE"

COMMANDS = {
    "cluster": ("tmc.cli.ctl.cluster:cluster", "Register, inspect, cordon, drain and unregister member clusters."),
    "placement": ("tmc.cli.plugin.placement:placement", "Create, list, describe or delete Placements."),
    "workload": ("tmc.cli.ctl.workload:workload", "Placed workloads and their per-target state."),
    "rollout": (
        "tmc.cli.plugin.rollout:rollout",
        "Canary rollouts: get, list, promote, abort, pause, resume, retry, status.",
    ),
    "dashboard": (
        "tmc.tui.command:dashboard",
        "A live terminal dashboard of the hub (clusters, Placements, workloads).",
    ),
    "completion": ("tmc.cli.completion:ctl_completion", "Print a shell completion script (bash, zsh, fish)."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """tmcctl: operate TMC's member clusters, Placements and workloads.

    Client flags (--kubeconfig, --context, --server, --token, --workspace, -n) go after the subcommand.

    \b
    Examples:
      tmcctl cluster register eu-1 --location eu-central-1 --apply-to eu-1.kubeconfig --wait
      tmcctl cluster drain eu-1
      tmcctl placement list
      tmcctl workload status -A
    """


def main() -> None:
    run(cli, PROG, COMPLETE_VAR)
