"""`kubectl tmc rollout` against an in-process hub (real HTTPS API, the real canary controller running in real
time) whose Deployments are reported Ready as the syncers would report them: get, list, pause, resume, promote,
abort, retry, promote --full and status, each judged by what the command prints and what the rollout does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from tests.integration.canary_env import DEPLOYMENTS, ISTIO, NS, OPTS, WS, canary, report, setup
from tmc.api.canary import CANARY_DEPLOYMENTS
from tmc.cli.plugin.main import cli
from tmc.server.hub import Hub, ServerConfig

T = TypeVar("T")
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]


class Running:
    """A hub serving from a background thread's event loop, with the clusters' reports written every 50 ms."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0))
        self.kubeconfig = str(tmp_path / "admin.kubeconfig")
        self.reporter: asyncio.Task[None] | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _report(self) -> None:
        while True:
            await report(self.hub.store, self.hub.service)
            await asyncio.sleep(0.05)

    async def start(self) -> None:
        await self.hub.start()
        await setup(self.hub.service, self.hub.registry)
        await self.hub.service.create(CANARY_DEPLOYMENTS, WS, NS, canary(ISTIO, STEPS), OPTS)
        self.reporter = asyncio.create_task(self._report())

    async def stop(self) -> None:
        if self.reporter is not None:
            self.reporter.cancel()
        await self.hub.stop()

    def status(self) -> dict[str, Any]:
        entry = self.hub.store.get(CANARY_DEPLOYMENTS.key(WS, NS, "web"))
        assert entry is not None
        return dict(entry.obj.get("status") or {})

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if done(st):
                return st
            time.sleep(0.05)
        raise AssertionError(f"not reached within {timeout}s: {self.status()}")

    def set_image(self, image: str) -> None:
        async def change() -> None:
            entry = self.hub.store.get(DEPLOYMENTS.key(WS, NS, "web"))
            assert entry is not None
            obj = {**entry.obj, "metadata": {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}}
            obj["spec"] = {**obj["spec"], "template": {**obj["spec"]["template"]}}
            obj["spec"]["template"]["spec"] = {"containers": [{"name": "web", "image": image}]}
            await self.hub.service.update(DEPLOYMENTS, WS, NS, "web", obj, OPTS)

        self.call(change())


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    r.call(r.start())
    try:
        yield r
    finally:
        r.call(r.stop())
        r.loop.call_soon_threadsafe(r.loop.stop)
        r.thread.join(10)


def tmc(r: Running, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-n", NS, "--kubeconfig", r.kubeconfig])


def phase(name: str, reason: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda st: st.get("phase") == name and (reason is None or st.get("pauseReason") == reason)


def test_rollout_commands_drive_a_canary(running: Running) -> None:
    r = running
    r.until(phase("Succeeded"))
    assert tmc(r, "rollout", "status", "web", "--timeout", "5s").exit_code == 0
    r.set_image("web:2")
    r.until(phase("Paused", "PauseStep"))

    out = tmc(r, "rollout", "get", "web")
    assert out.exit_code == 0, out.output
    assert "Paused (PauseStep)" in out.output and "canary 20, stable 80" in out.output
    assert "eu-1  weight 20  canary 2/2 ready  stable 2/2 ready" in out.output
    listed = tmc(r, "rollout", "list")
    assert listed.output.split("\n")[0].split() == ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]
    assert listed.output.split("\n")[1].split()[:4] == ["web", "Paused", "1", "20"]

    assert tmc(r, "rollout", "promote", "web").output.strip() == "canarydeployment.tmc.kcp.io/web promoted"
    r.until(lambda st: st.get("weight") == 60 and st.get("pauseReason") == "PauseStep")
    assert tmc(r, "rollout", "pause", "web").exit_code == 0
    r.until(phase("Paused", "Manual"))
    assert tmc(r, "rollout", "resume", "web").exit_code == 0
    r.until(phase("Paused", "PauseStep"))

    assert tmc(r, "rollout", "abort", "web").exit_code == 0
    st = r.until(phase("RolledBack"))
    assert st["weight"] == 0
    failed = tmc(r, "rollout", "status", "web", "--timeout", "5s")
    assert failed.exit_code == 1 and "rolled back" in failed.output
    again = tmc(r, "rollout", "abort", "web")
    assert again.exit_code == 1 and "no canary in progress" in again.output

    assert tmc(r, "rollout", "retry", "web").exit_code == 0
    r.until(lambda st: st.get("weight") == 20 and st.get("phase") == "Paused")
    assert tmc(r, "rollout", "promote", "web", "--full").output.strip() == (
        "canarydeployment.tmc.kcp.io/web fully promoted"
    )
    done = tmc(r, "rollout", "status", "web", "--timeout", "20s")
    assert done.exit_code == 0, done.output
    assert r.status()["stableRevision"] == st["canaryRevision"]

    missing = tmc(r, "rollout", "get", "nope")
    assert missing.exit_code == 1 and 'canarydeployment "nope" not found' in missing.output
