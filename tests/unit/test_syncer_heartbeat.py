"""The syncer's heartbeat against an in-process hub and an in-process simulated member cluster: it heartbeats with the
cluster's capacity, pauses while the cluster does not answer (its outage switch), and resumes when it answers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tmc.apiserver.app import Hub, ServerConfig
from tmc.sim.cluster import SimCluster, SimConfig
from tmc.syncer.client import KubeClient, load_kubeconfig
from tmc.syncer.heartbeat import Heartbeat, ensure_sync_target, sync_target_path

T = TypeVar("T")


async def until(probe: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_heartbeats_pause_while_the_member_cluster_does_not_answer(tmp_path: Path) -> None:
    async def main() -> None:
        hub = Hub(ServerConfig(data_dir=str(tmp_path / "hub"), secure_port=0))
        await hub.start()
        sim = SimCluster(SimConfig(name="m1", data_dir=str(tmp_path / "sims"), nodes=2, node_cpu="4"))
        await sim.start()
        hub_config = load_kubeconfig(hub.kubeconfig_path)
        hub_client = KubeClient(hub_config, base_url=hub_config.base_url)
        down = KubeClient(load_kubeconfig(sim.kubeconfig_path), timeout=0.5)
        task: asyncio.Task[None] | None = None
        try:
            target = await ensure_sync_target(hub_client, "root", "m1", {"region": "test"})
            beat = Heartbeat(
                hub_client, down, "root", "m1", target["metadata"]["uid"], 0.1, lambda: (0, 0, 0), lambda: (True, "")
            )
            task = asyncio.create_task(beat.run())

            status: dict[str, Any] = {}

            async def read() -> dict[str, Any]:
                nonlocal status
                status = (await hub_client.get(sync_target_path("root", "m1"))).get("status") or {}
                return status

            async def polled(check: Callable[[dict[str, Any]], bool], what: str) -> None:
                async def loop() -> None:
                    while not check(await read()):
                        await asyncio.sleep(0.02)

                await asyncio.wait_for(loop(), 10)

            await polled(lambda s: bool(s.get("lastSyncerHeartbeatTime")), "a first heartbeat")
            assert status["capacity"]["cpu"] == "8", status  # two nodes of 4 CPUs

            # The cluster stops answering: the heartbeat pauses and says why.
            with open(sim.outage_path, "w"):
                pass
            problem = await until(beat.downstream_problem, "the syncer to notice")
            assert problem.startswith("member cluster not answering since "), problem
            stamp_during = (await read())["lastSyncerHeartbeatTime"]
            # Several periods pass (the retry runs every second) without a heartbeat reaching the hub.
            await until(lambda: beat.age() > 2.5, "2.5 s without a heartbeat")
            assert (await read())["lastSyncerHeartbeatTime"] == stamp_during

            # It answers again: heartbeats resume.
            os.remove(sim.outage_path)
            await until(lambda: beat.downstream_problem() is None, "the syncer to notice the cluster is back")
            await until(lambda: 0 <= beat.age() < 1.0, "a fresh heartbeat")
            await polled(lambda s: s["lastSyncerHeartbeatTime"] != stamp_during, "a newer heartbeat on the hub")
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await hub_client.close()
            await down.close()
            if os.path.exists(sim.outage_path):
                os.remove(sim.outage_path)
            await sim.stop()
            await hub.stop()

    asyncio.run(main())
