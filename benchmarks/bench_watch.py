"""Watch fan-out over HTTP: one change delivered to N concurrent watch streams of a hub subprocess.

N streams `GET .../namespaces/bench-watch/configmaps?watch=1&resourceVersion=<rv>` are held open by a few worker
processes (asyncio + uvloop, raw TLS protocol objects that only timestamp and buffer what arrives, so the client
adds as little as possible). The parent waits until the hub reports all watchers registered, then sends one merge
PATCH per round to the watched ConfigMap. Per watcher and round, latency = arrival of the event carrying that round's
marker minus the moment just before the PATCH was sent (perf_counter is CLOCK_MONOTONIC, shared by all processes),
so it includes the durable commit. The same measurement with a single watcher is the baseline.

Run alone: python -m benchmarks.bench_watch
"""

from __future__ import annotations

import asyncio
import bisect
import multiprocessing
import re
import ssl
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson

from benchmarks.report import Row, row
from benchmarks.servers import Server

CORE = "/clusters/root/api/v1"
WATCH_NS = "bench-watch"
TARGET = "target"
MARKER = re.compile(rb'"round":"(\d+)"')
OPEN_TIMEOUT = 90.0


@dataclass
class WatchSettings:
    watchers: int = 500
    processes: int = 2
    rounds: int = 10
    interval: float = 0.5
    baseline_rounds: int = 5

    def quick(self) -> WatchSettings:
        return WatchSettings(self.watchers, self.processes, 4, 0.4, 3)


# -------------------------------------------------------------------- worker process


