"""Issue 9: connections are bounded (header and idle timeouts, in-flight limits), bodies are parsed within limits and
without stalling the hub, and malformed input gets a 4xx Status. Each test runs an in-process hub on port 0 with
small limits and talks to it over raw TLS sockets, so it sees exactly what a client sees."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tmc.server.hub import Hub, ServerConfig

CMS = "/clusters/root/api/v1/namespaces/default/configmaps"
MUTATING_INFLIGHT = 'apiserver_current_inflight_requests{request_kind="mutating"}'


class Client:
    def __init__(self, hub: Hub, ctx: ssl.SSLContext) -> None:
        self.hub = hub
        self.ctx = ctx
        self.token = hub.identity.admin_token

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.hub.port, ssl=self.ctx)

    def head(self, method: str, path: str, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Authorization: Bearer {self.token}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def response(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
        status_line = await reader.readline()
        assert status_line, "connection closed without a response"
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = b""
            while (size := int((await reader.readline()).strip(), 16)) > 0:
                body += await reader.readexactly(size)
                await reader.readline()
            await reader.readline()
        return status, headers, orjson.loads(body) if body.startswith(b"{") else body

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        reader, writer = await self.connect()
        try:
            writer.write(self.head(method, path, headers, len(body) if body or method != "GET" else None) + body)
            return await self.response(reader)
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def running_hub(tmp_path: Any, **limits: Any) -> AsyncIterator[Client]:
    hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0, **limits))
    await hub.start()
    ctx = ssl.create_default_context(cafile=os.path.join(str(tmp_path), "pki", "ca.crt"))
    try:
        yield Client(hub, ctx)
    finally:
        await hub.stop()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the hub closes the connection; fails if it is still open after `seconds`."""
    start = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), seconds)
    except (ConnectionResetError, ssl.SSLError):
        data = b""
    assert data == b"", data
    return time.monotonic() - start


def assert_status(status: int, body: Any, code: int, reason: str | None = None) -> None:
    assert status == code, body
    assert isinstance(body, dict) and body["kind"] == "Status" and body["code"] == code, body
    assert body["message"], body
    if reason is not None:
        assert body["reason"] == reason, body


def configmap(name: str, data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_slowloris_connection_is_closed_within_the_header_timeout(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path, request_header_timeout=1.0, idle_timeout=30.0) as c:
            reader, writer = await c.connect()

            async def dribble() -> None:
                for byte in b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100:
                    writer.write(bytes([byte]))
                    await asyncio.sleep(0.1)

            sender = asyncio.create_task(dribble())
            try:
                assert await closed_within(reader, 3.0) < 2.0
            finally:
                sender.cancel()
                writer.close()

    asyncio.run(main())


def test_silent_connections_are_closed_within_the_header_timeout(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path, request_header_timeout=1.0, idle_timeout=30.0) as c:
            # TCP only: the TLS handshake never starts.
            raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", c.hub.port)
            # TLS handshake done, no request.
            tls_reader, tls_writer = await c.connect()
            try:
                times = await asyncio.gather(closed_within(raw_reader, 3.0), closed_within(tls_reader, 3.0))
                assert max(times) < 2.0, times
                # A connection that is not silent is unaffected.
                status, _, _ = await c.request("GET", "/readyz")
                assert status == 200
            finally:
                raw_writer.close()
                tls_writer.close()

    asyncio.run(main())


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path, request_header_timeout=10.0, idle_timeout=1.0) as c:
            reader, writer = await c.connect()
            writer.write(c.head("GET", CMS))
            status, headers, _ = await c.response(reader)
            assert status == 200 and headers.get("connection", "").lower() != "close"
            try:
                assert 0.5 < await closed_within(reader, 3.0) < 2.0
            finally:
                writer.close()

    asyncio.run(main())


