"""A watch whose client goes away ends on the hub without waiting for an event or bookmark to fail to send."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from typing import Any

import aiohttp
import pytest

from tmc.server.hub import Hub, ServerConfig

CONFIGMAP_WATCHERS = 'apiserver_registered_watchers{group="",kind="ConfigMap",version="v1"}'
STORAGE_WATCHERS = "tmc_storage_watchers"
DEADLINE = 3.0  # the hub checks its watch connections every second


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("syncer_view", [False, True], ids=["api", "syncer-virtual-workspace"])
def test_a_watch_ends_when_its_client_disconnects(tmp_path: Any, syncer_view: bool) -> None:
    async def main() -> None:
        # Bookmarks every hour, so nothing but the disconnect itself can end the watch during the test.
        hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0, bookmark_interval=3600.0))
        await hub.start()
        ctx = ssl.create_default_context(cafile=os.path.join(str(tmp_path), "pki", "ca.crt"))
        base = f"https://127.0.0.1:{hub.port}"
        headers = {"Authorization": f"Bearer {hub.identity.admin_token}"}

        def session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(ssl=ctx), headers=headers)

        try:
            async with session() as s:

                async def gauges() -> tuple[float, float]:
                    async with s.get("/metrics") as r:
                        text = await r.text()
                    return _gauge(text, CONFIGMAP_WATCHERS), _gauge(text, STORAGE_WATCHERS)

                async def wait_for(want: tuple[float, float], what: str) -> None:
                    deadline = time.monotonic() + DEADLINE
                    while (got := await gauges()) != want:
                        assert time.monotonic() < deadline, f"{what}: watcher gauges {got}, want {want}"
                        await asyncio.sleep(0.05)

                url = "/clusters/root/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true"
                if syncer_view:
                    synctargets = "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets"
                    async with s.post(synctargets, json={"metadata": {"name": "t0"}}) as r:
                        assert r.status == 201, await r.text()
                        uid = (await r.json())["metadata"]["uid"]
                    url = f"/services/syncer/root/t0/{uid}/clusters/*/api/v1/configmaps?watch=1&allowWatchBookmarks=1"
                api_before, storage_before = await gauges()

                watcher = session()
                response = await watcher.get(url)
                assert response.status == 200, await response.text()
                await wait_for((api_before + 1, storage_before + 1), "watch opened")
                response.close()
                await watcher.close()
                await wait_for((api_before, storage_before), "client disconnected")
        finally:
            await hub.stop()

    asyncio.run(main())
