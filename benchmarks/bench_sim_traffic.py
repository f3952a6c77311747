"""What simulated request traffic costs a simulated cluster (goal: 5 Services at 50 req/s each add <= 5 % of a core).

One `tmc sim-cluster` subprocess holds 5 Services, each in front of a stable (3 replicas) and a canary (1 replica)
Deployment, split 80/20 by an Istio VirtualService and DestinationRule (canary answering 5 % errors). The sim's CPU
time is measured over a window twice: first with no Service annotated (the same-run baseline: the same objects,
no traffic), then with `sim.tmc.io/request-rate: "50"` on all five (250 req/s). In both windows /metrics is scraped
every 2 s, as `tmc up`'s Prometheus does, so exposing the Istio series counts too. Reported: the sim's CPU in each
window as a share of one core, the difference per 1,000 req/s, the requests the sim counted per second (from its
istio_requests_total), and the size and time of one /metrics scrape carrying those series.

Run alone: python -m benchmarks.bench_sim_traffic [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.cpu import process_cpu
from benchmarks.report import Row, row, table
from benchmarks.servers import Server, _spawn, _wait_ready, free_port
from tmc.client import BlockingClient, Conflict

SERVICES = 5
RATE = 50
NAMESPACE = "shop"
GOAL = ("<=", 5.0)  # percent of one core added by the traffic
SCRAPE_SECONDS = 2.0  # tmc up's scrape interval


def start_sim(data_dir: str) -> Server:
    port = free_port()
    args = ["-m", "tmc", "sim-cluster", "--name", "bench", "--data-dir", data_dir, "--secure-port", str(port)]
    process, log_path = _spawn("sim", [*args, "--ready-delay", "200ms", "--log-level", "warning"], data_dir)
    pki = os.path.join(data_dir, "bench", "pki")
    server = Server("sim", process, port, data_dir, "", os.path.join(pki, "ca.crt"), log_path)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(pki, "admin.token")) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.token = Path(pki, "admin.token").read_text().strip()
    _wait_ready(server, "/readyz")
    return server


def _deployment(name: str, app: str, version: str, replicas: int, errors: str = "") -> dict[str, Any]:
    template: dict[str, Any] = {"metadata": {"labels": {"app": app, "version": version}}}
    if errors:
        template["metadata"]["annotations"] = {"sim.tmc.io/error-rate": errors}
    template["spec"] = {"containers": [{"name": "app", "image": "nginx"}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app, "version": version}},
            "template": template,
        },
    }


def populate(client: BlockingClient) -> None:
    try:
        client.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    except Conflict:
        pass
    apps = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    istio = f"/apis/networking.istio.io/v1/namespaces/{NAMESPACE}"
    for i in range(SERVICES):
        app = f"svc-{i}"
        client.create(apps, _deployment(f"{app}-stable", app, "stable", 3))
        client.create(apps, _deployment(f"{app}-canary", app, "canary", 1, errors="0.05"))
        client.create(
            f"/api/v1/namespaces/{NAMESPACE}/services",
            {"metadata": {"name": app}, "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}},
        )
        subsets = [{"name": v, "labels": {"version": v}} for v in ("stable", "canary")]
        client.create(
            f"{istio}/destinationrules", {"metadata": {"name": app}, "spec": {"host": app, "subsets": subsets}}
        )
        route = [
            {"destination": {"host": app, "subset": "stable"}, "weight": 80},
            {"destination": {"host": app, "subset": "canary"}, "weight": 20},
        ]
        client.create(
            f"{istio}/virtualservices",
            {"metadata": {"name": app}, "spec": {"hosts": [app], "http": [{"route": route}]}},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods, _ = client.list_all(f"/api/v1/namespaces/{NAMESPACE}/pods")
        ready = [
            p
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        if len(ready) == SERVICES * 4:
            return
        time.sleep(0.2)
    raise RuntimeError("pods not ready")


def annotate(client: BlockingClient) -> None:
    for i in range(SERVICES):
        patch = {"metadata": {"annotations": {"sim.tmc.io/request-rate": str(RATE)}}}
        client.patch(f"/api/v1/namespaces/{NAMESPACE}/services/svc-{i}", patch)


def counted(server: Server) -> tuple[float, int, float]:
    """(requests in istio_requests_total, bytes of one /metrics scrape, seconds it took)."""
    start = time.perf_counter()
    with server.client() as client:
        text = client.request("GET", "/metrics")
    seconds = time.perf_counter() - start
    body = text if isinstance(text, str) else bytes(text).decode()
    total = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith("istio_requests_total{"))
    return total, len(body.encode()), seconds


def cpu_share(sim: Server, seconds: float) -> float:
    """Percent of one core the sim used over the next `seconds`, scraped every SCRAPE_SECONDS meanwhile as `tmc up`'s
    Prometheus does."""
    start_cpu, start = process_cpu(sim.pid), time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        counted(sim)
        time.sleep(max(0.0, min(SCRAPE_SECONDS, deadline - time.perf_counter())))
    return 100.0 * (process_cpu(sim.pid) - start_cpu) / (time.perf_counter() - start)


def run(quick: bool = False) -> list[Row]:
    window = 8.0 if quick else 30.0
    with tempfile.TemporaryDirectory(prefix="tmc-bench-traffic-") as tmp:
        sim = start_sim(tmp)
        try:
            with sim.client(timeout=30) as client:
                populate(client)
                time.sleep(2.0)  # let the start-up writes settle
                idle = cpu_share(sim, window)
                annotate(client)
                time.sleep(2.0)
                before, _, _ = counted(sim)
                start = time.perf_counter()
                busy = cpu_share(sim, window)
                after, size, scrape = counted(sim)
                served = (after - before) / (time.perf_counter() - start)
        finally:
            sim.stop()
    added = busy - idle
    rate = SERVICES * RATE
    note = f"{SERVICES} Services x {RATE} req/s, 80/20 Istio split, {window:.0f}s windows"
    return [
        row(
            "sim-cluster CPU with traffic",
            busy,
            "% core",
            baseline=idle,
            baseline_name="same sim, same objects, no traffic",
            note=note,
        ),
        row("CPU added by the traffic", added, "% core", goal=GOAL, note=note),
        row("CPU per 1,000 req/s simulated", added * 1000 / rate, "% core"),
        row("requests simulated", served, "req/s", baseline=rate, baseline_name="annotated rate"),
        row("one /metrics scrape", scrape * 1000, "ms", note=f"{size / 1024:.0f} KiB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(table(run(args.quick)))


if __name__ == "__main__":
    main()
