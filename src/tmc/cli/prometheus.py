"""The Prometheus `tmc up` runs: its scrape configuration (hub, syncers, simulated clusters) and its process.

The hub and each simulated cluster serve /metrics on their HTTPS port behind the admin bearer token, with a
certificate from their own CA; each syncer serves plain HTTP on its `--metrics-port`. Every target gets a `job` label
naming its kind (`tmc-hub`, `tmc-syncer`, `tmc-sim-cluster`), which the rules in deploy/prometheus and the
dashboards in deploy/grafana select on, and syncers and simulated clusters a `cluster` label.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tmc.cli.children import ChildProcess

BINARY = "prometheus"
MISSING_HINT = (
    "prometheus is not installed (make install installs it when run as root; or apt-get install prometheus); "
    "tmc up runs without it"
)
HUB_JOB = "tmc-hub"
SYNCER_JOB = "tmc-syncer"
SIM_JOB = "tmc-sim-cluster"
SCRAPE_INTERVAL = "2s"  # short, so a fresh `tmc up` has rates to show within seconds
EVALUATION_INTERVAL = "2s"
START_TIMEOUT = 30.0
# The rules of deploy/prometheus, loaded when tmc runs from a source checkout (an editable install).
RULES_FILE = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "tmc-rules.yaml"


def binary_path() -> str | None:
    return shutil.which(BINARY)


@dataclass(frozen=True)
class Target:
    """One process to scrape."""

    job: str
    address: str  # host:port
    https: bool = False
    credentials_file: str | None = None  # a file holding the bearer token
    ca_file: str | None = None  # the CA that signed the target's serving certificate
    labels: dict[str, str] = field(default_factory=dict)


def hub_target(data_dir: str, port: int) -> Target:
    pki = os.path.join(data_dir, "pki")
    return Target(
        HUB_JOB,
        f"127.0.0.1:{port}",
        https=True,
        credentials_file=os.path.join(pki, "admin.token"),
        ca_file=os.path.join(pki, "ca.crt"),
    )


def sim_target(cluster_dir: str, name: str, port: int) -> Target:
    """A simulated cluster keeps its PKI in `<clusters-dir>/<name>/pki`."""
    pki = os.path.join(cluster_dir, "pki")
    return Target(
        SIM_JOB,
        f"127.0.0.1:{port}",
        https=True,
        credentials_file=os.path.join(pki, "admin.token"),
        ca_file=os.path.join(pki, "ca.crt"),
        labels={"cluster": name},
    )


def syncer_target(name: str, port: int) -> Target:
    return Target(SYNCER_JOB, f"127.0.0.1:{port}", labels={"cluster": name})


def scrape_config(
    targets: Sequence[Target],
    *,
    interval: str = SCRAPE_INTERVAL,
    evaluation_interval: str = EVALUATION_INTERVAL,
    rule_files: Sequence[str] = (),
) -> dict[str, Any]:
    """prometheus.yml as a dict. Targets that share a job and credentials share a scrape config; the others get one
    each (a scrape config has one set of credentials), named `<job>-<n>` and relabelled back to `job: <job>`."""
    groups: dict[tuple[str, bool, str | None, str | None], list[Target]] = {}
    for target in targets:
        groups.setdefault((target.job, target.https, target.credentials_file, target.ca_file), []).append(target)
    seen: dict[str, int] = {}
    configs: list[dict[str, Any]] = []
    for (job, https, credentials_file, ca_file), members in groups.items():
        seen[job] = seen.get(job, 0) + 1
        config: dict[str, Any] = {
            "job_name": job if seen[job] == 1 else f"{job}-{seen[job]}",
            "metrics_path": "/metrics",
            "scheme": "https" if https else "http",
            # Syncers label their own series with `cluster`; keep theirs rather than renaming it exported_cluster.
            "honor_labels": True,
            "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in members],
            "relabel_configs": [{"target_label": "job", "replacement": job}],
        }
        if credentials_file is not None:
            config["authorization"] = {"type": "Bearer", "credentials_file": credentials_file}
        if ca_file is not None:
            config["tls_config"] = {"ca_file": ca_file}
        configs.append(config)
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": evaluation_interval},
        "rule_files": list(rule_files),
        "scrape_configs": configs,
    }


def default_rule_files() -> list[str]:
    return [str(RULES_FILE)] if RULES_FILE.is_file() else []


class PrometheusError(Exception):
    pass


@dataclass
class Prometheus:
    """A Prometheus child process with its configuration, data and log under `directory`."""

    binary: str
    directory: str
    port: int
    child: ChildProcess = field(init=False)

    def __post_init__(self) -> None:
        self.child = ChildProcess(self.pid_file, self.log_file)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> str:
        return os.path.join(self.directory, "prometheus.yml")

    @property
    def log_file(self) -> str:
        return os.path.join(self.directory, "prometheus.log")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.directory, "prometheus.pid")

    def write_config(self, config: dict[str, Any]) -> None:
        os.makedirs(self.directory, exist_ok=True)
        with open(self.config_file, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)

    def start(self) -> None:
        """Starts Prometheus on the written configuration and waits until it answers /-/ready."""
        os.makedirs(self.directory, exist_ok=True)
        self.child.spawn(
            [
                self.binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=2d",
            ]
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive():
                raise PrometheusError(f"prometheus failed to start; see {self.log_file}")
            if self.ready():
                return
            time.sleep(0.1)
        raise PrometheusError(f"timed out waiting for prometheus; see {self.log_file}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.child.alive()

    def stop(self, timeout: float = 15.0) -> None:
        self.child.stop(timeout)