def test_mutating_requests_over_the_inflight_limit_get_429(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path, max_mutating_requests_inflight=2, max_requests_inflight=1) as c:
            body = orjson.dumps(configmap("held-{}", {"a": "1"}))
            held = []
            # Two creates whose bodies arrive slowly stay in flight until their last byte is sent.
            for i in range(2):
                b = body.replace(b"{}", str(i).encode())
                reader, writer = await c.connect()
                writer.write(c.head("POST", CMS, {"Content-Type": "application/json"}, len(b)) + b[:10])
                held.append((reader, writer, b))
            deadline = time.monotonic() + 5
            while True:
                _, _, metrics = await c.request("GET", "/metrics")
                if f"{MUTATING_INFLIGHT} 2.0".encode() in metrics:
                    break
                assert time.monotonic() < deadline, "the held creates never became in flight"
                await asyncio.sleep(0.02)
            status, headers, answer = await c.request("POST", CMS, orjson.dumps(configmap("third", {})))
            assert_status(status, answer, 429, "TooManyRequests")
            assert headers["retry-after"] == "1" and answer["details"]["retryAfterSeconds"] == 1
            # Read-only requests have their own limit, and a watch is not counted against it.
            watch_reader, watch_writer = await c.connect()
            watch_writer.write(c.head("GET", CMS + "?watch=1"))
            assert (await watch_reader.readline()).startswith(b"HTTP/1.1 200")
            status, _, _ = await asyncio.wait_for(c.request("GET", CMS), 5)
            assert status == 200
            for reader, writer, b in held:
                writer.write(b[10:])
                status, _, _ = await c.response(reader)
                assert status == 201
                writer.close()
            watch_writer.close()
            status, _, _ = await c.request("POST", CMS, orjson.dumps(configmap("third", {})))
            assert status == 201

    asyncio.run(main())


