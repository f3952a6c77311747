"""`kubectl tmc debug syncer CLUSTER` and `debug placement NAME`: everything known about one syncer or one
Placement's scheduling, ending with a verdict and what to try.

A SyncTarget does not publish where its syncer serves /readyz and /metrics. The syncer's endpoints come from
--health-url/--metrics-url, else from `tmc up`'s description (`up.json` beside the hub kubeconfig); without either,
only the hub's view is shown and the output says so.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import click

from tmc.cli import contract
from tmc.cli import resources as r
from tmc.cli.describe_text import Describer
from tmc.cli.health_checks import parse_metrics, parse_verbose, total
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.plugin.kinds import complete_clusters

_SYNCER_FAMILIES = frozenset(
    {
        "tmc_syncer_objects",
        "tmc_syncer_sync_errors_total",
        "tmc_syncer_watch_restarts_total",
        "tmc_syncer_heartbeat_age_seconds",
        "tmc_syncer_requests_total",
    }
)


def endpoints_from_up(kubeconfig: str, cluster: str) -> tuple[str | None, str | None]:
    """(readyz URL, metrics URL) of a syncer `tmc up` started, from its up.json."""
    description = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), "up.json")
    try:
        with open(description) as f:
            up = json.load(f)
    except (OSError, ValueError):
        return None, None
    for c in up.get("clusters") or ():
        if c.get("name") == cluster and c.get("syncer"):
            health = str(c["syncer"].get("health") or "")
            return (health.rsplit("/", 1)[0] + "/readyz" if health else None), c["syncer"].get("metrics")
    return None, None


def fetch(url: str) -> tuple[int | None, str]:
    """(status, body) of a plain GET; (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e))


def syncer_report(hub: Hub, st: dict[str, Any], health_url: str | None, metrics_url: str | None) -> tuple[str, bool]:
    """The report and whether the syncer looks healthy."""
    d = Describer()
    status = st.get("status") or {}
    name = r.name_of(st)
    problems: list[str] = []
    tips: list[str] = []
    heartbeat = r.seconds_since(status.get("lastSyncerHeartbeatTime"))
    d.field("SyncTarget", f"{name} (workspace {hub.workspace}, key {r.target_key(st, hub.workspace)})")
    d.field("Ready", r.ready(st))
    d.field("Health", r.health(st))
    d.field("Heartbeat age", r.duration_text(heartbeat))
    counts = status.get("syncerStatus") or {}
    d.field(
        "Objects (hub view)",
        f"{counts.get('syncedResources', 0)} synced, {counts.get('pendingResources', 0)} pending, "
        f"{counts.get('failedResources', 0)} failed",
    )
    d.conditions(st)
    for c in status.get("conditions") or ():
        if isinstance(c, dict) and c.get("status") == "False":
            problems.append(f"{c.get('type')} is False ({c.get('reason') or 'no reason'}: {c.get('message') or ''})")
    if heartbeat is None:
        problems.append("the syncer never sent a heartbeat")
        tips.append(f"start it: tmcctl cluster register {name} prints the command")
    if counts.get("failedResources"):
        tips.append(f"see which objects fail: kubectl tmc sync status -A --cluster {name}")
    d.section("Syncer /readyz")
    if health_url:
        code, body = fetch(health_url + "?verbose")
        if code is None:
            d.lines.append(f"  not reachable at {health_url}: {body}")
            problems.append("the syncer's health port does not answer")
            tips.append("check that the syncer process runs (its pid file / Deployment) and its --health-port")
        else:
            for check in parse_verbose(body):
                d.lines.append(f"  [{'+' if check.ok else '-'}]{check.name} {check.detail}")
                if not check.ok:
                    problems.append(f"syncer check {check.name} fails")
            if code == 200:
                d.lines.append("  readyz check passed")
    else:
        d.lines.append("  unknown: the SyncTarget does not publish the syncer's health port; pass --health-url")
    d.section("Syncer /metrics")
    if metrics_url:
        code, body = fetch(metrics_url)
        if code != 200:
            d.lines.append(f"  not reachable at {metrics_url}: {body[:200]}")
        else:
            samples = parse_metrics(body, _SYNCER_FAMILIES)
            queue = total(samples, "tmc_syncer_objects", state="pending")
            failed = total(samples, "tmc_syncer_objects", state="failed")
            d.field("Queue depth", int(queue) if queue is not None else "<unknown>", indent=2)
            d.field("Failed objects", int(failed) if failed is not None else "<unknown>", indent=2)
            errors = [s for s in samples if s.name == "tmc_syncer_sync_errors_total" and s.value]
            d.field(
                "Sync errors",
                ", ".join(f"{s.labels.get('error_type')}={int(s.value)}" for s in errors) or "none",
                indent=2,
            )
            restarts = [s for s in samples if s.name == "tmc_syncer_watch_restarts_total" and s.value]
            d.field(
                "Watch restarts",
                ", ".join(f"{s.labels.get('endpoint')}/{s.labels.get('reason')}={int(s.value)}" for s in restarts)
                or "none",
                indent=2,
            )
            if failed:
                problems.append(f"{int(failed)} object(s) failing")
    else:
        d.lines.append("  unknown: the SyncTarget does not publish the syncer's metrics port; pass --metrics-url")
    warnings = [
        (r.meta(e).get("namespace"), e.get("reason"), e.get("message"))
        for e in r.events_for(hub, "SyncTarget", name)
        if e.get("type") == "Warning"
    ]
    d.section("Last errors (Warning Events)")
    d.table(("NAMESPACE", "REASON", "MESSAGE"), warnings[-5:])
    key = r.target_key(st, hub.workspace)
    failing = [
        (r.meta(o).get("namespace"), f"{o.get('kind')}/{r.name_of(o)}", r.meta(o)["annotations"][annotation])
        for o in r.list_workloads(hub, None).on(key)
        if (annotation := contract.error_annotation(key)) in (r.meta(o).get("annotations") or {})
    ]
    d.section("Failing workloads (sync.tmc.kcp.io/error)")
    d.table(("NAMESPACE", "WORKLOAD", "ERROR"), failing[:10])
    if failing:
        problems.append(f"{len(failing)} workload(s) report a sync error")
        tips.append(f"see them with 'kubectl tmc sync status -A --cluster {name} -o wide'")
    healthy = not problems
    d.lines.append("")
    if healthy:
        d.lines.append(f"Verdict: syncer for {name} is healthy.")
    else:
        d.lines.append(f"Verdict: syncer for {name} is NOT healthy: {'; '.join(problems)}.")
        tips.append(f"read the syncer's log; 'kubectl tmc describe cl {name}' shows its workloads")
        d.lines.append("Try: " + "; ".join(dict.fromkeys(tips)))
    return str(d), healthy


