"""Closed-loop HTTP load: `wrk` (C, cheap on a 2-core machine) when available, else a Python aiohttp client
(also forced with TMC_BENCH_LOADGEN=python).

`ensure_wrk()` installs Debian's wrk with apt-get when it is missing and we are root. Requests are described by a
`Load` (method, path, body, optionally a generated unique name per request); the result counts responses by
expected/unexpected status and gives latency percentiles, the same for both generators.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp

WRK_MARK = "WRK_RESULT "


@dataclass(frozen=True)
class Load:
    method: str
    path: str
    body: str = ""
    expect: int = 200
    # With `count`, request i uses body.replace("@NAME@", f"{name_prefix}{i:05d}") and the run ends after `count`
    # answered requests (instead of after `duration`).
    count: int = 0
    name_prefix: str = ""
    content_type: str = "application/json"
    # With `count` and `objects`, "@OBJ@" in the path becomes f"{i % objects:02d}": writes spread over objects.
    objects: int = 0


@dataclass
class LoadResult:
    generator: str
    requests: int
    ok: int
    bad: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok_rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


_wrk_note: list[str] = []


def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and we are root. None means: use the Python client."""
    if os.environ.get("TMC_BENCH_LOADGEN") == "python":
        if not _wrk_note:
            _wrk_note.append(
                "TMC_BENCH_LOADGEN=python: the Python aiohttp client generated the HTTP load, so the HTTP numbers "
                "(the GET ratio in particular) are limited by the client as much as by the server"
            )
        return None
    found = shutil.which("wrk")
    if found or _wrk_note:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=180, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, timeout=180, check=False
        )
        found = shutil.which("wrk")
        if found:
            return found
    _wrk_note.append(
        "wrk is not installed (apt-get install wrk as root); the Python aiohttp client generated the load, so the "
        "HTTP numbers (the GET ratio in particular) are limited by the client as much as by the server"
    )
    return None


def generator_notes() -> list[str]:
    return list(_wrk_note)


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for the ASCII bodies used here


