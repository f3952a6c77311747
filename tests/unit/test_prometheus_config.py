"""The scrape configuration `tmc up` gives Prometheus: the hub and simulated clusters over HTTPS with their own
token and CA, syncers over HTTP, every target labelled with its job kind; promtool accepts it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.tools import require_prometheus
from tmc.cli import prometheus as prom


def _targets(tmp_path: Path) -> list[prom.Target]:
    return [
        prom.hub_target(str(tmp_path), 6443),
        prom.sim_target(str(tmp_path / "clusters" / "cluster-1"), "cluster-1", 7001),
        prom.sim_target(str(tmp_path / "clusters" / "cluster-2"), "cluster-2", 7002),
        prom.syncer_target("cluster-1", 9001),
        prom.syncer_target("cluster-2", 9002),
    ]


def test_each_process_is_scraped_with_its_credentials_under_its_job(tmp_path: Path) -> None:
    config = prom.scrape_config(_targets(tmp_path), rule_files=["rules.yaml"])
    assert config["global"]["scrape_interval"] == "2s"
    assert config["rule_files"] == ["rules.yaml"]
    by_name = {c["job_name"]: c for c in config["scrape_configs"]}
    assert sorted(by_name) == ["tmc-hub", "tmc-sim-cluster", "tmc-sim-cluster-2", "tmc-syncer"]

    hub = by_name["tmc-hub"]
    assert hub["scheme"] == "https"
    assert hub["authorization"] == {"type": "Bearer", "credentials_file": str(tmp_path / "pki" / "admin.token")}
    assert hub["tls_config"] == {"ca_file": str(tmp_path / "pki" / "ca.crt")}
    assert hub["static_configs"] == [{"targets": ["127.0.0.1:6443"], "labels": {}}]

    # One scrape config per simulated cluster (each has its own CA and token), all relabelled job: tmc-sim-cluster.
    second = by_name["tmc-sim-cluster-2"]
    assert second["tls_config"] == {"ca_file": str(tmp_path / "clusters" / "cluster-2" / "pki" / "ca.crt")}
    assert second["static_configs"] == [{"targets": ["127.0.0.1:7002"], "labels": {"cluster": "cluster-2"}}]
    assert second["relabel_configs"] == [{"target_label": "job", "replacement": "tmc-sim-cluster"}]

    syncers = by_name["tmc-syncer"]
    assert syncers["scheme"] == "http" and "authorization" not in syncers and "tls_config" not in syncers
    assert [s["labels"] for s in syncers["static_configs"]] == [{"cluster": "cluster-1"}, {"cluster": "cluster-2"}]


def test_promtool_accepts_the_generated_config(tmp_path: Path) -> None:
    promtool = require_prometheus("promtool")
    for pki in (
        tmp_path / "pki",
        tmp_path / "clusters" / "cluster-1" / "pki",
        tmp_path / "clusters" / "cluster-2" / "pki",
    ):
        pki.mkdir(parents=True)
        (pki / "admin.token").write_text("token\n")
        (pki / "ca.crt").write_text("")
    server = prom.Prometheus(promtool, str(tmp_path / "prometheus"), 9090)
    server.write_config(prom.scrape_config(_targets(tmp_path), rule_files=prom.default_rule_files()))
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", server.config_file], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(Path(server.config_file).read_text())["rule_files"] == [str(prom.RULES_FILE)]
    assert os.path.isfile(prom.RULES_FILE)
