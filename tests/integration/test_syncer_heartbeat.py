"""The syncer's heartbeat against an in-process hub and an in-process simulated member cluster: it heartbeats with the
cluster's capacity and allocation (kept by watches, not lists), pauses while the cluster does not answer (its outage
switch), resumes within a period when it answers again, and backs off between failed rounds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import REGISTRY

from tmc.apimachinery.quantity import format_quantity
from tmc.client import ApiError, KubeClient, load_kubeconfig, sync_target_path
from tmc.server.hub import Hub, ServerConfig
from tmc.server.member import SimCluster, SimConfig
from tmc.syncer.heartbeat import (
    Heartbeat,
    RunningTotals,
    ensure_sync_target,
    retry_delay,
)
from tmc.syncer.metrics import RequestCounter

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


class Rig:
    """A hub, a simulated member cluster and a running Heartbeat (with its Node and Pod informers) for SyncTarget
    `name`; `status()` reads the SyncTarget's status as the hub has it."""

    def __init__(self, hub_client: KubeClient, down: KubeClient, sim: SimCluster, beat: Heartbeat) -> None:
        self.hub = hub_client
        self.down = down
        self.sim = sim
        self.beat = beat
        self.last: dict[str, Any] = {}

    async def status(self) -> dict[str, Any]:
        self.last = (await self.hub.get(sync_target_path("root", self.beat.name))).get("status") or {}
        return self.last

    async def polled(self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(await self.status()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last status {self.last}")
            await asyncio.sleep(0.02)

    def outage(self, on: bool) -> None:
        if on:
            with open(self.sim.outage_path, "w"):
                pass
        elif os.path.exists(self.sim.outage_path):
            os.remove(self.sim.outage_path)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, name: str, period: float, probe_timeout: float = 0.5) -> AsyncIterator[Rig]:
    hub = Hub(ServerConfig(data_dir=str(tmp_path / "hub"), secure_port=0))
    await hub.start()
    sim = SimCluster(SimConfig(name=name, data_dir=str(tmp_path / "sims"), nodes=2, node_cpu="4", ready_delay=0.1))
    await sim.start()
    hub_config = load_kubeconfig(hub.kubeconfig_path)
    hub_client = KubeClient(hub_config, base_url=hub_config.base_url)
    down_config = load_kubeconfig(sim.kubeconfig_path)
    down = KubeClient(down_config, timeout=probe_timeout, observe=RequestCounter(name, "downstream"))
    tasks: list[asyncio.Task[None]] = []
    try:
        target = await ensure_sync_target(hub_client, "root", name, {"region": "test"})
        uid = target["metadata"]["uid"]
        beat = Heartbeat(hub_client, down, "root", name, uid, period, lambda: (0, 0, 0), lambda: (True, ""))
        tasks = [asyncio.create_task(c) for c in (*(i.run() for i in beat.resources.informers), beat.run())]
        test_rig = Rig(hub_client, down, sim, beat)
        yield test_rig
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub_client.close()
        await down.close()
        if os.path.exists(sim.outage_path):
            os.remove(sim.outage_path)
        await sim.stop()
        await hub.stop()


def pod(name: str, containers: list[str], init: str = "", **spec: Any) -> dict[str, Any]:
    """A Pod whose containers request the given CPU (and 32Mi of memory each)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [
                {"name": f"c{i}", "image": "nginx", "resources": {"requests": {"cpu": cpu, "memory": "32Mi"}}}
                for i, cpu in enumerate(containers)
            ],
            **spec,
        },
    }
    if init:
        body["spec"]["initContainers"] = [
            {"name": "init", "image": "busybox", "resources": {"requests": {"cpu": init}}}
        ]
    return body


def requests_sent(cluster: str, method: str) -> float:
    labels = {"cluster": cluster, "endpoint": "downstream", "method": method, "code": "200"}
    return REGISTRY.get_sample_value("tmc_syncer_requests_total", labels) or 0.0


def test_heartbeats_pause_while_the_member_cluster_does_not_answer(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, "m1", 0.1) as r:
            beat = r.beat
            await r.polled(lambda s: bool(s.get("lastSyncerHeartbeatTime")), "a first heartbeat")
            assert r.last["capacity"]["cpu"] == "8", r.last  # two nodes of 4 CPUs

            # The cluster stops answering: the heartbeat pauses and says why.
            r.outage(True)
            problem = await until(beat.downstream_problem, "the syncer to notice")
            assert problem.startswith("member cluster not answering since "), problem
            stamp_during = (await r.status())["lastSyncerHeartbeatTime"]
            # Many periods pass without a heartbeat reaching the hub.
            await until(lambda: beat.age() > 2.5, "2.5 s without a heartbeat")
            assert (await r.status())["lastSyncerHeartbeatTime"] == stamp_during

            # It answers again: heartbeats resume.
            r.outage(False)
            await until(lambda: beat.downstream_problem() is None, "the syncer to notice the cluster is back")
            await until(lambda: 0 <= beat.age() < 1.0, "a fresh heartbeat")
            await r.polled(lambda s: s["lastSyncerHeartbeatTime"] != stamp_during, "a newer heartbeat on the hub")

    asyncio.run(main())


def test_capacity_and_allocation_follow_the_member_without_listing_every_period(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, "m-alloc", 0.1) as r:
            await r.polled(lambda s: bool(s.get("allocated")), "a heartbeat with the allocation")
            assert r.last["capacity"]["cpu"] == "8" and r.last["allocatable"]["cpu"] == "8", r.last
            assert r.last["allocated"] == {"pods": "0"}, r.last
            lists = requests_sent("m-alloc", "LIST")
            assert lists == 2, lists  # the Node and Pod informers' initial lists

            pods = "/api/v1/namespaces/default/pods"
            # Counted: the larger of the containers' sum (500m) and the init container (750m), kube's rule.
            await r.down.create(pods, pod("web", ["250m", "250m"], init="750m"))
            # Not counted once finished (restartPolicy Never: the simulated kubelet runs it to Succeeded).
            await r.down.create(pods, pod("once", ["1"], restartPolicy="Never"))
            # Not counted: never bound to a node.
            await r.down.create(pods, pod("nowhere", ["2"], nodeSelector={"no-such": "node"}))

            async def phase(name: str) -> str:
                return str(((await r.down.get(f"{pods}/{name}")).get("status") or {}).get("phase"))

            deadline = time.monotonic() + 10
            while await phase("once") != "Succeeded":
                assert time.monotonic() < deadline, "the run-to-completion pod never finished"
                await asyncio.sleep(0.05)
            want = {"cpu": "750m", "memory": "64Mi", "pods": "1"}
            await r.polled(lambda s: s.get("allocated") == want, f"allocated == {want}")

            await r.down.request("DELETE", f"{pods}/web")
            with contextlib.suppress(ApiError):
                await r.down.request("DELETE", f"{pods}/nowhere")
            await r.polled(lambda s: s.get("allocated") == {"pods": "0"}, "the deleted pod no longer allocated")

            # Dozens of heartbeats later, still no list: each period costs one probe GET, not a read of every pod.
            probes = requests_sent("m-alloc", "GET")
            await until(lambda: requests_sent("m-alloc", "GET") >= probes + 10, "ten more heartbeat rounds")
            assert requests_sent("m-alloc", "LIST") == lists
            # The pod cache holds only what the sums need, not whole pods.
            for cached in r.beat.resources.pods.cache.values():
                for container in cached["spec"]["containers"]:
                    assert set(container) == {"resources"}, cached

    asyncio.run(main())


def test_heartbeat_resumes_within_a_period_after_a_long_outage(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, "m-resume", 1.0) as r:
            beat = r.beat
            await r.polled(lambda s: bool(s.get("lastSyncerHeartbeatTime")), "a first heartbeat")
            r.outage(True)
            await until(beat.downstream_problem, "the syncer to notice")
            stamp_during = (await r.status())["lastSyncerHeartbeatTime"]
            # Long enough for an uncapped doubling back-off (1, 2, 4 s) to be waiting several seconds by now.
            await until(lambda: beat.age() > 6.0, "6 s without a heartbeat", timeout=15)
            r.outage(False)
            resumed = time.monotonic()
            await r.polled(lambda s: s["lastSyncerHeartbeatTime"] != stamp_during, "a heartbeat after the outage")
            # The back-off never exceeds the period (1 s), plus the outage switch's 0.2 s poll and the patch.
            assert time.monotonic() - resumed < 2.5, time.monotonic() - resumed

    asyncio.run(main())


def test_retry_delay_doubles_from_one_second_with_jitter_capped_at_the_period_and_5s() -> None:
    for _ in range(200):
        for failures, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
            delay = retry_delay(failures, 60.0)
            assert 0.8 * base <= delay <= 1.2 * base, (failures, delay)
        assert retry_delay(4, 60.0) == 5.0  # 8 s +-20 % is past the cap: a returning hub waits at most 5 s
        assert 3.2 <= retry_delay(3, 4.0) <= 4.0
        assert 0.8 <= retry_delay(1, 1.0) <= 1.0
        assert retry_delay(1000, 1.0) == 1.0
        assert retry_delay(1, 0.1) == 0.1
    assert len({retry_delay(3, 60.0) for _ in range(20)}) > 1  # jittered, so syncers do not retry in lockstep


def test_running_totals_return_exactly_to_a_fresh_sum_after_many_changes() -> None:
    totals = RunningTotals()
    totals.set("steady", {"cpu": 0.3, "memory": 2.0**20})
    for i in range(10_000):  # churn: pods come, change and go (floats would leave 0.30000000004 behind)
        totals.set(f"p{i % 7}", {"cpu": 0.1 * (i % 3 + 1), "nvidia.com/gpu": 1.0})
        if i % 5 == 0:
            totals.set(f"p{(i + 3) % 7}", None)
    for i in range(7):
        totals.set(f"p{i}", None)
    assert totals.totals() == {"cpu": 0.3, "memory": 2.0**20}  # the gpu nobody requests any more is gone
    assert len(totals) == 1
    assert {k: format_quantity(k, v) for k, v in totals.totals().items()} == {"cpu": "300m", "memory": "1Mi"}
