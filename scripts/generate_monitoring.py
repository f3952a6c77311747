"""Writes what deploy/ derives: the PrometheusRule manifest (from deploy/prometheus/tmc-rules.yaml) and the Grafana
dashboards (deploy/grafana/*.json, from DASHBOARDS below). `--check` writes nothing and exits 1 if a file differs
from what would be written (tests/unit/test_prometheus_rules.py runs it).

    python scripts/generate_monitoring.py [--check]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "tmc-rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "prometheus" / "tmc-prometheusrule.yaml"
GRAFANA = ROOT / "deploy" / "grafana"
RATE = "$__rate_interval"


def prometheus_rule() -> str:
    """The rules file as a prometheus-operator PrometheusRule: the same groups, under spec."""
    rules = yaml.safe_load(RULES.read_text())
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tmc", "labels": {"app.kubernetes.io/name": "tmc", "role": "alert-rules"}},
        "spec": rules,
    }
    header = "# Generated from tmc-rules.yaml by scripts/generate_monitoring.py; do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=120)


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[str, ...]
    legend: str = ""
    kind: str = "timeseries"  # or stat
    unit: str = "short"
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    cluster_variable: bool = False
    tags: tuple[str, ...] = field(default=("tmc",))


C = 'cluster=~"$cluster"'

DASHBOARDS = (
    Dashboard(
        "tmc-fleet",
        "TMC / Fleet overview",
        "Every member cluster at a glance: readiness, heartbeats, what is synced where, capacity in use.",
        (
            Panel("Ready SyncTargets", ('count(tmc_cluster_health_score{job="tmc-hub"} > 0)',), kind="stat"),
            Panel("Processes up", ('sum(up{job=~"tmc-.*"})',), kind="stat"),
            Panel("Cluster health score", ('tmc_cluster_health_score{job="tmc-hub"}',), "{{cluster}}"),
            Panel(
                "Syncer heartbeat age", ('tmc_syncer_heartbeat_age_seconds{job="tmc-syncer"}',), "{{cluster}}", unit="s"
            ),
            Panel("Objects by sync state", ('sum by (state) (tmc_workload_sync_status{job="tmc-hub"})',), "{{state}}"),
            Panel(
                "Synced share per SyncTarget",
                ("tmc:workload_sync_status:synced_ratio",),
                "{{sync_target}}",
                unit="percentunit",
            ),
            Panel(
                "Utilization by cluster",
                ('tmc_cluster_utilization_ratio{job="tmc-hub"}',),
                "{{cluster}} {{resource}}",
                unit="percentunit",
            ),
            Panel(
                "Resource utilization (percent)",
                ('tmc_cluster_resource_utilization_percent{job="tmc-hub"}',),
                "{{cluster}} {{resource}}",
                unit="percent",
            ),
            Panel(
                "Propagation SLI: failed or slow spec syncs",
                ("tmc:syncer_propagation_errors:ratio_rate5m", "tmc:syncer_propagation_errors:ratio_rate1h"),
                "",
                unit="percentunit",
                description="The propagation SLO allows 0.5%.",
            ),
            Panel(
                "Syncer connections",
                ('sum by (cluster, status) (tmc_syncer_connections{job="tmc-syncer"})',),
                "{{cluster}} {{status}}",
            ),
            Panel("Component health", ('tmc_component_health{job="tmc-hub"}',), "{{component}}"),
        ),
    ),
    Dashboard(
        "tmc-cluster",
        "TMC / Cluster and syncer",
        "One member cluster and its syncer: health, heartbeat, sync rates, latency and errors, capacity.",
        (
            Panel("Health score", (f'tmc_cluster_health_score{{job="tmc-hub",{C}}}',), "{{cluster}}"),
            Panel(
                "Heartbeat age", (f'tmc_syncer_heartbeat_age_seconds{{job="tmc-syncer",{C}}}',), "{{cluster}}", unit="s"
            ),
            Panel(
                "Syncs per second",
                (f"sum by (direction, result) (rate(tmc_syncer_sync_duration_seconds_count{{{C}}}[{RATE}]))",),
                "{{direction}} {{result}}",
                unit="ops",
            ),
            Panel(
                "Sync latency p99",
                (
                    "histogram_quantile(0.99, sum by (direction, le) "
                    f"(rate(tmc_syncer_sync_duration_seconds_bucket{{{C}}}[{RATE}])))",
                ),
                "{{direction}}",
                unit="s",
            ),
            Panel(
                "Sync errors by type",
                (f"sum by (error_type) (rate(tmc_syncer_sync_errors_total{{{C}}}[{RATE}]))",),
                "{{error_type}}",
                unit="ops",
            ),
            Panel(
                "Objects synced",
                (f"sum by (resource) (tmc_syncer_synced_resources_total{{{C}}})",),
                "{{resource}}",
            ),
            Panel(
                "Syncer objects by state",
                (f'sum by (state) (tmc_syncer_objects{{job="tmc-syncer",{C}}})',),
                "{{state}}",
            ),
            Panel(
                "Syncer cache hit rate",
                (f'tmc_cache_hit_rate_percent{{job="tmc-syncer",{C}}}',),
                "{{cluster}} {{cache_type}}",
                unit="percent",
            ),
            Panel("Capacity", (f'tmc_cluster_capacity{{job="tmc-hub",{C}}}',), "{{resource}}"),
            Panel(
                "Utilization",
                (f'tmc_cluster_utilization_ratio{{job="tmc-hub",{C}}}',),
                "{{resource}}",
                unit="percentunit",
            ),
            Panel(
                "Objects by sync state",
                ('sum by (state) (tmc_workload_sync_status{job="tmc-hub",sync_target=~"$cluster"})',),
                "{{state}}",
            ),
            Panel(
                "Member API requests",
                (f'sum by (verb) (rate(apiserver_request_total{{job="tmc-sim-cluster",{C}}}[{RATE}]))',),
                "{{verb}}",
                unit="reqps",
            ),
            Panel(
                "Syncer operations",
                (f'sum by (operation, result) (rate(syncer_operations_total{{sync_target=~"$cluster"}}[{RATE}]))',),
                "{{operation}} {{result}}",
                unit="ops",
            ),
            Panel(
                "Syncer operation latency p99",
                (
                    "histogram_quantile(0.99, sum by (operation, le) "
                    f'(rate(syncer_operation_duration_seconds_bucket{{sync_target=~"$cluster"}}[{RATE}])))',
                ),
                "{{operation}}",
                unit="s",
            ),
            Panel(
                "Syncer resources by status",
                ('sum by (resource_type, status) (syncer_resources_total{sync_target=~"$cluster"})',),
                "{{resource_type}} {{status}}",
            ),
            Panel("Syncer target health", ('syncer_target_health{sync_target=~"$cluster"}',), "{{sync_target}}"),
            Panel(
                "Syncer errors",
                (f'sum by (error_type) (rate(syncer_errors_total{{sync_target=~"$cluster"}}[{RATE}]))',),
                "{{error_type}}",
                unit="ops",
            ),
        ),
        cluster_variable=True,
    ),
    Dashboard(
        "tmc-placement",
        "TMC / Placement",
        "The placement scheduler: decisions and their outcome, how long they take, what each Placement selected.",
        (
            Panel(
                "Decisions per second",
                (f'sum by (strategy, result) (rate(tmc_placement_decisions_total{{job="tmc-hub"}}[{RATE}]))',),
                "{{strategy}} {{result}}",
                unit="ops",
            ),
            Panel(
                "Failed decisions per second",
                (
                    "sum by (workspace, strategy) "
                    f'(rate(tmc_placement_decisions_total{{job="tmc-hub",result!="success"}}[{RATE}]))',
                ),
                "{{workspace}} {{strategy}}",
                unit="ops",
            ),
            Panel(
                "Decision duration p99",
                (
                    "histogram_quantile(0.99, sum by (strategy, le) "
                    f'(rate(tmc_placement_decision_duration_seconds_bucket{{job="tmc-hub"}}[{RATE}])))',
                ),
                "{{strategy}}",
                unit="s",
            ),
            Panel(
                "Selected targets per Placement",
                ('tmc_placement_selected_targets{job="tmc-hub"}',),
                "{{workspace}} {{placement}}",
            ),
            Panel(
                "Placement latency p99 (spec change to decision)",
                (
                    "histogram_quantile(0.99, sum by (strategy, le) "
                    f'(rate(tmc_placement_latency_seconds_bucket{{job="tmc-hub"}}[{RATE}])))',
                ),
                "{{strategy}}",
                unit="s",
            ),
            Panel(
                "Placement reconciles",
                (
                    "sum by (controller, result) "
                    f'(rate(tmc_controller_reconciles_total{{job="tmc-hub",controller=~".*placement.*"}}[{RATE}]))',
                ),
                "{{controller}} {{result}}",
                unit="ops",
            ),
        ),
    ),
    Dashboard(
        "tmc-hub-api",
        "TMC / Hub API",
        "The hub's API server, storage and controllers: request rates, errors and latency, watches, commits, queues.",
        (
            Panel(
                "Requests per second by verb",
                (f'sum by (verb) (rate(apiserver_request_total{{job="tmc-hub"}}[{RATE}]))',),
                "{{verb}}",
                unit="reqps",
            ),
            Panel(
                "Requests per second by code",
                (f'sum by (code) (rate(apiserver_request_total{{job="tmc-hub"}}[{RATE}]))',),
                "{{code}}",
                unit="reqps",
            ),
            Panel(
                "5xx ratio (availability SLO allows 0.1%)",
                ("tmc:apiserver_request_errors:ratio_rate5m", "tmc:apiserver_request_errors:ratio_rate1h"),
                "",
                unit="percentunit",
            ),
            Panel(
                "Request latency p99 by verb",
                ('tmc:apiserver_request_duration_seconds:p99_5m{job="tmc-hub"}',),
                "{{verb}}",
                unit="s",
            ),
            Panel("In-flight requests", ('apiserver_current_inflight_requests{job="tmc-hub"}',), "{{request_kind}}"),
            Panel(
                "Long-running requests", ('sum by (verb) (apiserver_longrunning_requests{job="tmc-hub"})',), "{{verb}}"
            ),
            Panel("Registered watchers", ('sum(apiserver_registered_watchers{job="tmc-hub"})',), "watchers"),
            Panel(
                "Storage commit p99", ('tmc:storage_commit_duration_seconds:p99_5m{job="tmc-hub"}',), "p99", unit="s"
            ),
            Panel(
                "Storage writes per second",
                (f'sum(rate(tmc_storage_writes_total{{job="tmc-hub"}}[{RATE}]))',),
                "writes",
                unit="ops",
            ),
            Panel(
                "Watches closed for falling behind",
                (f'sum(increase(tmc_storage_watch_overflows_total{{job="tmc-hub"}}[{RATE}]))',),
                "overflows",
            ),
            Panel(
                "Watch cache hit rate",
                ('tmc_cache_hit_rate_percent{job="tmc-hub"}',),
                "{{cache_type}}",
                unit="percent",
            ),
            Panel("Work queue depth", ('sum by (name) (workqueue_depth{job="tmc-hub"})',), "{{name}}"),
            Panel(
                "Reconciles per second",
                (f'sum by (controller) (rate(tmc_controller_reconciles_total{{job="tmc-hub"}}[{RATE}]))',),
                "{{controller}}",
                unit="ops",
            ),
            Panel(
                "Reconcile errors per second",
                (f'sum by (controller, error_type) (rate(tmc_controller_errors_total{{job="tmc-hub"}}[{RATE}]))',),
                "{{controller}} {{error_type}}",
                unit="ops",
            ),
        ),
    ),
)


def _panel(panel: Panel, index: int) -> dict[str, Any]:
    width = 6 if panel.kind == "stat" else 12
    height = 4 if panel.kind == "stat" else 8
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": height, "w": width, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": panel.legend or "__auto",
            }
            for n, expr in enumerate(panel.exprs)
        ],
    }


def dashboard(d: Dashboard) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}},
    ]
    if d.cluster_variable:
        variables.append(
            {
                "name": "cluster",
                "label": "Cluster",
                "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": {
                    "query": 'label_values(tmc_cluster_health_score{job="tmc-hub"}, cluster)',
                    "refId": "cluster",
                },
                "definition": 'label_values(tmc_cluster_health_score{job="tmc-hub"}, cluster)',
                "refresh": 2,
                "includeAll": True,
                "multi": True,
                "allValue": ".+",
                "current": {},
            }
        )
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "templating": {"list": variables},
        "panels": [_panel(p, i) for i, p in enumerate(d.panels)],
    }


def outputs() -> dict[Path, str]:
    files = {PROMETHEUS_RULE: prometheus_rule()}
    for d in DASHBOARDS:
        files[GRAFANA / f"{d.uid}.json"] = json.dumps(dashboard(d), indent=2) + "\n"
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run python scripts/generate_monitoring.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
