"""deploy/prometheus and deploy/grafana: promtool checks and unit-tests the rules, every alert has a firing and a
not-firing test case, every alert is documented, the PrometheusRule manifest and dashboards match their sources, and
every metric they read is exported by some tmc process (or listed as still to come in tests/monitoring.py)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections import defaultdict

import pytest
import yaml

import tmc
from tests import monitoring
from tests.tools import require_prometheus


def test_promtool_checks_the_rules() -> None:
    promtool = require_prometheus("promtool")
    result = subprocess.run([promtool, "check", "rules", str(monitoring.RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    promtool = require_prometheus("promtool")
    files = sorted(str(p) for p in monitoring.RULE_TESTS.glob("*.yaml"))
    assert files
    result = subprocess.run([promtool, "test", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_not_firing_case() -> None:
    cases: dict[str, set[str]] = defaultdict(set)
    for path in monitoring.RULE_TESTS.glob("*.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases[case["alertname"]].add("firing" if case.get("exp_alerts") else "not firing")
    names = {alert["alert"] for alert in monitoring.alerts()}
    missing = {name: {"firing", "not firing"} - cases[name] for name in names}
    assert {name: sorted(m) for name, m in missing.items() if m} == {}
    assert set(cases) <= names, f"tests of alerts that do not exist: {set(cases) - names}"


def test_every_alert_says_how_bad_what_and_where_its_runbook_is() -> None:
    anchors = monitoring.doc_anchors()
    for alert in monitoring.alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], name
        doc, anchor = annotations["runbook_url"].split("#")
        assert doc == "docs/observability.md", name
        assert anchor in anchors, f"{name}: docs/observability.md has no heading for #{anchor}"


def test_recording_rules_are_named_tmc_level_metric_operations() -> None:
    for name in monitoring.recorded():
        level, metric, operations = name.split(":")
        assert level == "tmc" and metric and operations, name


def test_the_prometheus_rule_manifest_holds_exactly_the_rules_file() -> None:
    manifest = yaml.safe_load(monitoring.PROMETHEUS_RULE.read_text())
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"] == yaml.safe_load(monitoring.RULES.read_text())


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(monitoring.ROOT / "scripts" / "generate_monitoring.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _exported() -> set[str]:
    """Every series name a tmc process can expose: all of tmc imported, then the default registry's names."""
    from prometheus_client import REGISTRY

    for module in pkgutil.walk_packages(tmc.__path__, "tmc."):
        if module.name != "tmc.__main__":
            importlib.import_module(module.name)
    names = set(REGISTRY._names_to_collectors)
    from tmc.observability.catalogue import CATALOGUE

    return names | set(CATALOGUE)


def test_every_metric_read_by_rules_and_dashboards_is_exported_or_pending() -> None:
    exported = _exported()
    known = exported | monitoring.recorded() | monitoring.PENDING_METRICS | {"up"}
    used: dict[str, set[str]] = defaultdict(set)
    for rule in monitoring.rules():
        for name in monitoring.metric_names(rule["expr"]):
            used[name].add(f"rule {rule.get('alert') or rule.get('record')}")
    for uid, title, expr in monitoring.panel_queries():
        for name in monitoring.metric_names(expr):
            used[name].add(f"{uid}: {title}")
    for uid, expr in monitoring.variable_queries():
        for name in monitoring.metric_names(expr):
            used[name].add(f"{uid}: variable")
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert unknown == {}
    landed = sorted(monitoring.PENDING_METRICS & exported)
    assert landed == [], f"these metrics are exported now; remove them from PENDING_METRICS: {landed}"
    unused = sorted(monitoring.PENDING_METRICS - set(used))
    assert unused == [], f"pending metrics nothing reads: {unused}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (cluster) (rate(tmc_syncer_sync_errors_total{job="tmc-syncer"}[5m]))',
            {"tmc_syncer_sync_errors_total"},
        ),
        (
            'histogram_quantile(0.99, sum by (le) (rate(x_bucket{a=~"b|c"}[$__rate_interval])))',
            {"x_bucket"},
        ),
        (
            "tmc:a:ratio_rate1h > (14.4 * 0.001) and tmc:a:ratio_rate5m > (14.4 * 0.001)",
            {"tmc:a:ratio_rate1h", "tmc:a:ratio_rate5m"},
        ),
        ('up{job=~"tmc-.*"} == 0 unless on (job) absent(z)', {"up", "z"}),
    ],
)
def test_metric_names_of_a_query(expr: str, names: set[str]) -> None:
    assert monitoring.metric_names(expr) == names
