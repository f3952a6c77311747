"""`tmc dashboard` (also `kubectl tmc dashboard` and `tmcctl dashboard`): the CLI's client flags, then the app.

Textual and aiohttp are imported only once the command runs, so `--help` and the other commands do not pay for them.
"""

from __future__ import annotations

from typing import Any

import click

from tmc.cli.kubeconfig_flags import client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.params import Duration


@click.command("dashboard", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--prometheus",
    default=None,
    metavar="URL",
    help="Prometheus to query for sync latency, errors and alerts (default: the one tmc up runs, if any).",
)
@click.option(
    "--interval", type=Duration(), default="5s", show_default=True, help="How often health and metrics are sampled."
)
@click.option("--trace-url", default="http://localhost:16686", show_default=True, help="Trace viewer for trace ids.")
@client_flags()
def dashboard(prometheus: str | None, interval: float, trace_url: str) -> None:
    """A live terminal dashboard of the hub: health, clusters, Placements, workloads, Events, and one object's
    debug view; cordon, pause, resume and force from the keyboard (asking first). Keys: 1-6 screens, / filter,
    ? help, q quit.

    \b
    Examples:
      tmc dashboard
      kubectl tmc dashboard --workspace root:team-a
      tmc dashboard --kubeconfig .tmc/admin.kubeconfig --prometheus http://127.0.0.1:9090
    """
    from tmc.client import KubeClient
    from tmc.tui.actions import Actions
    from tmc.tui.app import Dashboard
    from tmc.tui.feed import Feed, discover
    from tmc.tui.model import Model

    hub = connect()
    model = Model(hub.workspace, server=hub.config.base_url)
    sources = discover(hub.kubeconfig, prometheus)

    async def start(app: Dashboard) -> Any:
        client = KubeClient(hub.config, base_url=hub.config.base_url, connections=32, user_agent="tmc-dashboard")
        feed = Feed(client, model, app.changed, sources, interval)
        await feed.start()
        return feed

    Dashboard(model, actions=Actions(hub), start_feed=start, trace_url=trace_url).run()
