"""The controller runtime's contract: what a reconcile's Result and errors do to its key, the manager's start order
around leader election, and its readiness checks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client import REGISTRY

from tmc.apimachinery import errors
from tmc.controllers.manager import ControllerManager
from tmc.controllers.runtime import Controller, Result, requeue
from tmc.storage.sqlite import SqliteStore


class Scripted(Controller):
    """Answers each reconcile of a key with the next scripted outcome: a Result, None, or an exception to raise."""

    prefix = "/registry/test/"

    def __init__(self, store: SqliteStore, name: str, script: list[object], leader: bool = True) -> None:
        self.name = name
        self.needs_leader_election = leader
        super().__init__(store)
        self.script = script
        self.seen: list[tuple[str, float]] = []

    async def reconcile(self, key: str) -> Result | None:
        self.seen.append((key, time.monotonic()))
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is None or isinstance(outcome, Result)
        return outcome


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def reconciles(name: str, result: str) -> float:
    return REGISTRY.get_sample_value("tmc_controller_reconciles_total", {"controller": name, "result": result}) or 0.0


def errors_of(name: str, error_type: str = "unknown") -> float:
    labels = {"controller": name, "error_type": error_type}
    return REGISTRY.get_sample_value("tmc_controller_errors_total", labels) or 0.0


async def with_store(tmp: Path, body: object) -> None:
    store = SqliteStore(str(tmp / "tmc.db"), compact_interval=0)
    await store.start()
    try:
        await body(store)  # type: ignore[operator]
    finally:
        await store.close()


def test_results_and_errors_decide_when_a_key_comes_back(tmp_path: Path) -> None:
    conflict = errors.conflict("configmaps", "a")
    gone = errors.not_found("configmaps", "a")
    script: list[object] = [requeue(0.05), conflict, gone, RuntimeError("boom"), None]

    async def body(store: SqliteStore) -> None:
        c = Scripted(store, "scripted-results", script)
        c.conflict_retry = 0.03
        manager = ControllerManager([c])
        await manager.start()
        try:
            c.queue.add("k")
            await until(lambda: len(c.seen) >= 3)  # the requeue and the conflict each bring it back
            await asyncio.sleep(0.2)
            assert len(c.seen) == 3, "a 404 ends the reconcile without a retry"
            gaps = [b[1] - a[1] for a, b in zip(c.seen, c.seen[1:], strict=False)]
            assert gaps[0] >= 0.045 and gaps[1] >= 0.025
            assert errors_of("scripted-results") == 0
            c.queue.add("k")
            await until(lambda: len(c.seen) >= 5)  # the error is retried with back-off, then succeeds
            assert errors_of("scripted-results") == 1
            assert reconciles("scripted-results", "error") == 1
            assert reconciles("scripted-results", "requeue_after") == 1
            assert reconciles("scripted-results", "requeue") == 1  # the conflict
            assert reconciles("scripted-results", "success") == 2  # the quiet 404 and the last one
            timed = REGISTRY.get_sample_value("workqueue_work_duration_seconds_count", {"name": "scripted-results"})
            assert timed == 5
            assert REGISTRY.get_sample_value("workqueue_retries_total", {"name": "scripted-results"}) == 1
        finally:
            await manager.stop()

    asyncio.run(with_store(tmp_path, body))


def test_leader_elected_controllers_start_only_once_the_process_leads(tmp_path: Path) -> None:
    class Gate:
        def __init__(self) -> None:
            self.open = asyncio.Event()
            self.released = False

        async def acquire(self) -> None:
            await self.open.wait()

        async def release(self) -> None:
            self.released = True

    async def body(store: SqliteStore) -> None:
        everywhere = Scripted(store, "scripted-everywhere", [], leader=False)
        leader_only = Scripted(store, "scripted-leader", [])
        gate = Gate()
        manager = ControllerManager([leader_only, everywhere], gate)
        starting = asyncio.create_task(manager.start())
        await until(everywhere.running)
        assert not leader_only.running()
        assert [c.name for c in manager.checks() if not c.ok] == ["controller-scripted-leader"]
        gate.open.set()
        await starting
        assert all(c.ok for c in manager.checks())
        await manager.stop()
        assert gate.released and not everywhere.running() and not leader_only.running()

    asyncio.run(with_store(tmp_path, body))


def test_a_controller_whose_worker_died_fails_its_readiness_check(tmp_path: Path) -> None:
    async def body(store: SqliteStore) -> None:
        c = Scripted(store, "scripted-dies", [])
        manager = ControllerManager([c])
        await manager.start()
        c._tasks[-1].cancel()
        await until(lambda: not c.running())
        assert [(k.name, k.ok, k.message) for k in manager.checks()] == [
            ("controller-scripted-dies", False, "not running")
        ]
        await manager.stop()

    asyncio.run(with_store(tmp_path, body))