def _yaml_configmap(name: str, size: int) -> bytes:
    # Many keys: the slowest kind of YAML to parse per byte, about 400 ms for 3 MB even with libyaml.
    head = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n"
    line = "x" * 70
    return (head + "".join(f"  k{i}: {line}\n" for i in range(size // 80))).encode()


def test_a_large_yaml_body_does_not_stall_other_requests(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path) as c:
            raw = _yaml_configmap("big", 3_000_000)
            reader, writer = await c.connect()
            writer.write(c.head("POST", CMS, {"Content-Type": "application/yaml"}, len(raw)) + raw)
            await writer.drain()
            yaml_answer = asyncio.create_task(c.response(reader))
            # Sent after the whole upload: a hub parsing on its event loop answers none of them before the YAML.
            for _ in range(5):
                status, _, _ = await asyncio.wait_for(c.request("GET", CMS), 10)
                assert status == 200
                assert not yaml_answer.done(), "the YAML create finished first; the GETs proved nothing"
            status, _, body = await asyncio.wait_for(yaml_answer, 30)
            # Once parsed, the ConfigMap is over its 1 MiB data limit (422); what matters is that it was parsed.
            assert status in (201, 413, 422), body
            writer.close()

    asyncio.run(main())


def test_yaml_alias_bomb_is_rejected_quickly(tmp_path: Any) -> None:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol}", "a: &a [lol, lol, lol, lol, lol, lol]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    raw = ("\n".join(lines) + "\n").encode()

    async def main() -> None:
        async with running_hub(tmp_path) as c:
            start = time.monotonic()
            status, _, body = await c.request("POST", CMS, raw, {"Content-Type": "application/yaml"})
            assert_status(status, body, 400, "BadRequest")
            assert "aliases" in body["message"]
            assert time.monotonic() - start < 2.0

    asyncio.run(main())


def test_deeply_nested_bodies_are_rejected_with_400(tmp_path: Any) -> None:
    depth = 1000
    nested_json = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep","annotations":' + b"[" * depth
    nested_json += b"]" * depth + b"}}"
    nested_yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  labels:\n"
    nested_yaml += b"".join(b"  " * (i + 2) + b"k:\n" for i in range(300))
    patch = b'{"metadata":{"annotations":{"a":' + b'{"b":' * 600 + b"1" + b"}" * 600 + b"}}}"

    async def main() -> None:
        async with running_hub(tmp_path) as c:
            for raw, ctype in ((nested_json, "application/json"), (nested_yaml, "application/yaml")):
                status, _, body = await c.request("POST", CMS, raw, {"Content-Type": ctype})
                assert_status(status, body, 400, "BadRequest")
                assert "nested deeper" in body["message"], body
            status, _, _ = await c.request("POST", CMS, orjson.dumps(configmap("target", {})))
            assert status == 201
            headers = {"Content-Type": "application/merge-patch+json"}
            status, _, body = await c.request("PATCH", CMS + "/target", patch, headers)
            assert_status(status, body, 400, "BadRequest")
            options = b'{"kind":"DeleteOptions","preconditions":{"uid":' + b"[" * depth + b"]" * depth + b"}}"
            status, _, body = await c.request("DELETE", CMS + "/target", options)
            assert_status(status, body, 400, "BadRequest")
            assert "nested deeper" in body["message"], body
            status, _, _ = await c.request("GET", CMS + "/target")
            assert status == 200

    asyncio.run(main())


def test_content_encoding(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path) as c:
            json_headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            status, _, body = await c.request(
                "POST", CMS, gzip.compress(orjson.dumps(configmap("gz", {}))), json_headers
            )
            assert status == 201, body
            status, _, body = await c.request("POST", CMS, orjson.dumps(configmap("plain", {})), json_headers)
            assert_status(status, body, 400, "BadRequest")
            # 64 MB of zeros in 64 KB: decoded, it is over the body limit, and decoding stops there.
            bomb = gzip.compress(b" " * 64_000_000, compresslevel=9)
            status, _, body = await c.request("POST", CMS, bomb, json_headers)
            assert_status(status, body, 413)
            for encoding in ("br", "zstd", "compress"):
                headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
                status, _, body = await c.request("POST", CMS, orjson.dumps(configmap("enc", {})), headers)
                assert_status(status, body, 415, "UnsupportedMediaType")

    asyncio.run(main())


def test_oversized_request_head_gets_a_status(tmp_path: Any) -> None:
    async def main() -> None:
        async with running_hub(tmp_path) as c:
            status, _, body = await c.request("GET", CMS, headers={"X-Big": "a" * 40_000})
            assert_status(status, body, 431)
            status, _, body = await c.request("GET", CMS + "?labelSelector=" + "a" * 40_000)
            assert_status(status, body, 431)
            reader, writer = await c.connect()
            writer.write(b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n")
            status, _, body = await c.response(reader)
            assert_status(status, body, 400)
            writer.close()

    asyncio.run(main())


@pytest.mark.parametrize("events", [2000])
def test_watch_backlog_replay_gives_other_work_a_turn(tmp_path: Any, events: int) -> None:
    async def main() -> None:
        async with running_hub(tmp_path) as c:
            store = c.hub.store
            assert store is not None
            start = store.current_rev
            key = "/registry/core/configmaps/root/default/"
            await asyncio.gather(*(store.create(f"{key}cm{i}", configmap(f"cm{i}", {})) for i in range(events)))
            turns = 0
            replaying = True

            async def other_work() -> None:
                nonlocal turns
                while replaying:
                    turns += 1
                    await asyncio.sleep(0)

            reader, writer = await c.connect()
            writer.write(c.head("GET", f"{CMS}?watch=1&resourceVersion={start}"))
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            ticker = asyncio.create_task(other_work())
            # The hub and this client share the event loop: a replay that never yields runs start to end before the
            # ticker gets a second turn.
            seen = 0
            turns_mid_replay = 0
            while seen < events:
                line = await reader.readline()
                if line.startswith(b'{"type"'):
                    seen += 1
                    if seen == events // 2:
                        turns_mid_replay = turns
            replaying = False
            await ticker
            writer.close()
            assert turns_mid_replay > 1, turns_mid_replay

    asyncio.run(main())