def _lua_script(load: Load, token: str) -> str:
    lines = [
        "local threads = {}",
        "function setup(thread) table.insert(threads, thread) end",
        "function init(args) ok = 0; bad = 0; sent = 0 end",
        f"wrk.method = {_lua_string(load.method)}",
        f"wrk.path = {_lua_string(load.path)}",
        f'wrk.headers["Authorization"] = {_lua_string("Bearer " + token)}',
        'wrk.headers["Accept"] = "application/json"',
    ]
    if load.body:
        lines += [
            f'wrk.headers["Content-Type"] = {_lua_string(load.content_type)}',
            f"wrk.body = {_lua_string(load.body)}",
        ]
    if load.count:
        # One wrk thread: names are unique per run. Requests after `count` are cheap GET /readyz (answer 200, ignored).
        # wrk calls request() once after init() on thread 0 to check the script; that call must not use up a name.
        lines += [
            f"local total = {load.count}",
            f"local body = {_lua_string(load.body)}",
            f"local path = {_lua_string(load.path)}",
            f"local objects = {load.objects}",
            "local checked = false",
            "function request()",
            "  if not checked then checked = true; return wrk.format('GET', '/readyz') end",
            "  if sent >= total then return wrk.format('GET', '/readyz') end",
            f"  local name = string.format('{load.name_prefix}%05d', sent)",
            "  sent = sent + 1",
            "  local p = path",
            "  if objects > 0 then p = (string.gsub(path, '@OBJ@', string.format('%02d', (sent - 1) % objects))) end",
            "  return wrk.format(nil, p, nil, (string.gsub(body, '@NAME@', name)))",
            "end",
            "function response(status, headers, body)",
            f"  if status == {load.expect} then ok = ok + 1 elseif status ~= 200 then bad = bad + 1 end",
            "  if ok + bad == total then io.write('WRK_DONE\\n'); io.flush(); wrk.thread:stop() end",
            "end",
        ]
    elif load.expect != 200 or load.method != "GET":
        lines += [
            "function response(status, headers, body)",
            f"  if status == {load.expect} then ok = ok + 1 else bad = bad + 1 end",
            "end",
        ]
    lines += [
        "function done(summary, latency, requests)",
        "  local o, b = 0, 0",
        "  for _, t in ipairs(threads) do o = o + t:get('ok'); b = b + t:get('bad') end",
        "  local e = summary.errors",
        f"  io.write(string.format('{WRK_MARK}"
        '{"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
        '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n\','
        " summary.requests, summary.duration, o, b, latency:percentile(50), latency:percentile(90),"
        " latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(
    wrk: str, base_url: str, token: str, load: Load, *, connections: int, duration: float, threads: int = 1
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="tmc-bench-", delete=False) as script:
        script.write(_lua_script(load, token))
    try:
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
        cmd += ["-s", script.name, base_url + load.path]
        stdout = _wrk_output(cmd, duration + 60)
    finally:
        os.unlink(script.name)
    line = next((x for x in stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {stdout[-2000:]}")
    d = json.loads(line[len(WRK_MARK) :])
    counted = load.count or load.expect != 200 or load.method != "GET"
    ok = d["ok"] if counted else d["requests"] - d["status"]
    bad = d["bad"] if counted else d["status"]
    errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    return LoadResult(
        "wrk",
        d["requests"],
        ok,
        bad,
        errors,
        d["duration_us"] / 1e6,
        d["p50_us"] / 1000,
        d["p90_us"] / 1000,
        d["p99_us"] / 1000,
        d["max_us"] / 1000,
    )


def _wrk_output(cmd: list[str], timeout: float) -> str:
    """wrk's output. wrk sleeps for its whole -d even when every thread has stopped; a counted run prints WRK_DONE
    when finished and we interrupt the sleep with SIGINT, after which wrk reports as usual."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("WRK_DONE"):
                process.send_signal(signal.SIGINT)
            if time.monotonic() > deadline:
                break
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return "".join(lines)


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _python_load(
    base_url: str, token: str, ssl_ctx: ssl.SSLContext, load: Load, connections: int, duration: float
) -> LoadResult:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if load.body:
        headers["Content-Type"] = load.content_type
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0, "errors": 0}
    numbers = itertools.count()
    deadline = time.perf_counter() + (duration if not load.count else 600.0)
    connector = aiohttp.TCPConnector(limit=connections, ssl=ssl_ctx)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                i = next(numbers)
                if load.count and i >= load.count:
                    return
                body = load.body.replace("@NAME@", f"{load.name_prefix}{i:05d}") if load.count else load.body
                path = load.path.replace("@OBJ@", f"{i % load.objects:02d}") if load.objects else load.path
                started = time.perf_counter()
                try:
                    async with session.request(load.method, path, data=body or None) as r:
                        await r.read()
                        counts["ok" if r.status == load.expect else "bad"] += 1
                except aiohttp.ClientError:
                    counts["errors"] += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        "python-aiohttp",
        len(latencies),
        counts["ok"],
        counts["bad"],
        counts["errors"],
        seconds,
        _pct(latencies, 0.5),
        _pct(latencies, 0.9),
        _pct(latencies, 0.99),
        latencies[-1] if latencies else 0.0,
    )


def run_load(
    base_url: str, token: str, ssl_ctx: ssl.SSLContext, load: Load, *, connections: int, duration: float
) -> LoadResult:
    """Closed loop with `connections` keep-alive connections for `duration` seconds (or `load.count` requests)."""
    wrk = ensure_wrk()
    if wrk is not None:
        return run_wrk(wrk, base_url, token, load, connections=connections, duration=duration)
    return asyncio.run(_python_load(base_url, token, ssl_ctx, load, connections, duration))
