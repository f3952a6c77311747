"""Where tracing's CPU goes, per thread, measured so that the machine's other load cancels out: two systems (a hub,
`clusters` simulated clusters and their syncers each) run at the same time, one with tracing on (every span
sampled, exported to a sink process) and one with it off, and each places a burst of ConfigMaps on every member at
the same moment. The CPU of every thread of every process is read from /proc around the burst; a process's event
loop is its main thread, everything else (span export, the store's writer, executors) is "other threads".

A sequential pair (tracing off, then on) is at the mercy of whatever else the machine does in each half; here both
halves share the same minutes, so CPU per downstream object, on against off, is a steady signal even when the
apply rates are not (each system gets about half of the machine).

The traced system traces TMC's processes (hub and syncers), as the tracing benchmark's goal system does; with
`--members` its simulated clusters trace their requests too (and answer the syncers later for it).

Run alone: python -m benchmarks.tracing_pair [--burst 500] [--clusters 10] [--members] (about a minute and a half).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.otlp_sink import SinkProcess
from benchmarks.prop_support import ensure, fill, placement, syncer_metric, until
from benchmarks.report import Row, row, table
from benchmarks.servers import REPO
from tmc.cli.up import System, free_port, start_system
from tmc.client import KubeClient, load_kubeconfig

HUB = "/clusters/root"
PLACEMENTS = f"{HUB}/apis/scheduling.kcp.io/v1alpha1/placements"
CREATED = ('operation="create"', 'result="success"')
_TICK = os.sysconf("SC_CLK_TCK")
Threads = dict[str, dict[int, dict[int, float]]]  # group -> pid -> tid -> CPU seconds


def _threads(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process."""
    out = {}
    for path in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(path.split("/")[4])] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def _sample(groups: dict[str, list[int]]) -> Threads:
    return {g: {pid: _threads(pid) for pid in pids} for g, pids in groups.items()}


def _per_object(before: Threads, after: Threads, objects: int) -> dict[str, dict[str, float]]:
    """Microseconds of CPU per downstream object, by group: the event loops (main threads) and the other threads."""
    out = {}
    for group, pids in after.items():
        loop = other = 0.0
        for pid, threads in pids.items():
            for tid, cpu in threads.items():
                used = cpu - before[group].get(pid, {}).get(tid, 0.0)
                loop, other = (loop + used, other) if tid == pid else (loop, other + used)
        out[group] = {"loop": 1e6 * loop / objects, "other": 1e6 * other / objects}
    return out


async def _side(system: System, on: bool, burst: int, clusters: int, barrier: str) -> dict[str, Any]:
    config = load_kubeconfig(system.hub_kubeconfig)
    hub = KubeClient(config, base_url=config.base_url, connections=32)
    try:

        async def ready() -> bool:
            items = (await hub.get(f"{HUB}/apis/workload.kcp.io/v1alpha1/synctargets"))["items"]
            conditions = [(st.get("status") or {}).get("conditions") or [] for st in items]
            return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in cs) for cs in conditions) == clusters

        await until(ready, 90, f"{clusters} Ready SyncTargets")
        for name in ("warm", "burst"):
            body = {"metadata": {"name": f"pair-{name}", "labels": {"tmc-bench": name}}}
            await ensure(hub, f"{HUB}/api/v1/namespaces", body)

        async def synced(total: float) -> None:
            async def done() -> bool:
                return syncer_metric(system, "syncer_operations_total", *CREATED) >= total

            await until(done, 180, f"{total:.0f} downstream creates", 0.2)

        # Warm-up: every path taken once, the downstream namespace created, before the measured burst.
        start = syncer_metric(system, "syncer_operations_total", *CREATED)
        await fill(hub, f"{HUB}/api/v1/namespaces/pair-warm/configmaps", [f"w-{i}" for i in range(50)], "warm", 16)
        await hub.create(PLACEMENTS, placement("pair-warm", "warm"))
        await synced(start + 50 * clusters)
        await fill(hub, f"{HUB}/api/v1/namespaces/pair-burst/configmaps", [f"b-{i}" for i in range(burst)], "b", 32)
        start = syncer_metric(system, "syncer_operations_total", *CREATED)
        groups = {
            "hub": [system.hub.process.pid] if system.hub.process else [],
            "sims": [m.sim.process.pid for m in system.members if m.sim.process],
            "syncers": [m.syncer.process.pid for m in system.members if m.syncer and m.syncer.process],
        }
        # Both systems start their bursts together.
        open(os.path.join(barrier, "on" if on else "off"), "w").close()
        while len(os.listdir(barrier)) < 2:
            await asyncio.sleep(0.02)
        before, started = _sample(groups), time.monotonic()
        await hub.create(PLACEMENTS, placement("pair-burst", "burst"))
        await synced(start + burst * clusters)
        wall = time.monotonic() - started
        after = _sample(groups)
        return {"rate": burst * clusters / wall, "cpu": _per_object(before, after, burst * clusters)}
    finally:
        await hub.close()


