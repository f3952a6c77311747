"""What rollback costs a user and the hub:

1. Undo latency. A hub, 10 simulated clusters and their syncers (`tmc up`'s code); a Deployment (1 replica) reading
   two ConfigMaps, placed on all 10. After a change of its image and both ConfigMaps, `kubectl-tmc rollout undo` is
   run as a process, alternately to the previous revision and back; the clock runs from starting the command until
   every member runs the undone revision's image (rolled out and available) and holds both ConfigMaps' old content,
   polled on every member every 20 ms. Goal: p99 <= 2 s plus the simulated pod start delay (200 ms).
2. Revision recording overhead. The propagation benchmark (benchmarks.bench_propagation), quick, twice in one run:
   the hub with revisions off (`TMC_REVISIONS=off`) and on, off first unless `--order on-first`. Reported:
   propagation p50/p99, the hub's CPU per hub Deployment and the hub's store writes over the whole run (its revision
   counter, which the machine's other load moves far less) with revisions on, the off values as same-run baselines.
   Goal: latencies and CPU within 10 % (the write count is reported without one).

Run alone: python -m benchmarks.bench_rollback [--quick] [--undos N] [--only undo|overhead]
[--order off-first|on-first].
Defaults: 20 undos and two quick propagation runs, about 3 minutes; --quick: 6 undos, about 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_propagation
from benchmarks.prop_support import pct, placement, until
from benchmarks.report import Row, row, table
from tmc.cli.up import System, free_port, start_system
from tmc.client import KubeClient, load_kubeconfig

HUB = "/clusters/root"
NS = "bench-rollback"
READY_DELAY = 0.2
UNDO_GOAL = ("<=", 2.0 + READY_DELAY)
OVERHEAD_GOAL = 10.0  # percent
BIN = Path(sys.executable).parent
OVERHEAD_COMPARED = (
    "propagation hub -> member, p50",
    "propagation hub -> member, p99",
    "status member -> hub .status, p99",
)


def _deployment(image: str) -> dict[str, Any]:
    container = {
        "name": "web",
        "image": image,
        "envFrom": [{"configMapRef": {"name": "config-a"}}],
        "volumeMounts": [{"name": "b", "mountPath": "/etc/b"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container], "volumes": [{"name": "b", "configMap": {"name": "config-b"}}]},
            },
        },
    }


def _configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": {"v": value}}


class UndoBench:
    def __init__(self, system: System) -> None:
        config = load_kubeconfig(system.hub_kubeconfig)
        self.system = system
        self.hub = KubeClient(config, base_url=config.base_url, connections=8)
        self.members = [KubeClient(load_kubeconfig(m.kubeconfig), connections=8) for m in system.members]
        self.downstream: list[str] = []

    async def close(self) -> None:
        for client in (self.hub, *self.members):
            await client.close()

    async def _apply(self, path: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        try:
            current = await self.hub.get(f"{path}/{name}")
        except Exception:
            await self.hub.create(path, body)
            return
        del current
        # A merge patch, not a replace: the syncers' status reports change the resourceVersion all the time.
        await self.hub.patch(f"{path}/{name}", {k: v for k, v in body.items() if k in ("spec", "data")})

    async def prepare(self) -> None:
        n = len(self.members)

        async def ready() -> bool:
            items = (await self.hub.get(f"{HUB}/apis/workload.kcp.io/v1alpha1/synctargets"))["items"]
            conds = [(st.get("status") or {}).get("conditions") or [] for st in items]
            return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in cs) for cs in conds) == n

        await until(ready, 120, "Ready SyncTargets")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"tmc-bench": NS}}}
        await self._apply(f"{HUB}/api/v1/namespaces", namespace)
        await self._apply(f"{HUB}/apis/scheduling.kcp.io/v1alpha1/placements", placement(NS, NS))
        await self.change("nginx:1", "one")

    async def change(self, image: str, value: str) -> None:
        for name in ("config-a", "config-b"):
            await self._apply(f"{HUB}/api/v1/namespaces/{NS}/configmaps", _configmap(name, value))
        await self._apply(f"{HUB}/apis/apps/v1/namespaces/{NS}/deployments", _deployment(image))
        await until(lambda: self.everywhere(image, value), 120, f"{image} everywhere", every=0.1)
        await until(lambda: self.recorded(image, value), 30, f"the revision of {image}", every=0.1)

    async def recorded(self, image: str, value: str) -> bool:
        """The newest revision is this state (changes closer than the recorder's debounce make one revision)."""
        items = (await self.hub.get(f"{HUB}/apis/tmc.kcp.io/v1alpha1/namespaces/{NS}/workloadrevisions"))["items"]
        if not items:
            return False
        spec = max(items, key=lambda r: r["spec"]["revision"])["spec"]
        return spec["template"]["spec"]["containers"][0]["image"] == image and all(
            c.get("data", {}).get("v") == value for c in spec.get("configMaps", [])
        )

    async def _member_ns(self, client: KubeClient) -> str:
        for ns in (await client.get("/api/v1/namespaces"))["items"]:
            locator = (ns["metadata"].get("annotations") or {}).get("kcp.io/namespace-locator", "")
            if f'"namespace":"{NS}"' in locator:
                return str(ns["metadata"]["name"])
        return ""

    async def _member_ok(self, i: int, image: str, value: str) -> bool:
        client, ns = self.members[i], self.downstream[i]
        try:
            deploy = await client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
            a = await client.get(f"/api/v1/namespaces/{ns}/configmaps/config-a")
            b = await client.get(f"/api/v1/namespaces/{ns}/configmaps/config-b")
        except Exception:
            return False
        status = deploy.get("status") or {}
        return (
            deploy["spec"]["template"]["spec"]["containers"][0]["image"] == image
            and status.get("observedGeneration") == deploy["metadata"].get("generation")
            and status.get("updatedReplicas") == 1
            and status.get("availableReplicas") == 1
            and status.get("replicas") == 1
            and a.get("data", {}).get("v") == value
            and b.get("data", {}).get("v") == value
        )

    async def everywhere(self, image: str, value: str) -> bool:
        if len(self.downstream) != len(self.members) or not all(self.downstream):
            self.downstream = list(await asyncio.gather(*(self._member_ns(c) for c in self.members)))
            if not all(self.downstream):
                return False
        results = await asyncio.gather(*(self._member_ok(i, image, value) for i in range(len(self.members))))
        return all(results)

    async def undo_once(self, image: str, value: str) -> tuple[float, float]:
        """(seconds to every member serving `image` and `value`, seconds the command itself took)."""
        env = {**os.environ, "KUBECONFIG": self.system.hub_kubeconfig}
        argv = [str(BIN / "kubectl-tmc"), "rollout", "undo", "deployment/web", "-n", NS]
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        async def exited() -> tuple[float, bytes]:
            _, err = await process.communicate()
            return time.monotonic(), err

        command_task = asyncio.ensure_future(exited())
        try:
            finished = await until(lambda: self.everywhere(image, value), 60, f"undo to {image}", every=0.02)
        except TimeoutError:
            _, err = await command_task
            said = err.decode()
            raise RuntimeError(f"undo to {image}: not everywhere after 60 s; the command said {said!r}") from None
        ended, err = await command_task
        if process.returncode != 0:
            raise RuntimeError(f"rollout undo failed: {err.decode()[:300]}")
        command = ended - started
        return finished - started, command


async def _undo_rows(system: System, undos: int) -> tuple[list[Row], list[str]]:
    bench = UndoBench(system)
    try:
        await bench.prepare()
        await bench.change("nginx:2", "two")
        latencies, commands = [], []
        states = [("nginx:1", "one"), ("nginx:2", "two")]
        for i in range(undos):
            image, value = states[i % 2]
            latency, command = await bench.undo_once(image, value)
            latencies.append(latency)
            commands.append(command)
    finally:
        await bench.close()
    n = len(system.members)
    rows = [
        row(f"undo to every member available, p50 ({n} clusters)", pct(latencies, 0.5), "s"),
        row(f"undo to every member available, p99 ({n} clusters)", pct(latencies, 0.99), "s", goal=UNDO_GOAL),
        row("undo: the command's own time, p50", pct(commands, 0.5), "s"),
    ]
    notes = [
        f"rollback: {undos} undos of a Deployment and its 2 ConfigMaps on {n} clusters, simulated pod start delay "
        f"{READY_DELAY * 1000:.0f} ms; latencies (s): " + ", ".join(f"{v:.2f}" for v in latencies)
    ]
    return rows, notes


def undo_latency(undos: int, keep: str | None = None) -> tuple[list[Row], list[str]]:
    with contextlib.ExitStack() as stack:
        data_dir = keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="tmc-bench-rollback-"))
        system = start_system(
            data_dir,
            secure_port=free_port(),
            clusters=10,
            ready_delay=f"{READY_DELAY * 1000:.0f}ms",
            heartbeat_period="2s",
            sync_target_heartbeat_threshold="20s",
        )
        try:
            return asyncio.run(_undo_rows(system, undos))
        finally:
            system.stop()


