"""A hub that was not running cannot have received heartbeats: its own stalls and restarts do not count against a
SyncTarget's heartbeat, so a paused or restarted hub does not turn healthy targets NotReady (and move workloads)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

from tests.unit._scheduling_env import Env, rfc3339
from tmc.controllers.synctarget.heartbeat import HeartbeatController, heartbeat_condition
from tmc.protocol.keys import sync_target_key
from tmc.runtime.loopwatch import LoopWatch
from tmc.syncer.agent import Syncer, SyncerConfig
from tmc.syncer.engine import Engine
from tmc.syncer.namespaces import TargetIdentity
from tmc.syncer.resources import SyncedResource


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_loop_watch_records_stalls_and_ignores_scheduling_noise() -> None:
    wall, mono = FakeTime(), FakeTime()
    watch = LoopWatch(interval=0.25, clock=wall, monotonic=mono)
    for step in (0.25, 0.5, 1.0):  # late ticks, but not stalls
        wall.now += step
        mono.now += step
        watch.check()
    assert not watch.stalls
    start = wall.now
    wall.now += 60.25
    mono.now += 60.25  # SIGSTOP for 60 s
    assert watch.stalled_between(start - 100, wall.now) == 60.0
    assert watch.stalled_between(start + 30, wall.now) == 30.25  # the stall began a tick after the last one
    assert watch.stalled_between(start - 100, start) == 0.0
    assert watch.stalled_between(wall.now, wall.now + 10) == 0.0


def test_heartbeat_condition_does_not_count_excused_time() -> None:
    beat = 1_000_000.0
    stale, _ = heartbeat_condition(rfc3339(beat), beat + 70, 10.0)
    assert stale["status"] == "False"
    healthy, expires = heartbeat_condition(rfc3339(beat), beat + 70, 10.0, excused=65.0)
    assert healthy["status"] == "True" and expires == beat + 75


def reconciles() -> float:
    """Finished reconciles of the heartbeat controller (it usually asks to look again after a while)."""
    return sum(
        REGISTRY.get_sample_value(
            "tmc_controller_reconciles_total", {"controller": "synctarget-heartbeat", "result": result}
        )
        or 0.0
        for result in ("success", "requeue_after")
    )


def heartbeat_controller(env: Env) -> HeartbeatController:
    return next(c for c in env.controllers if isinstance(c, HeartbeatController))


def test_a_stalled_hub_keeps_healthy_targets_ready_for_the_time_it_was_stalled(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path, heartbeat_threshold=1.0) as env:
            await env.target("eu-1")
            beat_done = time.monotonic()
            before = reconciles()
            time.sleep(3.0)  # the scenario: the hub's event loop does not run for 3 s (as under SIGSTOP)
            # The expiry timer fires first thing after the stall; that reconcile must not flip Ready.
            await env.until(lambda: reconciles() > before, "the heartbeat controller to look again")
            assert env.ready("eu-1") is True
            assert heartbeat_controller(env).loop_watch.stalls
            # The excuse is the stall, no more: with no new heartbeat the target does turn NotReady.
            await env.until(lambda: env.ready("eu-1") is False, "NotReady once the excused time is used up")
            assert time.monotonic() - beat_done < 6.0

    asyncio.run(main())


def test_a_restarted_hub_counts_stored_healthy_heartbeats_from_its_start(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path, heartbeat_threshold=1.0) as env:
            await env.target("healthy")
            await env.target("sick", ready=False)
            old = heartbeat_controller(env)
            await old.stop()
            # While the hub is down the stored heartbeat ages; it was healthy when the hub went away.
            status: dict[str, Any] = {"lastSyncerHeartbeatTime": rfc3339(time.time() - 600)}
            await env.heartbeat("healthy", extra=status)
            fresh = HeartbeatController(env.store, env.registry, env.service, heartbeat_threshold=1.0)
            before = reconciles()
            await fresh.start()
            try:
                started = time.monotonic()
                await env.until(lambda: reconciles() >= before + 2, "both targets looked at after the restart")
                assert env.ready("healthy") is True  # one threshold from the start for its syncer to come back
                assert env.ready("sick") is False  # an unhealthy target is not excused
                await env.until(lambda: env.ready("healthy") is False, "NotReady a threshold after the start")
                assert time.monotonic() - started >= 0.9
                # A heartbeat written after the start is judged as it is: a stale one is stale at once.
                await env.heartbeat("healthy")
                await env.until(lambda: env.ready("healthy") is True, "Ready again")
                await env.heartbeat("healthy", ready=False)
                await env.until(lambda: env.ready("healthy") is False, "a stale heartbeat is not excused")
            finally:
                await fresh.stop()

    asyncio.run(main())


def kubeconfig(path: Path, server: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_hub_watches_reconnecting_do_not_make_the_syncer_not_ready_on_the_hub(tmp_path: Path) -> None:
    async def main() -> None:
        config = SyncerConfig(
            sync_target_name="eu-1",
            kubeconfig=kubeconfig(tmp_path / "hub.kubeconfig", "http://127.0.0.1:1/clusters/root"),
            downstream_kubeconfig=kubeconfig(tmp_path / "member.kubeconfig", "http://127.0.0.1:2"),
        )
        syncer = Syncer(config)
        identity = TargetIdentity("root", "eu-1", "uid-1", sync_target_key("root", "eu-1"))
        configmaps = SyncedResource("", "v1", "configmaps", "ConfigMap")
        syncer.engine = Engine(identity, syncer.hub, syncer.hub, syncer.down, [configmaps])
        syncer.informers = syncer.engine.informers(lambda informer, connected: None)
        for informer in syncer.informers:
            informer.synced.set()
            informer.connected = True
        assert syncer.readiness() == (True, "syncing")
        for informer in syncer.engine.up.values():
            informer.connected = False  # the hub was stopped: its watches are reconnecting
        ready, message = syncer.readiness()
        assert not ready and "not connected: hub/" in message  # /readyz says so
        assert syncer.syncer_ready() == (True, "syncing")  # but SyncerReady on the hub does not flip
        syncer.engine.downstream[configmaps.id].connected = False
        assert syncer.syncer_ready() == (False, "not connected: downstream/configmaps")
        await syncer.stop()

    asyncio.run(main())
