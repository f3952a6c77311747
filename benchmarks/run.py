"""All benchmarks in one bounded run (`make bench`): python -m benchmarks.run [--quick] [--only PART ...]

1. the in-process storage benchmark (benchmarks.bench_storage), before any server runs;
2. a hub subprocess and the hello-world baseline subprocess (benchmarks.hello_server), then against the same hub,
   in this order: watch fan-out to 500 watchers on the near-empty hub (benchmarks.bench_watch), GET vs hello-world,
   durable creates, LIST of 10,000 (benchmarks.bench_http), and the watch fan-out again on the hub now holding the
   tens of thousands of objects those created;
3. the placement scheduler over 1,000 SyncTargets, in process (benchmarks.bench_scheduler), and placement
   simulation (a server-side dry run of a Placement) over the same 1,000 (benchmarks.bench_simulation);
4. TMC end to end (benchmarks.bench_propagation): a hub, 10 simulated clusters and their syncers; propagation and
   status latency over 1,000 Deployments, and the downstream apply rate;
5. what tracing costs (benchmarks.bench_tracing): the propagation benchmark, smaller (100 Deployments at 2.5/s,
   five rounds of bursts), on four systems side by side: tracing off, on in the hub and syncers (every span
   sampled and exported to an OTLP sink), on in the simulated clusters too, and off again as the control; their
   streams alternating, their bursts in pairs at the same moment on a core each; pooled over two rounds (one with
   --quick), the untraced values as baselines;
6. what CEL validation rules cost (benchmarks.bench_cel): creates of a custom resource with 10 rules against the
   same resource without rules, on a hub of its own;
7. server-side apply (benchmarks.bench_apply), on a hub of its own: a 3-container Deployment applied against a merge
   patch of the same change, and the p99 of applying a ~300 KB CRD;
8. the CLI (benchmarks.bench_cli): `kubectl tmc get st` against `kubectl get st` with 1,000 SyncTargets, and
   `kubectl tmc --help`;
9. simulated request traffic (benchmarks.bench_sim_traffic): a simulated cluster's CPU with 5 Services at 50 req/s
   against the same cluster without traffic (about 1.5 minutes, --quick 30 s);
10. `tmc dashboard` (benchmarks.bench_dashboard) over 1,000 SyncTargets and 10,000 placed workloads: start-up, a
    burst of 1,000 watch events, key latency during it, memory;
11. canary abort across 10 clusters (benchmarks.bench_canary): the analysis verdict to weight 0 in every member's
    VirtualService, against a placed ConfigMap edit reaching every member; then 20 concurrent canaries on the same
    clusters: each step's time beyond its configured duration and the hub's CPU against the same hub idle (about
    4.5 minutes, --quick 2);
12. rollback (benchmarks.bench_rollback): `kubectl tmc rollout undo` of a Deployment and its two ConfigMaps on 10
    clusters until every member serves the old revision, and the propagation benchmark (quick) with revision recording
    off and on (about 2.5 minutes, --quick 2).

Prints a table (value, goal, same-run baseline) and writes benchmarks/results/latest.json. Goals are reported as met
or missed; nothing is asserted. A full run takes about 18 minutes (propagation about 4.5 of them, tracing about 11,
cel about 2); --quick about 7.5.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_apply,
    bench_canary,
    bench_cel,
    bench_cli,
    bench_connections,
    bench_dashboard,
    bench_http,
    bench_propagation,
    bench_rollback,
    bench_scheduler,
    bench_scrape,
    bench_sim_traffic,
    bench_simulation,
    bench_storage,
    bench_tracing,
    bench_watch,
    bench_yaml,
    loadgen,
)
from benchmarks.cpu import CpuWindow
from benchmarks.report import Row, machine, table, write_json
from benchmarks.servers import REPO, metric, start_hello, start_hub

PARTS = (
    "storage",
    "get",
    "create",
    "yaml",
    "list",
    "watch",
    "idle",
    "scrape",
    "cli",
    "scheduler",
    "simulation",
    "propagation",
    "tracing",
    "cel",
    "apply",
    "traffic",
    "dashboard",
    "canary",
    "rollback",
)
DEFAULT_OUT = REPO / "benchmarks" / "results" / "latest.json"


def _storage_rows() -> tuple[list[Row], dict[str, float]]:
    rows: list[Row] = []
    values: dict[str, float] = {}
    for r in bench_storage.run():
        values[r["name"]] = r["value"]
        rows.append({**r, "name": f"store: {r['name']}"})
    return rows, values


def run(parts: tuple[str, ...], quick: bool) -> dict[str, Any]:
    started = time.time()
    rows: list[Row] = []
    notes: list[str] = []
    storage: dict[str, float] = {}
    if "storage" in parts:
        storage_rows, storage = _storage_rows()
    http_cfg = bench_http.HttpSettings()
    watch_cfg = bench_watch.WatchSettings()
    if quick:
        http_cfg, watch_cfg = http_cfg.quick(), watch_cfg.quick()
    if {"get", "create", "yaml", "list", "watch"} & set(parts):
        loadgen.ensure_wrk()
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            hub = start_hub(os.path.join(tmp, "hub"))
            hello = start_hello(os.path.join(tmp, "hello"))

            def watch(label: str, baseline: bool) -> tuple[list[Row], list[str]]:
                objects = metric(hub, "tmc_storage_objects")
                r, n = bench_watch.run(hub, watch_cfg, label=label, baseline=baseline)
                return r, [f"watch ({label}): the hub held {objects:,.0f} objects", *n]

            steps: list[tuple[str, Callable[[], tuple[list[Row], list[str]]]]] = [
                ("watch", lambda: watch("fresh hub", True)),
                ("get", lambda: bench_http.bench_get(hub, hello, http_cfg)),
                ("create", lambda: bench_http.bench_creates(hub, http_cfg, storage.get("durable creates, 32 callers"))),
                ("yaml", lambda: bench_yaml.bench_yaml(hub, hello)),
                ("list", lambda: bench_http.bench_list(hub, hello, http_cfg, storage.get("list 10,000 entries"))),
                # the same fan-out again, now that the hub holds the objects of the benchmarks above
                ("watch", lambda: watch("loaded hub", False)),
            ]
            try:
                with CpuWindow([hub.pid, hello.pid]) as window:
                    for name, step in steps:
                        if name in parts:
                            print(f"... {name}", flush=True)
                            r, n = step()
                            rows += r
                            notes += n
                notes.append(f"other processes on the machine used {window.other:.2f} cores on average during the run")
            finally:
                hub.stop()
                hello.stop()
    if "storage" in parts:
        rows += storage_rows
    if "idle" in parts:
        print("... idle", flush=True)
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            r, n = bench_connections.bench_idle_connections(os.path.join(tmp, "hub"))
        rows += r
        notes += n
    if "scrape" in parts:
        print("... scrape", flush=True)
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            r, n = bench_scrape.bench_scrape(os.path.join(tmp, "hub"))
        rows += r
        notes += n
    if "cli" in parts:
        print("... cli", flush=True)
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            r, n = bench_cli.bench_cli(os.path.join(tmp, "hub"), 3 if quick else bench_cli.RUNS)
        rows += r
        notes += n
    if "scheduler" in parts:
        print("... scheduler", flush=True)
        rows += bench_scheduler.run(quick)
    if "simulation" in parts:
        print("... simulation", flush=True)
        rows += bench_simulation.run(quick)
    if "traffic" in parts:
        print("... traffic", flush=True)
        rows += bench_sim_traffic.run(quick)
    if "propagation" in parts:
        print("... propagation", flush=True)
        cfg = bench_propagation.PropagationSettings()
        try:
            r, n = bench_propagation.run(cfg.quick() if quick else cfg)
        except Exception as e:  # the system did not come up: the other parts' results are still worth writing
            r, n = [], [f"propagation: failed: {type(e).__name__}: {e}"]
        rows += r
        notes += n
    if "rollback" in parts:
        print("... rollback", flush=True)
        try:
            r, n = bench_rollback.run(quick)
        except Exception as e:  # as for propagation: keep the other parts' results
            r, n = [], [f"rollback: failed: {type(e).__name__}: {e}"]
        rows += r
        notes += n
    if "tracing" in parts:
        print("... tracing", flush=True)
        try:
            r, n = bench_tracing.run(True, rounds=1 if quick else 2)
        except Exception as e:  # as for propagation: keep the other parts' results
            r, n = [], [f"tracing: failed: {type(e).__name__}: {e}"]
        rows += r
        notes += n
    if "canary" in parts:
        print("... canary", flush=True)
        cfg_canary = bench_canary.CanarySettings()
        try:
            rows += bench_canary.run(cfg_canary.quick() if quick else cfg_canary)
        except Exception as e:  # needs the mesh CRDs tmc up installs; keep the other parts' results
            notes += [f"canary: failed: {type(e).__name__}: {e}"]
    if "cel" in parts:
        print("... cel", flush=True)
        r, n = bench_cel.run(quick)
        rows += r
        notes += n
    if "apply" in parts:
        print("... apply", flush=True)
        loadgen.ensure_wrk()
        apply_cfg = bench_apply.ApplySettings()
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            hub = start_hub(os.path.join(tmp, "hub"))
            try:
                r, n = bench_apply.bench_apply(hub, apply_cfg.quick() if quick else apply_cfg)
            finally:
                hub.stop()
        rows += r
        notes += n
    if "dashboard" in parts:
        print("... dashboard", flush=True)
        with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
            r, n = bench_dashboard.bench_dashboard(os.path.join(tmp, "hub"), quick)
        rows += r
        notes += n
    notes = loadgen.generator_notes() + notes
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": quick,
        "machine": machine(),
        "load_generator": "python-aiohttp" if loadgen.generator_notes() else "wrk",
        "results": rows,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the TMC benchmarks.")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier numbers)")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    report = run(tuple(args.only or PARTS), args.quick)
    m = report["machine"]
    print(f"\n{m['cpus']} x {m['cpu_model']}, Python {m['python']}, load from {report['load_generator']}")
    print(table(report["results"]))
    for note in report["notes"]:
        print(f"note: {note}")
    write_json(args.out, report)
    print(f"\n{report['seconds']:.0f}s; results written to {args.out}")


if __name__ == "__main__":
    main()
