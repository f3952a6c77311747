"""The observer of the propagation benchmark: a worker process holding watch streams on the hub and the members.

Each stream lists its collection once (for a resourceVersion) and then watches from there. Every chunk is
timestamped with `time.monotonic()` (CLOCK_MONOTONIC, the clock the driver process stamps its requests with) the
moment it is read, before it is parsed; an event's time is that of the chunk that completed it. Per object name the
worker keeps only first arrivals, so memory stays small:

- `seen`: the first event for the name (the object appeared);
- `ready`: when `status.readyReplicas` first reached 1, 2, 3, ... (a list indexed by level - 1);
- `reported`: per target key, when that target's status report (`diff.syncer.internal.kcp.io/<key>`, the per-target
  status the syncer writes through the virtual workspace) first showed `readyReplicas >= 1` (hub streams only).

The streams are raw aiohttp reads rather than KubeClient.watch, which hands on parsed events: the timestamps must be
taken per chunk, before parsing. The kubeconfig and TLS settings come from the client layer. It runs in its own
process (uvloop when installed) so that neither the load generation nor the system under test delays the
timestamps. The parent talks to it over a Pipe: ("progress") -> summary, ("stop") -> all facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson

from tmc.api.workload import STATUS_DIFF_ANNOTATION_PREFIX
from tmc.client import load_kubeconfig, ssl_context

OPEN_TIMEOUT = 60.0
WATCH_SECONDS = 3600  # longer than any run: the stream is never re-opened mid-measurement


@dataclass(frozen=True)
class StreamSpec:
    label: str  # who is watched, e.g. "hub" or "cluster-3"
    kubeconfig: str
    path: str  # a collection, e.g. /apis/apps/v1/deployments
    label_selector: str = ""
    reports: bool = False  # look at the per-target status reports (hub objects)


@dataclass
class Facts:
    seen: dict[str, float] = field(default_factory=dict)
    ready: dict[str, list[float]] = field(default_factory=dict)
    reported: dict[str, dict[str, float]] = field(default_factory=dict)
    events: int = 0
    errors: list[str] = field(default_factory=list)

    def observe(self, t: float, event: dict[str, Any], reports: bool) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            self.errors.append(str(obj.get("message") or obj)[:300])
            return
        if kind not in ("ADDED", "MODIFIED"):
            return
        self.events += 1
        md = obj.get("metadata") or {}
        name = str(md.get("name"))
        self.seen.setdefault(name, t)
        level = int((obj.get("status") or {}).get("readyReplicas") or 0)
        levels = self.ready.setdefault(name, [])
        while len(levels) < level:
            levels.append(t)
        if reports:
            for key, value in (md.get("annotations") or {}).items():
                if key.startswith(STATUS_DIFF_ANNOTATION_PREFIX):
                    target = key[len(STATUS_DIFF_ANNOTATION_PREFIX) :]
                    per = self.reported.setdefault(name, {})
                    if target not in per and _ready_in_report(value):
                        per[target] = t


def _ready_in_report(value: str) -> bool:
    try:
        report = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    status = report.get("status") if isinstance(report, dict) else None
    return isinstance(status, dict) and int(status.get("readyReplicas") or 0) >= 1


class _Stream:
    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.facts = Facts()
        config = load_kubeconfig(spec.kubeconfig)
        self.base_url = config.base_url
        self.headers = {"Accept": "application/json"}
        if config.token:
            self.headers["Authorization"] = f"Bearer {config.token}"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(config), limit=2))
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as e:  # reported to the parent, which says so in the results
            self.facts.errors.append(f"{type(e).__name__}: {e}")
            if not self.opened.done():
                self.opened.set_exception(e)

    async def _run(self) -> None:
        selector = {"labelSelector": self.spec.label_selector} if self.spec.label_selector else {}
        url = self.base_url + self.spec.path
        async with self.session.get(url, params={**selector, "limit": "1"}, headers=self.headers) as r:
            if r.status != 200:
                raise RuntimeError(f"list {url}: {r.status} {(await r.text())[:200]}")
            rv = str(((await r.json()).get("metadata") or {}).get("resourceVersion") or "")
        params = {**selector, "watch": "1", "resourceVersion": rv, "timeoutSeconds": str(WATCH_SECONDS)}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(url, params=params, headers=self.headers, timeout=timeout) as r:
            if r.status != 200:
                raise RuntimeError(f"watch {url}: {r.status} {(await r.text())[:200]}")
            self.opened.set_result(None)
            buffer = b""
            reports = self.spec.reports
            async for chunk in r.content.iter_any():
                now = time.monotonic()
                buffer += chunk
                while True:
                    line, newline, rest = buffer.partition(b"\n")
                    if not newline:
                        break
                    buffer = rest
                    if line.strip():
                        self.facts.observe(now, orjson.loads(line), reports)
        self.facts.errors.append(f"watch {url} ended")

    def summary(self) -> tuple[int, int, int]:
        """(names seen, sum of ready levels reached, per-target reports seen)."""
        f = self.facts
        return len(f.seen), sum(len(v) for v in f.ready.values()), sum(len(v) for v in f.reported.values())


async def _serve(specs: list[StreamSpec], conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    streams = [_Stream(s) for s in specs]
    tasks = [asyncio.create_task(s.run()) for s in streams]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.opened for s in streams)), OPEN_TIMEOUT)
        conn.send(("ready", len(streams)))
    except Exception as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    try:
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "progress":
                conn.send(("progress", [s.summary() for s in streams]))
            elif command == "stop":
                conn.send(("facts", [s.facts for s in streams]))
                return
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        for s in streams:
            await s.session.close()


def worker(specs: list[StreamSpec], conn: Connection) -> None:
    try:
        import uvloop

        uvloop.run(_serve(specs, conn))
    except ImportError:
        asyncio.run(_serve(specs, conn))


class Observer:
    """The parent's handle on a worker process: `Observer(specs)` returns once every stream is open."""

    def __init__(self, specs: list[StreamSpec]) -> None:
        import multiprocessing

        self.specs = specs
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker, args=(specs, child), daemon=True)
        self.process.start()
        if not self.conn.poll(OPEN_TIMEOUT + 30):
            self.close()
            raise RuntimeError("the watch worker did not open its streams in time")
        kind, value = self.conn.recv()
        if kind != "ready":
            self.close()
            raise RuntimeError(f"the watch worker could not open its streams: {value}")

    def progress(self) -> list[tuple[int, int, int]]:
        self.conn.send("progress")
        return list(self._answer("progress"))

    def stop(self) -> list[Facts]:
        self.conn.send("stop")
        facts = list(self._answer("facts"))
        self.close()
        return facts

    def _answer(self, kind: str) -> Any:
        if not self.conn.poll(60):
            raise RuntimeError("the watch worker did not answer")
        got, value = self.conn.recv()
        if got != kind:
            raise RuntimeError(f"the watch worker answered {got!r}: {value}")
        return value

    def close(self) -> None:
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