def side(on: bool, burst: int, clusters: int, barrier: str, members: bool) -> dict[str, Any]:
    """One half of the pair, in this process: its own system, tracing on (with a sink) or off. `members`: the
    simulated clusters trace too (by default only TMC's processes do, as in the goal's traced system)."""
    sink = SinkProcess() if on else None
    flags = ("--tracing-endpoint", sink.endpoint, "--tracing-sample-ratio", "1") if sink is not None else ()
    try:
        with tempfile.TemporaryDirectory(prefix="tmc-bench-pair-") as data:
            system = start_system(
                data,
                secure_port=free_port(),
                clusters=clusters,
                ready_delay="200ms",
                tracing=flags,
                member_tracing=None if members else (),
            )
            try:
                result = asyncio.run(_side(system, on, burst, clusters, barrier))
            finally:
                system.stop()
        if sink is not None:
            result["spans"] = sink.stats()["spans"]
        return result
    finally:
        if sink is not None:
            sink.close()


def run(burst: int = 500, clusters: int = 10, members: bool = False) -> tuple[list[Row], list[str]]:
    with tempfile.TemporaryDirectory(prefix="tmc-bench-pair-barrier-") as barrier:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = ["--burst", str(burst), "--clusters", str(clusters), "--barrier", barrier]
        args += ["--members"] if members else []
        halves = {
            name: subprocess.Popen(
                [sys.executable, "-m", "benchmarks.tracing_pair", "--side", name, *args],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name in ("on", "off")
        }
        results = {}
        for name, child in halves.items():
            out, _ = child.communicate(timeout=600)
            if child.returncode != 0:
                raise RuntimeError(f"the tracing-{name} half failed (exit code {child.returncode})")
            results[name] = json.loads(out.strip().splitlines()[-1])
    on, off = results["on"], results["off"]
    rows = [
        row(
            f"CPU per downstream object, {group} {part}",
            on["cpu"][group][part],
            "us",
            baseline=off["cpu"][group][part],
            baseline_name="tracing off, same minutes",
        )
        for group in ("hub", "sims", "syncers")
        for part in ("loop", "other")
    ]
    rows.append(
        row(
            f"downstream objects applied/s, {burst} ConfigMaps x {clusters} members, both systems at once",
            on["rate"],
            "objects/s",
            baseline=off["rate"],
            baseline_name="tracing off, same minutes",
        )
    )
    spans = sorted(on.get("spans", {}).items(), key=lambda kv: -kv[1])
    notes = [
        "tracing pair: 'loop' is the event loop (main thread), 'other' every other thread; load average "
        f"{os.getloadavg()[0]:.1f} at the end",
        "tracing pair: spans by process and name: " + ", ".join(f"{k} {v:,}" for k, v in spans),
    ]
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU per thread, tracing on and off at the same time")
    parser.add_argument("--burst", type=int, default=500, help="ConfigMaps placed on every member")
    parser.add_argument("--clusters", type=int, default=10, help="member clusters of each system")
    parser.add_argument("--members", action="store_true", help="the simulated clusters trace too")
    parser.add_argument("--side", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        print(json.dumps(side(args.side == "on", args.burst, args.clusters, args.barrier, args.members)))
        return
    rows, notes = run(args.burst, args.clusters, args.members)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
