"""Idle connections: 10,000 TLS clients each send one GET and then stay connected without a word. The hub must close
them after its idle timeout (`--idle-timeout`) and give their memory back. Reported: the time to open them, the hub's
RSS before, with them open and after the hub closed them, and how long the closing took."""

from __future__ import annotations

import asyncio
import os
import time

from benchmarks.report import Row, row
from benchmarks.servers import Server, start_hub

CONNECTIONS = 10_000
IDLE_TIMEOUT = 10.0
OPENING_AT_ONCE = 200


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _hold(hub: Server, count: int) -> tuple[list[asyncio.StreamWriter], float]:
    request = (
        f"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {hub.token}\r\n\r\n"
    ).encode()
    ctx = hub.ssl_context()
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.port, ssl=ctx)
            writer.write(request)
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            writers.append(writer)

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return writers, time.monotonic() - started


def bench_idle_connections(data_dir: str, count: int = CONNECTIONS) -> tuple[list[Row], list[str]]:
    hub = start_hub(data_dir, ("--idle-timeout", f"{IDLE_TIMEOUT:g}s", "--max-connections", str(count + 100)))
    try:
        before = _rss_mb(hub.pid)
        fds_before = _open_fds(hub.pid)

        async def scenario() -> tuple[int, float, float, float, float]:
            writers, opening = await _hold(hub, count)
            held = _rss_mb(hub.pid)
            opened_at = time.monotonic()
            deadline = opened_at + IDLE_TIMEOUT * 3 + 30
            while _open_fds(hub.pid) > fds_before + 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            closed_after = time.monotonic() - opened_at
            await asyncio.sleep(3)  # the hub trims memory a second after the closing settles
            after = _rss_mb(hub.pid)
            for writer in writers:
                writer.close()
            return len(writers), opening, held, closed_after, after

        opened, opening, held, closed_after, after = asyncio.run(scenario())
        left = max(0, _open_fds(hub.pid) - fds_before)
    finally:
        hub.stop()
    rows = [
        row("idle TLS connections opened (one GET each)", opened, "conns"),
        row("time to open them", opening, "s"),
        row("hub RSS with them open", held, "MB", baseline=before, baseline_name="before"),
        row(
            "all closed by the hub, after the last opened",
            closed_after,
            "s",
            goal=("<=", IDLE_TIMEOUT + 5),
            baseline=IDLE_TIMEOUT,
            baseline_name="idle timeout",
        ),
        row("hub RSS after the hub closed them", after, "MB", baseline=before, baseline_name="before"),
        row("memory given back", 100 * (held - after) / max(1e-9, held - before), "%"),
    ]
    notes = [f"idle: {left} of the connections still open at the end (hub file descriptors above the start)"]
    return rows, notes