class _Stream(asyncio.Protocol):
    """One watch connection: records (arrival time, bytes) for everything after the response head."""

    def __init__(self, ready: asyncio.Future[bool]) -> None:
        self.ready = ready
        self.head = b""
        self.chunks: list[tuple[float, bytes]] = []
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.ready.done():
            self.chunks.append((now, data))
            return
        self.head += data
        if b"\r\n\r\n" in self.head:
            head, rest = self.head.split(b"\r\n\r\n", 1)
            if rest:
                self.chunks.append((now, rest))
            self.ready.set_result(head.startswith(b"HTTP/1.1 200"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(False)

    def arrivals(self) -> dict[int, float]:
        """Round number -> arrival time of the chunk that completed its event."""
        ends: list[int] = []
        total = 0
        for _, data in self.chunks:
            total += len(data)
            ends.append(total)
        joined = b"".join(data for _, data in self.chunks)
        out: dict[int, float] = {}
        for m in MARKER.finditer(joined):
            index = bisect.bisect_right(ends, m.end() - 1)
            out.setdefault(int(m.group(1)), self.chunks[index][0])
        return out


async def _hold_streams(port: int, path: str, token: str, ca_path: str, count: int, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context(cafile=ca_path)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nUser-Agent: tmc-bench-watch\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(32)

    async def open_one() -> tuple[_Stream, bool]:
        async with gate:
            ready: asyncio.Future[bool] = loop.create_future()
            transport, proto = await loop.create_connection(lambda: _Stream(ready), "127.0.0.1", port, ssl=ctx)
            transport.write(request)
            return proto, await asyncio.wait_for(ready, OPEN_TIMEOUT)

    opened = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    streams = [o[0] for o in opened if isinstance(o, tuple) and o[1]]
    conn.send(("ready", len(streams)))
    await loop.run_in_executor(None, conn.recv)  # the parent says when the rounds are over
    conn.send(("result", [s.arrivals() for s in streams]))
    for s in streams:
        if s.transport is not None:
            s.transport.close()
    await asyncio.sleep(0.1)


def _worker(port: int, path: str, token: str, ca_path: str, count: int, conn: Connection) -> None:
    try:
        import uvloop

        uvloop.run(_hold_streams(port, path, token, ca_path, count, conn))
    except ImportError:
        asyncio.run(_hold_streams(port, path, token, ca_path, count, conn))


# -------------------------------------------------------------------- parent


def _session(hub: Server) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=hub.ssl_context(), limit=4)
    return aiohttp.ClientSession(hub.base_url, connector=connector, headers=hub.auth_headers())


async def _setup(hub: Server) -> str:
    """Namespace and target ConfigMap; returns the resourceVersion to watch from."""
    async with _session(hub) as s:
        async with s.post(f"{CORE}/namespaces", json={"metadata": {"name": WATCH_NS}}) as r:
            if r.status not in (201, 409):
                raise RuntimeError(f"creating namespace: {r.status} {await r.text()}")
        path = f"{CORE}/namespaces/{WATCH_NS}/configmaps"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": TARGET}, "data": {"round": "start"}}
        async with s.post(path, json=body) as r:
            if r.status == 409:
                async with s.get(f"{path}/{TARGET}") as g:
                    return str((await g.json())["metadata"]["resourceVersion"])
            if r.status != 201:
                raise RuntimeError(f"creating target: {r.status} {await r.text()}")
            return str((await r.json())["metadata"]["resourceVersion"])


async def _registered(s: aiohttp.ClientSession) -> int:
    async with s.get("/metrics") as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_registered_watchers{") and 'kind="ConfigMap"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def _drive(
    hub: Server, expect_at_least: int, rounds: int, interval: float, round_base: int
) -> tuple[list[float], list[float]]:
    """Wait for the watchers to be registered, then one PATCH per round; returns send times and ack latencies (ms)."""
    sent: list[float] = []
    acks: list[float] = []
    async with _session(hub) as s:
        deadline = time.monotonic() + OPEN_TIMEOUT
        while await _registered(s) < expect_at_least and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        for k in range(rounds):
            t0 = time.perf_counter()
            await _patch(s, str(round_base + k))
            acks.append((time.perf_counter() - t0) * 1000)
            sent.append(t0)
            await asyncio.sleep(interval)
    return sent, acks


async def _patch(s: aiohttp.ClientSession, marker: str) -> None:
    path = f"{CORE}/namespaces/{WATCH_NS}/configmaps/{TARGET}"
    body = orjson.dumps({"data": {"round": marker}})
    async with s.patch(path, data=body, headers={"Content-Type": "application/merge-patch+json"}) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"PATCH: {r.status}")


async def _cleanup(hub: Server, before: int) -> int:
    """Watches the hub still had registered 0.5 s after our clients closed; then one more change to let it notice
    the closed connections, and wait (up to 5 s) until they are gone."""
    async with _session(hub) as s:
        await asyncio.sleep(0.5)
        stale = max(0, await _registered(s) - before)
        if stale:
            await _patch(s, "flush")
            deadline = time.monotonic() + 5
            while await _registered(s) > before and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        return stale


async def _registered_now(hub: Server) -> int:
    async with _session(hub) as s:
        return await _registered(s)


@dataclass
class FanoutResult:
    watchers: int
    opened: int
    open_seconds: float
    per_round_ms: list[list[float]]
    missed: int
    acks_ms: list[float]
    stale: int

    @property
    def latencies_ms(self) -> list[float]:
        return [x for r in self.per_round_ms for x in r]


def fanout(hub: Server, watchers: int, processes: int, rounds: int, interval: float, round_base: int) -> FanoutResult:
    rv = asyncio.run(_setup(hub))
    before = asyncio.run(_registered_now(hub))
    path = f"{CORE}/namespaces/{WATCH_NS}/configmaps?watch=1&resourceVersion={rv}"
    ctx = multiprocessing.get_context("spawn")
    procs: list[tuple[Any, Connection]] = []
    per = [watchers // processes + (1 if i < watchers % processes else 0) for i in range(processes)]
    started = time.perf_counter()
    try:
        for count in per:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(hub.port, path, hub.token, hub.ca_path, count, child), daemon=True)
            p.start()
            procs.append((p, parent))
        opened = 0
        for _, conn in procs:
            if not conn.poll(OPEN_TIMEOUT + 30):
                raise RuntimeError("watch workers did not open their streams in time")
            opened += conn.recv()[1]
        open_seconds = time.perf_counter() - started
        sent, acks = asyncio.run(_drive(hub, before + opened, rounds, interval, round_base))
        time.sleep(min(2.0, interval * 2))
        arrivals: list[dict[int, float]] = []
        for _, conn in procs:
            conn.send("stop")
        for _, conn in procs:
            if not conn.poll(60):
                raise RuntimeError("watch workers did not report")
            arrivals += conn.recv()[1]
    finally:
        for p, _ in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    stale = asyncio.run(_cleanup(hub, before))
    per_round = [
        [(s[round_base + k] - t0) * 1000 for s in arrivals if round_base + k in s] for k, t0 in enumerate(sent)
    ]
    received = sum(len(r) for r in per_round)
    return FanoutResult(watchers, opened, open_seconds, per_round, opened * len(sent) - received, acks, stale)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(
    hub: Server, cfg: WatchSettings | None = None, *, label: str = "", baseline: bool = True
) -> tuple[list[Row], list[str]]:
    """Fan-out to cfg.watchers streams; with `baseline`, first the same with one watcher. `label` names the state of
    the hub (e.g. how many objects it holds) in the row names."""
    cfg = cfg or WatchSettings()
    one = fanout(hub, 1, 1, cfg.baseline_rounds, cfg.interval, 1000) if baseline else None
    many = fanout(hub, cfg.watchers, cfg.processes, cfg.rounds, cfg.interval, 2000)
    n = cfg.watchers
    lat = many.latencies_ms
    suffix = f" ({label})" if label else ""
    base = one.latencies_ms if one is not None else []

    def ref(q: float) -> dict[str, Any]:
        return {"baseline": _pct(base, q), "baseline_name": "1 watcher"} if base else {}

    rows = [
        row(f"watch: 1 change to {n} watchers, p50{suffix}", _pct(lat, 0.5), "ms", **ref(0.5)),
        row(f"watch: 1 change to {n} watchers, p99{suffix}", _pct(lat, 0.99), "ms", goal=("<=", 50), **ref(0.99)),
        row(f"watch: 1 change to {n} watchers, max{suffix}", max(lat, default=float("nan")), "ms", **ref(1.0)),
        row(f"watch: PATCH ack p50, {n} watchers{suffix}", _pct(many.acks_ms, 0.5), "ms"),
    ]
    if baseline:
        rows += [
            row(f"watch: streams open ({cfg.processes} client processes)", many.opened, "streams"),
            row(f"watch: time to open {many.opened} streams", many.open_seconds, "s"),
        ]
    notes = [
        f"watch{suffix}: {len(many.per_round_ms)} changes x {many.opened} watchers = {len(lat)} samples, "
        f"{cfg.interval:g}s apart; p99 per change: " + ", ".join(f"{_pct(r, 0.99):.0f}" for r in many.per_round_ms)
    ]
    missed = many.missed + (one.missed if one is not None else 0)
    if missed:
        notes.append(f"watch{suffix}: {missed} (watcher, change) pairs never arrived")
    if many.opened != n:
        notes.append(f"watch{suffix}: only {many.opened} of {n} streams opened")
    if many.stale:
        notes.append(
            f"watch{suffix}: 0.5s after the {many.opened} clients closed their connections the hub still had "
            f"{many.stale} watches registered (they go away only when the next event is written to them)"
        )
    return rows, notes


def main() -> None:
    import os
    import tempfile

    from benchmarks.report import table
    from benchmarks.servers import start_hub

    with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
        hub = start_hub(os.path.join(tmp, "hub"))
        try:
            rows, notes = run(hub)
        finally:
            hub.stop()
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
