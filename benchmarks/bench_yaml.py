"""GET latency while large YAML bodies are posted: p99 of a parallel GET, quiet and while 8 clients each send 3 MB
YAML ConfigMap creates back to back. Goal: the busy p99 within 2x of the quiet one (issue 9). The creates reuse one
name per client, so after the first the hub parses, validates and answers 409 (or 422: the data is over the
ConfigMap limit) without storing megabytes per request; parsing is what is measured. The hello-world server then
receives the same bytes at the same rate, the floor set by moving 3 MB bodies over TLS on this machine."""

from __future__ import annotations

import asyncio
import threading

import aiohttp

from benchmarks.bench_http import CORE, GET_NS, _create, _ensure_namespaces, _load, configmap
from benchmarks.loadgen import Load, LoadResult
from benchmarks.report import Row, row
from benchmarks.servers import Server

POSTERS = 8
BODY_BYTES = 3_000_000


def yaml_body(name: str) -> bytes:
    head = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  big: |\n"
    line = "    " + "x" * 76 + "\n"
    return (head + line * (BODY_BYTES // len(line))).encode()


async def _post_until(
    server: Server, path: str, content_type: str, stop: threading.Event, counts: list[int], interval: float = 0.0
) -> None:
    """POSTERS clients post 3 MB YAML bodies to `path` until `stop`: back to back, or each at most once per
    `interval` seconds. counts[0] counts answers below 500, counts[1] the 5xx."""
    headers = {"Content-Type": content_type}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    connector = aiohttp.TCPConnector(ssl=server.ssl_context())
    async with aiohttp.ClientSession(server.base_url, connector=connector, headers=headers) as session:

        async def poster(i: int) -> None:
            body = yaml_body(f"big-{i}")
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                started = loop.time()
                async with session.post(path, data=body) as r:
                    await r.read()
                    counts[0 if r.status < 500 else 1] += 1
                await asyncio.sleep(max(0.0, started + interval - loop.time()))

        await asyncio.gather(*(poster(i) for i in range(POSTERS)))


def _p99_while_posting(
    server: Server, get: Load, path: str, content_type: str, seconds: float, interval: float = 0.0
) -> tuple[LoadResult, LoadResult, list[int]]:
    """GET p99 quiet, then while the posters run; and how many posts were answered in the measured window."""
    _load(server, get, 8, 2.0)
    quiet = _load(server, get, 8, seconds)
    stop = threading.Event()
    counts = [0, 0]
    posting = threading.Thread(
        target=lambda: asyncio.run(_post_until(server, path, content_type, stop, counts, interval))
    )
    posting.start()
    try:
        _load(server, get, 8, 2.0)  # the posters reach their steady state
        before = list(counts)
        busy = _load(server, get, 8, seconds)
        during = [counts[0] - before[0], counts[1] - before[1]]
    finally:
        stop.set()
        posting.join()
    return quiet, busy, during


def bench_yaml(hub: Server, hello: Server, seconds: float = 6.0) -> tuple[list[Row], list[str]]:
    """The hub under YAML uploads, then the hello-world server receiving the same bytes at the same rate (reading
    and discarding them): what the transfer alone, TLS on two cores with the sender on the same machine, costs."""
    asyncio.run(_ensure_namespaces(hub, [GET_NS]))
    asyncio.run(_create(hub, GET_NS, configmap("yaml-get")))
    get = Load("GET", f"{CORE}/namespaces/{GET_NS}/configmaps/yaml-get")
    post_path = f"{CORE}/namespaces/{GET_NS}/configmaps"
    quiet, busy, posted = _p99_while_posting(hub, get, post_path, "application/yaml", seconds)
    rate = posted[0] / busy.seconds if busy.seconds else 0.0
    interval = POSTERS / rate if rate else 1.0
    h_quiet, h_busy, h_posted = _p99_while_posting(
        hello, Load("GET", "/hello"), "/sink", "text/plain", seconds, interval
    )
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
        row("3 MB YAML posts answered", rate, "/s"),
        row(
            "hello-world GET p99 receiving the same bytes",
            h_busy.p99_ms,
            "ms",
            baseline=h_quiet.p99_ms,
            baseline_name="hello-world quiet",
            note=f"{h_posted[0] / h_busy.seconds:.1f} posts/s, read and discarded",
        ),
    ]
    notes = [
        f"yaml: {posted[0]} 3 MB YAML creates answered 4xx/2xx in the measured window, {posted[1]} answered 5xx",
        f"yaml: busy/quiet p99 ratio {busy.p99_ms / quiet.p99_ms:.1f}x for the hub, "
        f"{h_busy.p99_ms / h_quiet.p99_ms:.1f}x for hello-world receiving the same bytes at the same rate",
    ]
    return rows, notes