_HUB_CPU = re.compile(r"CPU per hub Deployment[^:]*: hub ([\d.]+) ms")


def _hub_cpu(notes: list[str]) -> float | None:
    for note in notes:
        found = _HUB_CPU.search(note)
        if found:
            return float(found.group(1))
    return None


def _hub_writes(data_dir: str) -> int:
    """Every write the hub's store committed in the run (its revision counter: one per create, update, delete)."""
    with contextlib.closing(sqlite3.connect(os.path.join(data_dir, "tmc.db"))) as db:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM kv").fetchone()[0])


def _propagation(cfg: bench_propagation.PropagationSettings, revisions: bool) -> tuple[list[Row], list[str], int]:
    """One propagation run with the hub's revisions on or off: rows, notes, hub writes."""
    print(f"... rollback: propagation with revisions {'on' if revisions else 'off'}", flush=True)
    saved = os.environ.get("TMC_REVISIONS")
    if revisions:
        os.environ.pop("TMC_REVISIONS", None)
    else:
        os.environ["TMC_REVISIONS"] = "off"  # the hub child inherits it
    try:
        with tempfile.TemporaryDirectory(prefix="tmc-bench-rollback-") as data_dir:
            rows, notes = bench_propagation.run(dataclasses.replace(cfg), keep=data_dir)
            return rows, notes, _hub_writes(data_dir)
    finally:
        if saved is None:
            os.environ.pop("TMC_REVISIONS", None)
        else:
            os.environ["TMC_REVISIONS"] = saved


