"""The Prometheus `tmc up` runs: every process scraped and up, the rules of deploy/prometheus loaded, and every query
of every dashboard in deploy/grafana parsed and, on a system running a placed workload, answered with data (except
the panels tests/monitoring.py lists as empty when healthy or waiting for their metrics)."""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests import monitoring
from tests.e2e.harness import FAST_UP_ARGS, TmcUp, free_port, wait_until
from tests.tools import require_prometheus

pytestmark = pytest.mark.usefixtures("kubectl_binary")

WORKLOAD = """
apiVersion: v1
kind: Namespace
metadata: {name: metrics-shop, labels: {app: metrics-shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: metrics-shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: metrics-shop}
spec:
  locationSelectors: [{}]
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  namespaceSelector: {matchLabels: {app: metrics-shop}}
  locationWorkspace: root
  replicaScheduling: {type: Divided}
"""


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    require_prometheus("prometheus")
    port = free_port()
    up = TmcUp(
        str(tmp_path_factory.mktemp("up-prometheus")), free_port(), *FAST_UP_ARGS, "--prometheus-port", str(port)
    )
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


@pytest.fixture(scope="module")
def prometheus(system: TmcUp) -> str:
    url = system.prometheus_url()
    assert url is not None, system.output()
    assert url == f"http://127.0.0.1:{system.args[-1]}"  # --prometheus-port
    return url


@pytest.fixture(scope="module")
def placed(system: TmcUp) -> None:
    """A Divided Deployment running on all three members, its status back on the hub."""
    hub = system.kubectl()
    hub.run("apply", "-f", "-", input=WORKLOAD)
    wait_until(
        lambda: hub.json("get", "deployment", "web", "-n", "metrics-shop").get("status", {}).get("readyReplicas") == 3,
        timeout=30,
        what="3 ready replicas of the placed Deployment on the hub",
    )


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), orjson.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, orjson.loads(e.read())


def _query(prometheus: str, expr: str) -> tuple[int, Any]:
    return _get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")


def test_up_prints_the_prometheus_url_and_every_process_is_scraped(system: TmcUp, prometheus: str) -> None:
    assert re.search(
        rf"Prometheus on {re.escape(prometheus)} .*curl {re.escape(prometheus)}/api/v1/targets", system.output()
    )

    def all_up() -> list[dict[str, Any]] | None:
        status, body = _get(f"{prometheus}/api/v1/targets")
        targets = body["data"]["activeTargets"]
        return targets if status == 200 and len(targets) == 7 and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(all_up, timeout=30, interval=0.5, what="7 scrape targets up")
    jobs = sorted((t["labels"]["job"], t["labels"].get("cluster", "")) for t in targets)
    assert jobs == [
        ("tmc-hub", ""),
        *(("tmc-sim-cluster", f"cluster-{i}") for i in (1, 2, 3)),
        *(("tmc-syncer", f"cluster-{i}") for i in (1, 2, 3)),
    ]


def test_the_rules_are_loaded_and_evaluate(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        status, body = _get(f"{prometheus}/api/v1/rules")
        rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
        # Before its first evaluation a rule's lastEvaluation is Go's zero time.
        done = status == 200 and rules and not any(r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if done else None

    rules = wait_until(evaluated, timeout=30, interval=0.5, what="every rule evaluated once")
    names = {rule["name"] for rule in rules}
    assert names == monitoring.recorded() | {alert["alert"] for alert in monitoring.alerts()}
    assert [rule["name"] for rule in rules if rule["health"] != "ok"] == []


def _uses_pending(expr: str) -> bool:
    return bool(monitoring.metric_names(expr) & monitoring.PENDING_METRICS)


@pytest.mark.usefixtures("placed")
def test_every_dashboard_query_parses_and_every_panel_that_should_have_data_has_it(prometheus: str) -> None:
    panels: dict[tuple[str, str], list[str]] = {}
    for uid, title, expr in monitoring.panel_queries():
        panels.setdefault((uid, title), []).append(monitoring.concrete(expr))
    for uid, expr in monitoring.variable_queries():
        panels[(uid, "variable")] = [monitoring.concrete(expr)]

    def empty_panels() -> list[tuple[str, str]]:
        empty = []
        for key, exprs in panels.items():
            results = []
            for expr in exprs:
                status, body = _query(prometheus, expr)
                assert status == 200 and body["status"] == "success", f"{key}: {expr}: {body}"
                results += body["data"]["result"]
            needed = key not in monitoring.ALLOWED_EMPTY and not any(_uses_pending(e) for e in exprs)
            if needed and not results:
                empty.append(key)
        return empty

    last: list[tuple[str, str]] = []

    def settled() -> bool:
        last[:] = empty_panels()
        return not last

    try:
        wait_until(settled, timeout=60, interval=1, what="data in every panel")
    except AssertionError:
        pytest.fail(f"panels without data: {last}")


def test_without_prometheus_on_path_up_runs_and_says_how_to_get_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Only the Python environment's bin directory on PATH: tmc up's children run through sys.executable.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    up = TmcUp(str(tmp_path_factory.mktemp("up-no-prometheus")), free_port(), "--clusters", "0", env=env)
    try:
        up.wait_up()
        wait_until(lambda: "No Prometheus" in up.output(), timeout=10, what="the hint")
        assert (
            "No Prometheus: prometheus is not installed (make install installs it when run as root; "
            "or apt-get install prometheus); tmc up runs without it." in up.output()
        )
        assert up.prometheus_url() is None
    finally:
        assert up.stop() == 0, up.output()
