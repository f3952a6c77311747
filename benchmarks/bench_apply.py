"""Server-side apply against a hub subprocess, with a same-run baseline:

* a 3-container Deployment applied whole (`application/apply-patch+yaml`, one field manager) where each request
  changes one field (a pod template annotation), at 32 connections; against a JSON merge patch making the same
  change to the same object, run right before it. Goal: apply at least half the merge patch rate.
* a ~300 KB CustomResourceDefinition applied sequentially, each apply changing one description: p99 latency.
  Goal: at most 100 ms.

Run alone: python -m benchmarks.bench_apply
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from benchmarks.bench_http import _ensure_namespaces, _load, _session
from benchmarks.loadgen import Load, LoadResult
from benchmarks.report import Row, row
from benchmarks.servers import Server, start_hub

APPLY_NS = "bench-apply"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
DEPLOYMENTS = f"/clusters/root/apis/apps/v1/namespaces/{APPLY_NS}/deployments"
CRDS = "/clusters/root/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@dataclass
class ApplySettings:
    connections: int = 32
    requests: int = 4000  # per kind of write
    crd_kilobytes: int = 300
    crd_applies: int = 60

    def quick(self) -> ApplySettings:
        return ApplySettings(self.connections, 1000, self.crd_kilobytes, 20)


def deployment(revision: str, name: str = "apply-bench-00") -> dict[str, Any]:
    labels = {"app": "apply-bench"}
    containers = [
        {
            "name": name,
            "image": f"registry.example.com/{name}:1.0",
            "ports": [{"containerPort": 8080 + i, "name": f"p{i}"}],
            "env": [{"name": "MODE", "value": "bench"}, {"name": "INDEX", "value": str(i)}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        }
        for i, name in enumerate(("web", "sidecar", "metrics"))
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": APPLY_NS, "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"bench.tmc.io/revision": revision}},
                "spec": {"containers": containers},
            },
        },
    }


def big_crd(kilobytes: int, revision: int) -> dict[str, Any]:
    """A CRD whose schema has enough documented properties to weigh `kilobytes` encoded."""
    props: dict[str, Any] = {}
    i = 0
    while len(orjson.dumps(props)) < kilobytes * 1000:
        props[f"field{i:04d}"] = {
            "type": "object",
            "description": f"Field {i}: " + "documentation " * 8,
            "properties": {
                "name": {"type": "string", "description": "a name"},
                "count": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            },
        }
        i += 1
    spec = {"type": "object", "description": f"revision {revision}", "properties": props}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "bigs.bench.tmc.io"},
        "spec": {
            "group": "bench.tmc.io",
            "scope": "Namespaced",
            "names": {"plural": "bigs", "singular": "big", "kind": "Big"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
                }
            ],
        },
    }


async def _apply(session: aiohttp.ClientSession, path: str, body: bytes, manager: str) -> float:
    """One apply on a kept-alive connection; milliseconds from sending to the last byte of the answer."""
    started = time.perf_counter()
    async with session.patch(f"{path}?fieldManager={manager}", data=body, headers={"Content-Type": APPLY}) as r:
        text = await r.read()
        if r.status not in (200, 201):
            raise RuntimeError(f"apply {path}: {r.status} {text[:300]!r}")
    return (time.perf_counter() - started) * 1000


async def _apply_once(server: Server, path: str, body: dict[str, Any], manager: str) -> float:
    async with _session(server) as s:
        return await _apply(s, path, orjson.dumps(body), manager)


async def _crd_latencies(server: Server, cfg: ApplySettings) -> tuple[list[float], int]:
    bodies = [orjson.dumps(big_crd(cfg.crd_kilobytes, i)) for i in range(cfg.crd_applies + 1)]
    path = f"{CRDS}/bigs.bench.tmc.io"
    async with _session(server) as s:
        await _apply(s, path, bodies[0], "bench")
        samples = [await _apply(s, path, body, "bench") for body in bodies[1:]]
    return samples, len(bodies[0])


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def bench_apply(hub: Server, cfg: ApplySettings) -> tuple[list[Row], list[str]]:
    asyncio.run(_ensure_namespaces(hub, [APPLY_NS]))
    # One object per connection: the benchmark measures the write path, not 32 writers retrying on one object.
    # Merge patches and applies go to different objects, so neither manager conflicts with the other.
    for kind in ("merge", "apply"):
        for i in range(cfg.connections):
            name = f"{kind}-bench-{i:02d}"
            asyncio.run(_apply_once(hub, f"{DEPLOYMENTS}/{name}", deployment("start", name), "bench"))
    merge_body = orjson.dumps(
        {"spec": {"template": {"metadata": {"annotations": {"bench.tmc.io/revision": "@NAME@"}}}}}
    ).decode()
    c = cfg.connections
    merge_path = f"{DEPLOYMENTS}/merge-bench-@OBJ@?fieldManager=bench"
    merge = Load("PATCH", merge_path, merge_body, 200, cfg.requests, "m", MERGE, objects=c)
    # The name in the body must match the URL's: the configuration leaves it out, the URL names the object.
    applied = deployment("@NAME@")
    del applied["metadata"]["name"]
    apply_path = f"{DEPLOYMENTS}/apply-bench-@OBJ@?fieldManager=bench"
    apply = Load("PATCH", apply_path, orjson.dumps(applied).decode(), 200, cfg.requests, "a", APPLY, objects=c)
    results: dict[str, LoadResult] = {}
    for name, load in (("merge", merge), ("apply", apply)):
        results[name] = _load(hub, load, cfg.connections, 120.0)
    m, a = results["merge"], results["apply"]
    samples, size = asyncio.run(_crd_latencies(hub, cfg))
    rows = [
        row(f"merge patch of a 3-container Deployment, {c} conns", m.ok_rate, "patches/s"),
        row("merge patch p99 latency", m.p99_ms, "ms"),
        row(
            f"server-side apply of a 3-container Deployment, {c} conns",
            a.ok_rate,
            "applies/s",
            goal=(">=", 0.5 * m.ok_rate),
            baseline=m.ok_rate,
            baseline_name="merge patch, same change",
        ),
        row("server-side apply p99 latency", a.p99_ms, "ms", baseline=m.p99_ms, baseline_name="merge patch p99"),
        row(f"apply of a {size / 1000:.0f} KB CRD, p99 of {len(samples)}", _p99(samples), "ms", goal=("<=", 100.0)),
    ]
    notes = []
    for name, r in results.items():
        if r.bad or r.errors:
            notes.append(f"apply benchmark: {name}: {r.bad} unexpected statuses, {r.errors} socket errors")
    return rows, notes


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
        hub = start_hub(f"{tmp}/hub")
        try:
            rows, notes = bench_apply(hub, ApplySettings())
        finally:
            hub.stop()
    for r in rows:
        print(r)
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
