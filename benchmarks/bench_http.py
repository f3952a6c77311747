"""HTTP benchmarks against a hub subprocess (TLS, admin bearer token), with same-run baselines:

* GET of one ConfigMap at 32 connections vs a hello-world aiohttp app over the same TLS setup (benchmarks.hello_server);
* durable creates: POST ConfigMaps with generateName at 32 connections, 201s counted, the count confirmed by a LIST;
* LIST of 10,000 ConfigMaps timed client side (until the last byte), vs the same number of bytes from hello-world;
  also `kubectl get cm -o name` when kubectl is installed.

Load comes from wrk (benchmarks.loadgen) or, without wrk, from a Python aiohttp client (much slower; noted).

Run alone: python -m benchmarks.bench_http
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from benchmarks.cpu import CpuWindow, process_cpu
from benchmarks.loadgen import Load, LoadResult, run_load
from benchmarks.report import Row, row
from benchmarks.servers import Server, metric

CORE = "/clusters/root/api/v1"
GET_NS = "bench-get"
CREATE_NS = "bench-create"
WARM_NS = "bench-warm"
LIST_NS = "bench-list"
EMPTY_NS = "bench-empty"


@dataclass
class HttpSettings:
    connections: int = 32
    warmup: float = 2.0
    get_seconds: float = 12.0  # per server, split into get_rounds alternating rounds
    get_rounds: int = 3
    create_seconds: float = 8.0
    list_objects: int = 10_000
    list_repeats: int = 7
    kubectl_repeats: int = 3

    def quick(self) -> HttpSettings:
        return HttpSettings(self.connections, 1.0, 4.0, 2, 3.0, self.list_objects, 3, 1)


def configmap(name: str = "", generate_name: str = "") -> dict[str, Any]:
    """A small ConfigMap as clients send it (~500 bytes encoded), the same shape as in bench_storage."""
    md: dict[str, Any] = {"labels": {"app": "bench", "tier": "http"}, "annotations": {"bench.tmc.io/note": "x" * 200}}
    if name:
        md["name"] = name
    if generate_name:
        md["generateName"] = generate_name
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {f"key{i}": "value" * 8 for i in range(6)}}


# -------------------------------------------------------------------- client helpers


def _session(server: Server) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=8)
    headers = {**server.auth_headers(), "Accept": "application/json"}
    return aiohttp.ClientSession(server.base_url, connector=connector, headers=headers)


async def _call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    data = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    async with session.request(method, path, data=data, headers=headers) as r:
        return r.status, await r.read()


async def _ensure_namespaces(server: Server, names: list[str]) -> None:
    async with _session(server) as s:
        for name in names:
            status, body = await _call(s, "POST", f"{CORE}/namespaces", {"metadata": {"name": name}})
            if status not in (201, 409):
                raise RuntimeError(f"creating namespace {name}: {status} {body[:300]!r}")


async def _create(server: Server, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    async with _session(server) as s:
        status, body = await _call(s, "POST", f"{CORE}/namespaces/{namespace}/configmaps", obj)
        if status != 201:
            raise RuntimeError(f"creating a ConfigMap: {status} {body[:300]!r}")
        out: dict[str, Any] = orjson.loads(body)
        return out


async def _count(server: Server, namespace: str) -> int:
    async with _session(server) as s:
        status, body = await _call(s, "GET", f"{CORE}/namespaces/{namespace}/configmaps")
        if status != 200:
            raise RuntimeError(f"listing {namespace}: {status} {body[:300]!r}")
        return len(orjson.loads(body)["items"])


async def _time_pages(server: Server, path: str, limit: int, repeats: int) -> tuple[list[float], int]:
    """Client-side milliseconds to read a whole collection in pages of `limit` (as kubectl does), and the pages."""
    samples: list[float] = []
    pages = 0
    async with _session(server) as s:
        for i in range(repeats + 1):
            started = time.perf_counter()
            token, pages = "", 0
            while True:
                query = f"?limit={limit}" + (f"&continue={token}" if token else "")
                async with s.get(path + query) as r:
                    body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"GET {path}{query}: {r.status} {body[:300]!r}")
                pages += 1
                token = orjson.loads(body)["metadata"].get("continue", "")
                if not token:
                    break
            if i:
                samples.append((time.perf_counter() - started) * 1000)
    return samples, pages


async def _time_gets(server: Server, path: str, repeats: int) -> tuple[list[float], int]:
    """Client-side milliseconds per GET (request sent to last body byte read), after one untimed warm-up."""
    samples: list[float] = []
    size = 0
    async with _session(server) as s:
        for i in range(repeats + 1):
            started = time.perf_counter()
            async with s.get(path) as r:
                body = await r.read()
            elapsed = (time.perf_counter() - started) * 1000
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
            size = len(body)
            if i:
                samples.append(elapsed)
    return samples, size


def _load(server: Server, load: Load, connections: int, seconds: float) -> LoadResult:
    return run_load(
        server.base_url, server.token, server.ssl_context(), load, connections=connections, duration=seconds
    )


# -------------------------------------------------------------------- benchmarks


def bench_get(hub: Server, hello: Server, cfg: HttpSettings) -> tuple[list[Row], list[str]]:
    """Alternating rounds (hello-world, then hub) so that both see the same machine conditions; rates are totals,
    latency percentiles and the ratio are medians over rounds. Server CPU per request comes from /proc."""
    asyncio.run(_ensure_namespaces(hub, [GET_NS]))
    asyncio.run(_create(hub, GET_NS, configmap("one")))
    get = Load("GET", f"{CORE}/namespaces/{GET_NS}/configmaps/one")
    say = Load("GET", "/hello")
    _load(hello, say, cfg.connections, cfg.warmup)
    _load(hub, get, cfg.connections, cfg.warmup)
    seconds = cfg.get_seconds / cfg.get_rounds
    runs: dict[str, list[tuple[LoadResult, float]]] = {"hello": [], "hub": []}
    with CpuWindow([hub.pid, hello.pid]) as window:
        for _ in range(cfg.get_rounds):
            for who, server, load in (("hello", hello, say), ("hub", hub, get)):
                cpu = process_cpu(server.pid)
                result = _load(server, load, cfg.connections, seconds)
                runs[who].append((result, process_cpu(server.pid) - cpu))

    def total_rate(who: str) -> float:
        return sum(r.ok for r, _ in runs[who]) / sum(r.seconds for r, _ in runs[who])

    def median(who: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r, _ in runs[who])

    def cpu_us(who: str) -> float:
        return sum(c for _, c in runs[who]) / max(1, sum(r.requests for r, _ in runs[who])) * 1e6

    ratios = [a.ok_rate / b.ok_rate for (a, _), (b, _) in zip(runs["hub"], runs["hello"], strict=True) if b.ok_rate]
    hub_cpu, hello_cpu = cpu_us("hub"), cpu_us("hello")
    c = cfg.connections
    hw = "hello-world"
    rows = [
        row(
            f"GET one ConfigMap, {c} conns", total_rate("hub"), "req/s", baseline=total_rate("hello"), baseline_name=hw
        ),
        row("GET rate / hello-world rate", statistics.median(ratios), "x", goal=(">=", 0.5)),
        row("GET p50 latency", median("hub", "p50_ms"), "ms", baseline=median("hello", "p50_ms"), baseline_name=hw),
        row(
            "GET p99 latency",
            median("hub", "p99_ms"),
            "ms",
            goal=("<=", 10),
            baseline=median("hello", "p99_ms"),
            baseline_name=hw,
        ),
    ]
    if hub_cpu > 0 and hello_cpu > 0:
        rows += [
            row("GET server CPU per request", hub_cpu, "us", baseline=hello_cpu, baseline_name=hw),
            row("GET CPU cost ratio hello-world / hub", hello_cpu / hub_cpu, "x"),
        ]
    notes = [
        f"GET: {cfg.get_rounds} alternating rounds of {seconds:g}s; hub/hello-world rate ratio per round: "
        + ", ".join(f"{x:.2f}" for x in ratios)
        + f"; other processes on the machine used {window.other:.2f} cores meanwhile"
    ]
    for who in ("hub", "hello"):
        bad = sum(r.bad for r, _ in runs[who])
        errors = sum(r.errors for r, _ in runs[who])
        if bad or errors:
            notes.append(f"GET {who}: {bad} unexpected statuses, {errors} socket errors")
    return rows, notes


def bench_creates(hub: Server, cfg: HttpSettings, storage_rate: float | None) -> tuple[list[Row], list[str]]:
    asyncio.run(_ensure_namespaces(hub, [WARM_NS, CREATE_NS]))
    body = orjson.dumps(configmap(generate_name="bench-")).decode()
    _load(hub, Load("POST", f"{CORE}/namespaces/{WARM_NS}/configmaps", body, 201), cfg.connections, 1.0)
    commits = _commit_stats(hub)
    res = _load(
        hub, Load("POST", f"{CORE}/namespaces/{CREATE_NS}/configmaps", body, 201), cfg.connections, cfg.create_seconds
    )
    commits = [after - before for after, before in zip(_commit_stats(hub), commits, strict=True)]
    listed = asyncio.run(_count(hub, CREATE_NS))
    c = cfg.connections
    rows = [
        row(
            f"durable creates (POST generateName), {c} conns",
            res.ok_rate,
            "creates/s",
            goal=(">=", 1500),
            baseline=storage_rate,
            baseline_name="store in-process, 32 callers" if storage_rate is not None else "",
        ),
        row("create p50 latency", res.p50_ms, "ms"),
        row("create p99 latency", res.p99_ms, "ms"),
        row("created objects confirmed by LIST", listed, "objects", baseline=res.ok, baseline_name="201s counted"),
    ]
    batches, writes, commit_seconds = commits
    if batches > 0:
        rows += [
            row("creates: writes per commit (group commit), mean", writes / batches, "writes"),
            row("creates: commit (insert + fsync), mean", commit_seconds / batches * 1000, "ms"),
        ]
    notes = []
    if res.bad or res.errors:
        notes.append(f"creates: {res.bad} non-201 responses, {res.errors} socket errors")
    if not res.ok <= listed <= res.ok + c:
        notes.append(f"creates: LIST found {listed} objects but {res.ok} creates were answered 201")
    elif listed != res.ok:
        notes.append(
            f"creates: LIST found {listed - res.ok} more objects than 201s counted: requests still in flight when "
            "the load generator stopped (at most one per connection)"
        )
    return rows, notes


def _commit_stats(hub: Server) -> list[float]:
    """(commits, writes, seconds spent committing) so far, from the hub's storage histograms."""
    return [
        metric(hub, "tmc_storage_batch_size_count"),
        metric(hub, "tmc_storage_batch_size_sum"),
        metric(hub, "tmc_storage_commit_duration_seconds_sum"),
    ]


