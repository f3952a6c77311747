"""GET latency while large YAML bodies are posted: p99 of a parallel GET, quiet and while 8 clients each send 3 MB
YAML ConfigMap creates back to back. Goal: the busy p99 within 2x of the quiet one (issue 9). The creates reuse one
name per client, so after the first the hub parses, validates and answers 409 (or 422: the data is over the
ConfigMap limit) without storing megabytes per request; parsing is what is measured."""

from __future__ import annotations

import asyncio
import threading

import aiohttp

from benchmarks.bench_http import CORE, GET_NS, _create, _ensure_namespaces, _load, configmap
from benchmarks.loadgen import Load
from benchmarks.report import Row, row
from benchmarks.servers import Server

POSTERS = 8
BODY_BYTES = 3_000_000


def yaml_body(name: str) -> bytes:
    head = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  big: |\n"
    line = "    " + "x" * 76 + "\n"
    return (head + line * (BODY_BYTES // len(line))).encode()


async def _post_until(hub: Server, stop: threading.Event, counts: list[int]) -> None:
    headers = {"Authorization": f"Bearer {hub.token}", "Content-Type": "application/yaml"}
    connector = aiohttp.TCPConnector(ssl=hub.ssl_context())
    async with aiohttp.ClientSession(hub.base_url, connector=connector, headers=headers) as session:

        async def poster(i: int) -> None:
            body = yaml_body(f"big-{i}")
            while not stop.is_set():
                async with session.post(f"{CORE}/namespaces/{GET_NS}/configmaps", data=body) as r:
                    await r.read()
                    counts[0 if r.status < 500 else 1] += 1

        await asyncio.gather(*(poster(i) for i in range(POSTERS)))


def bench_yaml(hub: Server, seconds: float = 6.0) -> tuple[list[Row], list[str]]:
    asyncio.run(_ensure_namespaces(hub, [GET_NS]))
    asyncio.run(_create(hub, GET_NS, configmap("yaml-get")))
    get = Load("GET", f"{CORE}/namespaces/{GET_NS}/configmaps/yaml-get")
    _load(hub, get, 8, 2.0)
    quiet = _load(hub, get, 8, seconds)
    stop = threading.Event()
    counts = [0, 0]
    posting = threading.Thread(target=lambda: asyncio.run(_post_until(hub, stop, counts)))
    posting.start()
    try:
        _load(hub, get, 8, 2.0)  # the posters reach their steady state
        busy = _load(hub, get, 8, seconds)
    finally:
        stop.set()
        posting.join()
    rows = [
        row("GET p99, 8 conns, quiet", quiet.p99_ms, "ms"),
        row(
            f"GET p99 while {POSTERS} clients post 3 MB YAML",
            busy.p99_ms,
            "ms",
            goal=("<=", 2 * quiet.p99_ms),
            baseline=quiet.p99_ms,
            baseline_name="quiet (goal <= 2x)",
        ),
        row("GET rate while posting YAML", busy.ok_rate, "req/s", baseline=quiet.ok_rate, baseline_name="quiet"),
    ]
    notes = [f"yaml: {counts[0]} 3 MB YAML creates answered 4xx/2xx during the run, {counts[1]} answered 5xx"]
    return rows, notes
