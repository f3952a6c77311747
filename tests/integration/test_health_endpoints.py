"""The hub's /livez, /readyz and /healthz as kube-apiserver answers them, including a failing check: one controller
of an in-process hub is stopped, so its check fails (the e2e tests cannot break a check of a separate process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tmc.server.hub import Hub, ServerConfig


async def _get(session: aiohttp.ClientSession, hub: Hub, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
    async with session.get(f"https://127.0.0.1:{hub.port}{path}", ssl=False) as response:
        return response.status, await response.text(), response


def test_hub_health_endpoints_match_kube_apiserver(tmp_path: Path) -> None:
    async def main() -> None:
        hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0))
        await hub.start()
        try:
            async with aiohttp.ClientSession() as session:
                status, body, response = await _get(session, hub, "/readyz")
                assert (status, body) == (200, "ok")
                assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
                assert response.headers["X-Content-Type-Options"] == "nosniff"

                status, body, _ = await _get(session, hub, "/readyz?verbose")
                lines = body.splitlines()
                assert status == 200 and body.endswith("\n")
                assert lines[:3] == ["[+]ping ok", "[+]storage ok", "[+]watch-cache ok"]
                controllers = [f"[+]controller-{c.name} ok" for c in hub.controllers]
                assert lines[3:] == [*controllers, "[+]startup ok", "[+]shutdown ok", "readyz check passed"]
                for endpoint in ("livez", "healthz"):
                    status, body, _ = await _get(session, hub, f"/{endpoint}?verbose")
                    assert (status, body) == (200, f"[+]ping ok\n[+]storage ok\n{endpoint} check passed\n")
                assert (await _get(session, hub, "/readyz/watch-cache"))[:2] == (200, "ok")
                assert (await _get(session, hub, "/livez/ping"))[:2] == (200, "ok")
                assert (await _get(session, hub, "/readyz/etcd"))[:2] == (404, "404 page not found\n")

                broken = hub.controllers[0]
                await broken.stop()
                name = f"controller-{broken.name}"
                status, body, _ = await _get(session, hub, "/readyz")
                assert status == 500
                assert f"[-]{name} failed: reason withheld\n" in body and body.endswith("readyz check failed\n")
                assert "[+]storage ok\n" in body
                # Verbose or not, a failure lists every check.
                assert (await _get(session, hub, "/readyz?verbose"))[:2] == (await _get(session, hub, "/readyz"))[:2]
                assert (await _get(session, hub, f"/readyz/{name}"))[:2] == (
                    500,
                    "internal server error: not running\n",
                )
                status, body, _ = await _get(session, hub, f"/readyz?exclude={name}&verbose")
                assert status == 200 and f"[+]{name} excluded: ok\n" in body
                assert (await _get(session, hub, "/livez"))[:2] == (200, "ok")  # liveness is not readiness
        finally:
            await hub.stop()

    asyncio.run(main())