def overhead(order: str = "off-first") -> tuple[list[Row], list[str]]:
    """The quick propagation benchmark with revisions off and on, in `order` (off-first or on-first)."""
    cfg = bench_propagation.PropagationSettings().quick()
    results = {}
    for revisions in (False, True) if order == "off-first" else (True, False):
        results[revisions] = _propagation(cfg, revisions)
    (on_rows, on_notes, on_writes), (off_rows, off_notes, off_writes) = results[True], results[False]
    rows: list[Row] = []
    for prefix in OVERHEAD_COMPARED:
        on = next((r for r in on_rows if str(r["name"]).startswith(prefix)), None)
        off = next((r for r in off_rows if str(r["name"]).startswith(prefix)), None)
        if on is not None and off is not None:
            goal = ("<=", float(off["value"]) * (1 + OVERHEAD_GOAL / 100))
            name = f"revisions on: {on['name']}"
            rows.append(
                row(
                    name,
                    float(on["value"]),
                    str(on["unit"]),
                    goal=goal,
                    baseline=float(off["value"]),
                    baseline_name="revisions off, same run",
                )
            )
    on_cpu, off_cpu = _hub_cpu(on_notes), _hub_cpu(off_notes)
    if on_cpu is not None and off_cpu is not None:
        goal = ("<=", off_cpu * (1 + OVERHEAD_GOAL / 100))
        rows.append(
            row(
                "revisions on: hub CPU per hub Deployment",
                on_cpu,
                "ms",
                goal=goal,
                baseline=off_cpu,
                baseline_name="revisions off, same run",
            )
        )
    # What recording costs in writes (no goal: a revision is a create and a status write at least), counted by the
    # store, which the machine's other load moves far less than latencies.
    rows.append(
        row(
            "revisions on: hub store writes, whole run",
            float(on_writes),
            "writes",
            baseline=float(off_writes),
            baseline_name="revisions off, same run",
        )
    )
    notes = [f"rollback overhead: runs in the order {order}"]
    notes += [
        f"rollback overhead ({label}): {n}"
        for label, ns in (("off", off_notes), ("on", on_notes))
        for n in ns
        if "CPU per" in n
    ]
    return rows, notes


def run(
    quick: bool = False, undos: int | None = None, only: str | None = None, order: str = "off-first"
) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    if only in (None, "undo"):
        r, n = undo_latency(undos or (6 if quick else 20))
        rows += r
        notes += n
    if only in (None, "overhead"):
        r, n = overhead(order)
        rows += r
        notes += n
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description="Undo latency and revision recording overhead")
    parser.add_argument("--quick", action="store_true", help="6 undos instead of 20")
    parser.add_argument("--undos", type=int, help="how many undos to time")
    parser.add_argument("--only", choices=("undo", "overhead"), help="one part only")
    parser.add_argument(
        "--order", choices=("off-first", "on-first"), default="off-first", help="which overhead run goes first"
    )
    args = parser.parse_args()
    rows, notes = run(args.quick, args.undos, args.only, args.order)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