def _kubectl_ms(hub: Server, namespace: str, extra: list[str], repeats: int, cache: str) -> float:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    cmd = [kubectl, "--kubeconfig", os.path.join(hub.data_dir, "admin.kubeconfig"), "--cache-dir", cache]
    cmd += ["-n", namespace, "get", "configmaps", "-o", "name", *extra]
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        samples.append((time.perf_counter() - started) * 1000)
        if out.returncode != 0:
            raise RuntimeError(f"kubectl failed: {out.stderr[-500:]!r}")
    return statistics.median(samples)


def bench_list(hub: Server, hello: Server, cfg: HttpSettings, storage_ms: float | None) -> tuple[list[Row], list[str]]:
    asyncio.run(_ensure_namespaces(hub, [LIST_NS, EMPTY_NS]))
    body = orjson.dumps(configmap("@NAME@")).decode()
    fill = Load("POST", f"{CORE}/namespaces/{LIST_NS}/configmaps", body, 201, count=cfg.list_objects, name_prefix="cm-")
    started = time.perf_counter()
    made = _load(hub, fill, cfg.connections, 300.0)
    fill_seconds = time.perf_counter() - started
    n = asyncio.run(_count(hub, LIST_NS))
    samples, size = asyncio.run(_time_gets(hub, f"{CORE}/namespaces/{LIST_NS}/configmaps", cfg.list_repeats))
    blob, _ = asyncio.run(_time_gets(hello, f"/blob/{size}", cfg.list_repeats))
    paged, pages = asyncio.run(_time_pages(hub, f"{CORE}/namespaces/{LIST_NS}/configmaps", 500, cfg.kubectl_repeats))
    rows = [
        row(
            f"LIST {n:,} ConfigMaps, median",
            statistics.median(samples),
            "ms",
            goal=("<=", 250),
            baseline=statistics.median(blob),
            baseline_name="same bytes from hello-world",
        ),
        row(
            f"LIST {n:,} ConfigMaps, max of {len(samples)}",
            max(samples),
            "ms",
            baseline=storage_ms,
            baseline_name="store list, in-process" if storage_ms is not None else "",
        ),
        row("LIST response size", size / 1e6, "MB"),
        row(
            f"LIST {n:,} in {pages} pages of 500, median",
            statistics.median(paged),
            "ms",
            baseline=statistics.median(samples),
            baseline_name="one full LIST",
        ),
        row(f"fill: {made.ok:,} creates with names, {cfg.connections} conns", made.ok / fill_seconds, "creates/s"),
    ]
    notes = []
    if n != cfg.list_objects:
        notes.append(f"list: {n} objects in {LIST_NS}, expected {cfg.list_objects} ({made.bad} failed creates)")
    if shutil.which("kubectl") and cfg.kubectl_repeats:
        with tempfile.TemporaryDirectory(prefix="tmc-bench-kubectl-") as cache:
            _kubectl_ms(hub, EMPTY_NS, [], 1, cache)  # fills the discovery cache
            empty = _kubectl_ms(hub, EMPTY_NS, [], cfg.kubectl_repeats, cache)
            chunked = _kubectl_ms(hub, LIST_NS, [], cfg.kubectl_repeats, cache)
            whole = _kubectl_ms(hub, LIST_NS, ["--chunk-size=0"], cfg.kubectl_repeats, cache)
        rows += [
            row(
                f"kubectl get cm -o name, {n:,} (pages of 500)",
                chunked,
                "ms",
                baseline=empty,
                baseline_name="empty namespace",
            ),
            row(
                f"kubectl get cm -o name, {n:,} (--chunk-size=0)",
                whole,
                "ms",
                baseline=empty,
                baseline_name="empty namespace",
            ),
        ]
    else:
        notes.append("kubectl not installed: kubectl list timings skipped")
    return rows, notes


def run(
    hub: Server, hello: Server, cfg: HttpSettings | None = None, storage: dict[str, float] | None = None
) -> tuple[list[Row], list[str]]:
    """All HTTP benchmarks in order (GET, creates, LIST). `storage` holds bench_storage values used as baselines."""
    cfg = cfg or HttpSettings()
    storage = storage or {}
    rows: list[Row] = []
    notes: list[str] = []
    for part in (
        lambda: bench_get(hub, hello, cfg),
        lambda: bench_creates(hub, cfg, storage.get("durable creates, 32 callers")),
        lambda: bench_list(hub, hello, cfg, storage.get("list 10,000 entries")),
    ):
        r, n = part()
        rows += r
        notes += n
    return rows, notes


def main() -> None:
    from benchmarks.report import table
    from benchmarks.servers import start_hello, start_hub

    with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
        hub = start_hub(os.path.join(tmp, "hub"))
        hello = start_hello(os.path.join(tmp, "hello"))
        try:
            rows, notes = run(hub, hello)
        finally:
            hub.stop()
            hello.stop()
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
