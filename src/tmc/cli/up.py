"""`tmc up`: a whole TMC on one machine — the hub, N simulated member clusters and one syncer per cluster.

Each part is a child process with its pid file and log under the data dir, so the system can be inspected and faults
can be injected (SIGSTOP a cluster's pid) while it runs. Ctrl-C or SIGTERM stops every child.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
import orjson

from tmc.api.workload import REGION_LABEL, ZONE_LABEL
from tmc.cli import prometheus as prom
from tmc.cli.children import ChildProcess
from tmc.cli.params import check_tracing, tracing_options
from tmc.client import LOCATION, ApiError, BlockingClient, Conflict, Unreachable
from tmc.client.kubeconfig import load_kubeconfig

# Distinct regions and zones, cycled when more clusters are asked for than there are entries.
TOPOLOGY = (
    ("us-east-1", "us-east-1a"),
    ("eu-central-1", "eu-central-1a"),
    ("ap-southeast-1", "ap-southeast-1a"),
    ("us-west-2", "us-west-2b"),
    ("eu-west-1", "eu-west-1c"),
    ("sa-east-1", "sa-east-1a"),
)
START_TIMEOUT = 60.0


@dataclass
class Child(ChildProcess):
    """A tmc process of the system; `name` is what `tmc up` calls it in its messages."""

    name: str = ""

    def start(self, args: list[str]) -> None:
        self.spawn([sys.executable, "-m", "tmc", *args])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Callable[[], bool], what: str, child: Child, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise click.ClickException(f"{what} failed to start; see {child.log_file}")
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass  # not up yet
        time.sleep(0.1)
    raise click.ClickException(f"timed out waiting for {what}; see {child.log_file}")


def _ready(kubeconfig: str) -> bool:
    if not os.path.exists(kubeconfig):
        return False
    with BlockingClient.from_kubeconfig(kubeconfig, timeout=5) as client:
        try:
            client.get("/api/v1/namespaces/default")
        except (ApiError, Unreachable):
            return False
    return True


def _ensure_default_location(kubeconfig: str) -> None:
    location = LOCATION.new(
        "default",
        {
            "resource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
            "instanceSelector": {},
        },
    )
    with BlockingClient.from_kubeconfig(kubeconfig, origin=True, timeout=5) as client:
        try:
            client.run(LOCATION.create(client.client, client.config.workspace or "root", location))
        except Conflict:
            pass  # made by an earlier run on the same data dir
        except (ApiError, Unreachable) as e:
            raise click.ClickException(f"could not create the default Location: {e}") from e


def _install_mesh_crds(kubeconfig: str) -> None:
    """The mesh routing CRDs (Istio VirtualService/DestinationRule, Gateway API HTTPRoute) on the hub, so routing
    objects can be applied there and placed like any workload (the simulated clusters serve them from start)."""
    from tmc.sim.meshcrds import mesh_crds

    with BlockingClient.from_kubeconfig(kubeconfig, timeout=5) as client:
        for crd in mesh_crds():
            try:
                client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            except Conflict:
                pass  # installed by an earlier run on the same data dir
            except (ApiError, Unreachable) as e:
                raise click.ClickException(f"could not install CRD {crd['metadata']['name']}: {e}") from e


def synced_resource_types() -> str:
    """What `tmc up`'s syncers sync: the syncer's defaults plus the mesh routing types."""
    from tmc.sim.meshcrds import MESH_RESOURCE_TYPES
    from tmc.syncer import DEFAULT_RESOURCE_TYPES

    return ",".join((*DEFAULT_RESOURCE_TYPES, *MESH_RESOURCE_TYPES))


def tracing_args(endpoint: str | None, sample_ratio: float | None) -> tuple[str, ...]:
    """The tracing flags every child gets (the OTEL_* variables reach them through the environment)."""
    args: tuple[str, ...] = ()
    if endpoint:
        args += ("--tracing-endpoint", endpoint)
    if sample_ratio is not None:
        args += ("--tracing-sample-ratio", repr(sample_ratio))
    return args


@dataclass
class Member:
    """One simulated cluster and its syncer."""

    name: str
    region: str
    zone: str
    kubeconfig: str
    sim: Child
    syncer: Child | None = None
    metrics_port: int = 0
    health_port: int = 0


@dataclass
class System:
    """The children `tmc up` runs, in start order; `stop()` stops them in reverse."""

    data_dir: str
    secure_port: int
    hub: Child
    members: list[Member]
    prometheus: prom.Prometheus | None = None

    @property
    def hub_kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "admin.kubeconfig")

    @property
    def logs(self) -> str:
        return os.path.join(self.data_dir, "logs")

    def children(self) -> list[Child]:
        out = [self.hub, *(m.sim for m in self.members)]
        return out + [m.syncer for m in self.members if m.syncer is not None]

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        for child in reversed(self.children()):
            child.stop()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.description_file)

    @property
    def description_file(self) -> str:
        return os.path.join(self.data_dir, "up.json")

    def description(self) -> dict[str, object]:
        """What runs where: for people and scripts (the syncers' metrics ports change on every start)."""
        return {
            "hub": {
                "url": f"https://127.0.0.1:{self.secure_port}",
                "kubeconfig": self.hub_kubeconfig,
                "pidFile": self.hub.pid_file,
                "log": self.hub.log_file,
            },
            "clusters": [
                {
                    "name": m.name,
                    "region": m.region,
                    "zone": m.zone,
                    "kubeconfig": m.kubeconfig,
                    "pidFile": m.sim.pid_file,
                    "log": m.sim.log_file,
                    "syncer": None
                    if m.syncer is None
                    else {
                        "pidFile": m.syncer.pid_file,
                        "log": m.syncer.log_file,
                        "metrics": f"http://127.0.0.1:{m.metrics_port}/metrics",
                        "health": f"http://127.0.0.1:{m.health_port}/healthz",
                    },
                }
                for m in self.members
            ],
            "prometheus": None
            if self.prometheus is None
            else {
                "url": self.prometheus.url,
                "config": self.prometheus.config_file,
                "pidFile": self.prometheus.pid_file,
                "log": self.prometheus.log_file,
            },
        }

    def scrape_targets(self) -> list[prom.Target]:
        """Every process's /metrics: the hub, each simulated cluster (its port is in its kubeconfig) and syncer."""
        targets = [prom.hub_target(self.data_dir, self.secure_port)]
        for m in self.members:
            port = urlsplit(load_kubeconfig(m.kubeconfig).server).port
            if port is not None:
                targets.append(prom.sim_target(os.path.join(self.data_dir, "clusters", m.name), m.name, port))
            if m.syncer is not None:
                targets.append(prom.syncer_target(m.name, m.metrics_port))
        return targets

    def start_prometheus(self, binary: str, port: int = 0) -> None:
        """Prometheus on `port` (0: a free one), scraping every process, its data under `<data-dir>/prometheus`."""
        server = prom.Prometheus(binary, os.path.join(self.data_dir, "prometheus"), port or free_port())
        server.write_config(prom.scrape_config(self.scrape_targets(), rule_files=prom.default_rule_files()))
        try:
            server.start()
        except prom.PrometheusError as e:
            server.stop()
            raise click.ClickException(str(e)) from e
        self.prometheus = server

    def write_description(self) -> None:
        with open(self.description_file, "wb") as f:
            f.write(orjson.dumps(self.description(), option=orjson.OPT_INDENT_2))


def start_system(
    data_dir: str,
    *,
    secure_port: int = 6443,
    clusters: int = 3,
    sync_target_heartbeat_threshold: str = "30s",
    heartbeat_period: str = "10s",
    ready_delay: str = "1s",
    nodes: int | None = None,
    prometheus: str | None = None,
    prometheus_port: int = 0,
    tracing: tuple[str, ...] = (),
    member_tracing: tuple[str, ...] | None = None,
) -> System:
    """Start the hub, `clusters` simulated clusters and their syncers; returns once each has been started (the
    syncers connect on their own). With `prometheus` (the binary's path), also a Prometheus scraping them all on
    `prometheus_port` (0: a free one). `tracing` (flags from `tracing_args`) goes to every child, the simulated
    clusters' own `member_tracing` when given. Stops whatever it started if a part fails to come up."""
    data_dir = os.path.abspath(data_dir)
    clusters_dir = os.path.join(data_dir, "clusters")
    logs = os.path.join(data_dir, "logs")
    hub = Child(os.path.join(data_dir, "hub.pid"), os.path.join(logs, "hub.log"), name="hub")
    system = System(data_dir, secure_port, hub, [])
    # Chosen before the hub starts, so the hub's canary analysis can query the Prometheus started after it.
    prometheus_port = (prometheus_port or free_port()) if prometheus is not None else 0
    analysis = ["--prometheus-url", f"http://127.0.0.1:{prometheus_port}"] if prometheus is not None else []
    try:
        hub.start(
            [
                "server",
                "--data-dir",
                data_dir,
                "--secure-port",
                str(secure_port),
                "--sync-target-heartbeat-threshold",
                sync_target_heartbeat_threshold,
                *analysis,
                *tracing,
            ]
        )
        _wait(lambda: _ready(system.hub_kubeconfig), "the hub", hub)
        _ensure_default_location(system.hub_kubeconfig)
        _install_mesh_crds(system.hub_kubeconfig)
        for i in range(clusters):
            name = f"cluster-{i + 1}"
            region, zone = TOPOLOGY[i % len(TOPOLOGY)]
            kubeconfig = os.path.join(clusters_dir, f"{name}.kubeconfig")
            if os.path.exists(kubeconfig):
                os.remove(kubeconfig)  # a fresh one tells us this run's cluster is serving
            sim = Child(os.path.join(clusters_dir, f"{name}.pid"), os.path.join(logs, f"{name}.log"), name=name)
            args = ["sim-cluster", "--name", name, "--data-dir", clusters_dir, "--ready-delay", ready_delay]
            if nodes is not None:
                args += ["--nodes", str(nodes)]
            sim.start(
                [
                    *args,
                    "--labels",
                    f"region={region},zone={zone}",
                    *(tracing if member_tracing is None else member_tracing),
                ]
            )
            system.members.append(Member(name, region, zone, kubeconfig, sim))
        for member in system.members:
            _wait(functools.partial(_ready, member.kubeconfig), f"cluster {member.name}", member.sim)
            member.metrics_port, member.health_port = free_port(), free_port()
            member.syncer = Child(
                os.path.join(data_dir, "syncers", f"{member.name}.pid"),
                os.path.join(logs, f"syncer-{member.name}.log"),
                name=member.name,
            )
            member.syncer.start(
                [
                    "syncer",
                    "--sync-target-name",
                    member.name,
                    "--kubeconfig",
                    system.hub_kubeconfig,
                    "--downstream-kubeconfig",
                    member.kubeconfig,
                    "--labels",
                    f"{REGION_LABEL}={member.region},{ZONE_LABEL}={member.zone}",
                    "--heartbeat-period",
                    heartbeat_period,
                    "--resource-types",
                    synced_resource_types(),
                    "--metrics-port",
                    str(member.metrics_port),
                    "--health-port",
                    str(member.health_port),
                    *tracing,
                ]
            )
        if prometheus is not None:
            system.start_prometheus(prometheus, prometheus_port)
        system.write_description()
    except BaseException:
        system.stop()
        raise
    return system


@click.command("up")
@click.option("--data-dir", default=".tmc", show_default=True, help="Where every part keeps its data, pids and logs.")
@click.option("--secure-port", default=6443, show_default=True, type=click.IntRange(1, 65535), help="Hub HTTPS port.")
@click.option("--clusters", default=3, show_default=True, type=click.IntRange(0, 50), help="Simulated clusters.")
@click.option(
    "--sync-target-heartbeat-threshold",
    default="30s",
    show_default=True,
    help="How long without a heartbeat before a SyncTarget is not Ready (30s, 1m, plain seconds).",
)
@click.option("--heartbeat-period", default="10s", show_default=True, help="How often syncers heartbeat.")
@click.option("--ready-delay", default="1s", show_default=True, help="How long simulated pods take to become Ready.")
@click.option(
    "--prometheus/--no-prometheus",
    "with_prometheus",
    default=True,
    show_default=True,
    help=f"Run Prometheus (when on PATH), scraping every part every {prom.SCRAPE_INTERVAL}.",
)
@click.option("--prometheus-port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: a free port.")
@tracing_options
def up(
    data_dir: str,
    secure_port: int,
    clusters: int,
    sync_target_heartbeat_threshold: str,
    heartbeat_period: str,
    ready_delay: str,
    with_prometheus: bool,
    prometheus_port: int,
    tracing_endpoint: str | None,
    tracing_sample_ratio: float | None,
) -> None:
    """Start the hub, simulated member clusters and their syncers; Ctrl-C stops everything."""
    check_tracing(tracing_endpoint, tracing_sample_ratio)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    binary = prom.binary_path() if with_prometheus else None
    system = start_system(
        data_dir,
        secure_port=secure_port,
        clusters=clusters,
        sync_target_heartbeat_threshold=sync_target_heartbeat_threshold,
        heartbeat_period=heartbeat_period,
        ready_delay=ready_delay,
        prometheus=binary,
        prometheus_port=prometheus_port,
        tracing=tracing_args(tracing_endpoint, tracing_sample_ratio),
    )
    try:
        names = [m.name for m in system.members]
        clusters_dir = os.path.join(system.data_dir, "clusters")
        click.echo(
            f"TMC is up: hub on https://127.0.0.1:{secure_port}, {clusters} simulated clusters "
            f"({', '.join(names) or 'none'}), one syncer each. Logs in {system.logs}.\n"
            f"  export KUBECONFIG={system.hub_kubeconfig}\n"
            "  kubectl get synctargets            # Ready within a few seconds\n"
            "  kubectl get locations,placements\n"
            f"  kubectl --kubeconfig {clusters_dir}/{names[0] if names else 'cluster-1'}.kubeconfig get nodes\n"
            f"Pid files, logs and the syncers' metrics URLs are listed in {system.description_file}.\n"
            "Stop everything with Ctrl-C."
        )
        if system.prometheus is not None:
            url = system.prometheus.url
            click.echo(f"Prometheus on {url} (scrapes every {prom.SCRAPE_INTERVAL}): curl {url}/api/v1/targets")
        elif with_prometheus:
            click.echo(f"No Prometheus: {prom.MISSING_HINT}.")
        while not stopping:
            for child in system.children():
                if not child.alive() and child.process is not None:
                    code = child.process.returncode
                    click.echo(f"{child.name} ({child.log_file}) exited with {code}; stopping", err=True)
                    stopping = True
                    break
            if system.prometheus is not None and not system.prometheus.alive():
                click.echo(f"prometheus ({system.prometheus.log_file}) exited; stopping", err=True)
                stopping = True
            time.sleep(0.2)
    finally:
        system.stop()
