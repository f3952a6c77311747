"""The CLI's cost as a user sees it: wall time of `kubectl tmc get st` against `kubectl get st` on a hub with 1,000
SyncTargets that have heartbeated (goal: within 1.5x kubectl's time, the same run), and of `kubectl tmc --help`
(goal: 250 ms). Both commands run as processes, alternately, with kubectl's discovery cache warm (as a user's
is); the median of several runs is reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_scrape import ST_PATH, _bounded, _send, _session, _status
from benchmarks.report import Row, row
from benchmarks.servers import Server, start_hub

TARGETS = 1_000
RUNS = 7
HELP_RUNS = 15
RATIO_GOAL = 1.5
HELP_GOAL_MS = 250.0
BIN = Path(sys.executable).parent


async def _populate(hub: Server) -> None:
    async with _session(hub) as s:
        names = [f"st-{i:04d}" for i in range(TARGETS)]
        await _bounded([_send(s, "POST", ST_PATH, {"metadata": {"name": n}}) for n in names])
        patch = "application/merge-patch+json"
        await _bounded([_send(s, "PATCH", f"{ST_PATH}/{n}/status", _status(i), patch) for i, n in enumerate(names)])


def _wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one run of `argv` takes, start to exit; fails loudly when the command fails."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')[:500]}")
    return elapsed


def bench_cli(data_dir: str, runs: int = RUNS) -> tuple[list[Row], list[str]]:
    kubectl = shutil.which("kubectl")
    plugin = str(BIN / "kubectl-tmc")
    if kubectl is None or not os.path.exists(plugin):
        return [], ["cli: needs kubectl on PATH and the kubectl-tmc entry point (pip install -e .)"]
    hub = start_hub(data_dir)
    try:
        asyncio.run(_populate(hub))
        env = dict(os.environ)
        env["KUBECONFIG"] = os.path.join(data_dir, "admin.kubeconfig")
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        with tempfile.TemporaryDirectory(prefix="tmc-bench-kube-cache-") as cache:
            kube = [kubectl, "--cache-dir", cache, "get", "synctargets"]
            tmc = [plugin, "get", "st"]
            listed = subprocess.run(tmc, env=env, capture_output=True, text=True, check=True).stdout
            lines = len(listed.splitlines()) - 1
            _wall(kube, env)  # warms kubectl's discovery cache
            theirs, ours, via = [], [], []
            for _ in range(runs):
                theirs.append(_wall(kube, env))
                ours.append(_wall(tmc, env))
                via.append(_wall([kubectl, "tmc", "get", "st"], env))
            helps = [_wall([plugin, "--help"], env) for _ in range(HELP_RUNS)]
            kube_help = [_wall([kubectl, "--help"], env) for _ in range(HELP_RUNS)]
    finally:
        hub.stop()
    k, t, v = (statistics.median(x) * 1000 for x in (theirs, ours, via))
    h, kh = statistics.median(helps) * 1000, statistics.median(kube_help) * 1000
    rows = [
        row(
            f"kubectl tmc get st, {TARGETS:,} SyncTargets (median of {runs})",
            t,
            "ms",
            goal=("<=", round(k * RATIO_GOAL, 1)),
            baseline=k,
            baseline_name="kubectl get synctargets, same hub and run",
        ),
        row(
            "  the same through kubectl (kubectl tmc get st)",
            v,
            "ms",
            baseline=k,
            baseline_name="kubectl get synctargets",
        ),
        row(
            f"kubectl-tmc --help (median of {HELP_RUNS})",
            h,
            "ms",
            goal=("<=", HELP_GOAL_MS),
            baseline=kh,
            baseline_name="kubectl --help",
        ),
    ]
    notes = [
        f"cli: {lines:,} rows listed; get st took {t / k:.2f}x kubectl's time "
        f"(slowest run {max(ours) * 1000:.0f} ms against {max(theirs) * 1000:.0f} ms)"
    ]
    return rows, notes


if __name__ == "__main__":
    from benchmarks.report import table

    with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
        result, notes = bench_cli(os.path.join(tmp, "hub"))
    print(table(result))
    for note in notes:
        print(f"note: {note}")
