"""The same-run baseline: a minimal aiohttp app over the hub's TLS setup, on the same event loop (uvloop).

* any GET path answers a small pre-encoded JSON body (the "hello-world" rate the hub's GET is compared with);
* any POST reads its body (up to 4 MiB) and answers a small 415, as the hub does for a body it refuses;
* GET /blob/<n> answers a pre-built JSON body of about n bytes, so a LIST response of the same size can be compared
  with pure transfer of those bytes over the same TLS connection.

It uses `tmc.apiserver.certs.ensure_identity` and `ssl_context`, access logging off, as the hub does.

Run: python -m benchmarks.hello_server --data-dir DIR --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import functools

import orjson
from aiohttp import web

from tmc.apiserver import certs

HELLO = orjson.dumps({"message": "hello, world"})


@functools.lru_cache(maxsize=8)
def _blob(size: int) -> bytes:
    item = b'{"metadata":{"name":"x"},"data":{"k":"' + b"v" * 200 + b'"}}'
    count = max(1, size // (len(item) + 1))
    return b'{"kind":"List","items":[' + b",".join([item] * count) + b"]}"


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


async def blob(request: web.Request) -> web.Response:
    size = min(int(request.match_info["size"]), 64 * 1024 * 1024)
    return web.Response(body=_blob(size), content_type="application/json")


async def sink(request: web.Request) -> web.Response:
    """Any POST: read the body, answer 415 (the bytes-moved-only floor for the hub's upload benchmark)."""
    await request.read()
    return web.Response(body=HELLO, status=415, content_type="application/json")


async def serve(data_dir: str, port: int) -> None:
    identity = certs.ensure_identity(data_dir, ["127.0.0.1"])
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/blob/{size:[0-9]+}", blob)
    app.router.add_get("/{tail:.*}", hello)
    app.router.add_post("/{tail:.*}", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=certs.ssl_context(identity), backlog=1024)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.data_dir, args.port))
    except ImportError:
        asyncio.run(serve(args.data_dir, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
