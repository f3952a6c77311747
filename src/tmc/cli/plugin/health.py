"""`kubectl tmc health`: the hub's readiness checks, the health monitor's component states and every cluster's
Healthy condition, with the exit code scripts want: 0 healthy, 1 degraded, 2 unhealthy."""

from __future__ import annotations

from typing import Any

import click

from tmc.cli import resources as r
from tmc.cli.health_checks import parse_metrics, parse_verbose
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.output import Printer, output_option, render_table, use_color

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
EXIT = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
_STATE = {1.0: HEALTHY, 0.5: DEGRADED, 0.0: UNHEALTHY}


def hub_checks(hub: Hub) -> tuple[bool, list[dict[str, Any]]]:
    """The hub's /readyz?verbose: (passed, checks)."""
    from tmc.client import ApiError

    try:
        body = hub.client.request("GET", "/readyz", params={"verbose": "true"})
        passed = True
    except ApiError as e:  # a failing check answers 500 with the same list
        body, passed = e.body, False
    checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in parse_verbose(str(body or ""))]
    return passed, checks


def monitor_states(hub: Hub) -> dict[str, str]:
    """tmc_component_health from the hub's /metrics (the monitor's verdicts); empty when /metrics is not readable."""
    from tmc.client import ApiError

    try:
        body = hub.client.request("GET", "/metrics")
    except ApiError:
        return {}
    samples = parse_metrics(str(body), frozenset({"tmc_component_health"}))
    return {s.labels.get("component", ""): _STATE.get(s.value, DEGRADED) for s in samples}


def cluster_rows(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for st in targets:
        c = r.condition(st, "Healthy") or {}
        rows.append(
            {
                "name": r.name_of(st),
                "ready": r.ready(st),
                "healthy": c.get("status") == "True",
                "reason": c.get("reason") or "Unknown",
                "heartbeat": r.ago((st.get("status") or {}).get("lastSyncerHeartbeatTime")),
                "message": c.get("message") or "",
            }
        )
    return rows


def overall(hub_ok: bool, components: dict[str, str], clusters: list[dict[str, Any]]) -> str:
    """The monitor's rule: unhealthy when the hub is or every cluster is; degraded when some are."""
    if "overall" in components:
        return components["overall"]
    if not hub_ok:
        return UNHEALTHY
    sick = sum(1 for c in clusters if not c["healthy"])
    if clusters and sick == len(clusters):
        return UNHEALTHY
    return DEGRADED if sick else HEALTHY


@click.command("health")
@output_option(("table", "json", "yaml"))
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@client_flags(namespaced=False)
def health(output: Any, no_color: bool) -> None:
    """The health monitor's view: overall, hub components (its /readyz?verbose), and each cluster (its SyncTarget's
    Healthy condition). Exit code 0 healthy, 1 degraded, 2 unhealthy (also when the hub does not answer).

    \b
    Examples:
      kubectl tmc health
      kubectl tmc health -o json | jq .overall
      kubectl tmc health >/dev/null || echo "not healthy"
    """
    from tmc.cli.errors import explain
    from tmc.client import Unreachable

    hub = connect()
    try:
        hub_ok, checks = hub_checks(hub)
    except Unreachable as e:
        # A hub that does not answer is the unhealthiest answer of all, not a usage problem: exit 2, as unhealthy.
        click.echo(f"error: {explain(e)}", err=True)
        raise click.exceptions.Exit(EXIT[UNHEALTHY]) from None
    components = monitor_states(hub)
    clusters = cluster_rows(r.list_sync_targets(hub))
    verdict = overall(hub_ok, components, clusters)
    if output.kind != "table":
        report = {
            "overall": verdict,
            "hub": {"ready": hub_ok, "checks": checks},
            "components": components,
            "clusters": clusters,
        }
        Printer(output).print([report], single=True)
        raise click.exceptions.Exit(EXIT[verdict])
    color = use_color(no_color)
    paint = {HEALTHY: "32", DEGRADED: "33", UNHEALTHY: "31"}
    word = f"\x1b[{paint[verdict]}m{verdict}\x1b[0m" if color else verdict
    click.echo(f"Overall: {word}   (hub {'ready' if hub_ok else 'NOT ready'}, workspace {hub.workspace})")
    click.echo("\nHub components:")
    rows = [[c["name"], components.get(c["name"], HEALTHY if c["ok"] else UNHEALTHY), c["detail"]] for c in checks]
    click.echo(_indent(render_table(["COMPONENT", "STATE", "CHECK"], rows, no_headers=False, color=color)), nl=False)
    click.echo("\nClusters:")
    if not clusters:
        click.echo("  <none registered>")
    else:
        rows = [
            [c["name"], c["ready"], c["reason"], c["heartbeat"], c["message"]]
            for c in sorted(clusters, key=lambda c: c["name"])
        ]
        table = render_table(
            ["CLUSTER", "READY", "HEALTH", "HEARTBEAT", "MESSAGE"], rows, no_headers=False, color=color
        )
        click.echo(_indent(table), nl=False)
    raise click.exceptions.Exit(EXIT[verdict])


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())