@click.group("debug", context_settings=CONTEXT_SETTINGS)
def debug() -> None:
    """Explain a syncer's state or a Placement's scheduling.

    \b
    Examples:
      kubectl tmc debug syncer cluster-1
      kubectl tmc debug placement web
    """


@debug.command("syncer")
@click.argument("cluster", shell_complete=complete_clusters)
@click.option("--health-url", default=None, help="The syncer's health base URL, e.g. http://10.0.0.5:8081/readyz.")
@click.option("--metrics-url", default=None, help="The syncer's metrics URL, e.g. http://10.0.0.5:8080/metrics.")
@client_flags(namespaced=False)
def syncer(cluster: str, health_url: str | None, metrics_url: str | None) -> None:
    """Health checks, heartbeat age, watch state, queue depth, error counts and last errors of one syncer, from its
    SyncTarget and (when reachable) its own /readyz?verbose and /metrics. Exit code 1 when it is not healthy.

    \b
    Examples:
      kubectl tmc debug syncer cluster-1
      kubectl tmc debug syncer eu-1 --health-url http://10.0.0.5:8081/readyz --metrics-url http://10.0.0.5:8080/metrics
    """
    hub = connect()
    st = r.get_sync_target(hub, cluster)
    found_health, found_metrics = endpoints_from_up(hub.kubeconfig, cluster)
    report, healthy = syncer_report(hub, st, health_url or found_health, metrics_url or found_metrics)
    click.echo(report, nl=False)
    if not healthy:
        raise click.exceptions.Exit(1)


@debug.command("placement")
@click.argument("name")
@client_flags(namespaced=False)
def placement(name: str) -> None:
    """Simulate the Placement unchanged (a server-side dry run) and explain every candidate SyncTarget.

    \b
    Example:
      kubectl tmc debug placement web
    """
    from tmc.cli.plugin.describe import describe_placement
    from tmc.cli.plugin.get import _get_placement
    from tmc.cli.plugin.placement import explain, simulate_object

    hub = connect()
    current = _get_placement(hub, name)
    click.echo(describe_placement(hub, current))
    click.echo("Simulation (nothing stored):")
    click.echo(explain(simulate_object(hub, current, exists=True)), nl=False)
