"""`tmcctl workload status`: placed workloads and their per-target state (the plugin's `get wl`)."""

from __future__ import annotations

import click

from tmc.cli.kubeconfig_flags import client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.output import OutputFormat, Printer, printer_options


@click.group("workload", context_settings=CONTEXT_SETTINGS)
def workload() -> None:
    """Placed workloads.

    \b
    Example:
      tmcctl workload status -A
    """


@workload.command("status")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@printer_options
@client_flags()
def status(all_namespaces: bool, output: OutputFormat, no_headers: bool, sort_by: str | None, no_color: bool) -> None:
    """Every placed workload with its targets and each target's sync state.

    \b
    Examples:
      tmcctl workload status -n shop
      tmcctl workload status -A -o wide
    """
    from tmc.cli.plugin.get import fetch

    items, columns = fetch(connect(), "workloads", (), "", all_namespaces)
    Printer(output, no_headers, sort_by, no_color, columns).print(items)
