"""Helpers of the propagation benchmark (benchmarks.bench_propagation): request bodies, polling, the syncers'
metrics and CPU accounting per part of the system."""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.cpu import process_cpu, system_busy
from tmc.cli.up import System
from tmc.client import Conflict, KubeClient

LOCATION_RESOURCE = {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def deployment(name: str, label: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"bench": label}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def configmap(name: str, label: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": label}},
        "data": {"key": "value " * 20},
    }


def placement(name: str, namespace_label: str) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": name},
        "spec": {
            "locationSelectors": [{}],
            "locationResource": LOCATION_RESOURCE,
            "namespaceSelector": {"matchLabels": {"tmc-bench": namespace_label}},
            "locationWorkspace": "root",
            "replicaScheduling": {"type": "Duplicated"},
        },
    }


async def ensure(client: KubeClient, path: str, body: dict[str, Any]) -> None:
    try:
        await client.create(path, body)
    except Conflict:
        pass  # made by an earlier step or run


async def until(probe: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.25) -> float:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: timed out waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic()


def syncer_metric(system: System, name: str, *contains: str) -> float:
    """Sum of a metric's samples over every syncer's /metrics, of the lines holding every `contains` text (each
    one label: the exposition orders labels by name)."""
    total = 0.0
    for m in system.members:
        with urllib.request.urlopen(f"http://127.0.0.1:{m.metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        for line in text.splitlines():
            if line.startswith((name + " ", name + "{")) and all(c in line for c in contains):
                total += float(line.rsplit(" ", 1)[1])
    return total


CpuSample = tuple[float, float, dict[str, float]]


class Cpu:
    """CPU seconds of each part of the system over a window (from /proc), and cores used by everything else."""

    def __init__(self, system: System) -> None:
        groups = {
            "hub": [system.hub],
            "sim clusters": [m.sim for m in system.members],
            "syncers": [m.syncer for m in system.members if m.syncer is not None],
        }
        self.pids = {g: [c.process.pid for c in cs if c.process is not None] for g, cs in groups.items()}

    def sample(self) -> CpuSample:
        return time.monotonic(), system_busy(), {g: sum(process_cpu(p) for p in ps) for g, ps in self.pids.items()}

    @staticmethod
    def describe(before: CpuSample, after: CpuSample, per: int = 0, unit: str = "") -> str:
        wall = after[0] - before[0]
        used = {g: after[2][g] - before[2][g] for g in before[2]}
        rest = max(0.0, (after[1] - before[1]) - sum(used.values())) / wall
        text = f"cores used over {wall:.1f}s: " + ", ".join(f"{g} {v / wall:.2f}" for g, v in used.items())
        text += f", everything else (benchmark, other work on the machine) {rest:.2f}"
        if per:
            text += f"; CPU per {unit}: " + ", ".join(f"{g} {1000 * v / per:.3g} ms" for g, v in used.items())
        return text


def quarters(samples: list[tuple[str, float]]) -> str:
    """p99 of each quarter of the stream, by Deployment name (= creation order)."""
    ordered = sorted(samples)
    size = math.ceil(len(ordered) / 4) or 1
    return ", ".join(f"{pct([v for _, v in ordered[i : i + size]], 0.99):.0f}" for i in range(0, len(ordered), size))


async def fill(client: KubeClient, path: str, names: list[str], label: str, in_flight: int) -> float:
    """Create ConfigMaps with `in_flight` requests at a time; returns creates per second."""
    queue = list(reversed(names))

    async def work() -> None:
        while queue:
            await client.create(path, configmap(queue.pop(), label))

    started = time.monotonic()
    await asyncio.gather(*(work() for _ in range(in_flight)))
    return len(names) / (time.monotonic() - started)
