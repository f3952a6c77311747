"""Placement simulation latency over 1,000 SyncTargets (goal: p99 <= 200 ms per simulation).

A simulation is a server-side dry run of a Placement (docs/placement.md, "Simulating a Placement"): the hub's own
scheduler decides for the submitted Placement with the current targets and load, and explains every SyncTarget in
`status.candidates`. Measured in process, as the hub runs it: a SqliteStore, ObjectService and the scheduling
controllers (the same wiring as `tmc server`), 1,000 SyncTargets (one in 50 tainted), 200 existing Placements for
load, the hub's garbage-collector settings; then sequential dry runs through `ObjectService` (decode, defaults,
validation, the simulation) plus encoding the answer as JSON (about 1,000 candidate entries), which is what the API
server does next. HTTP transport is not included. Three cases: a create choosing 3 targets by Spread, a create
dividing replicas over every eligible target, and an update of an existing Placement (its current decisions kept
where still eligible).

Run alone: python -m benchmarks.bench_simulation
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from typing import Any

import orjson

from benchmarks.bench_scheduler import (
    LOCATION_RESOURCE,
    TARGETS,
    _create_placements,
    _decided,
    _start,
    _targets,
    _until,
)
from benchmarks.report import Row, row
from tmc.api.scheduling import PLACEMENTS
from tmc.controllers.placement.wiring import placement_controllers
from tmc.controllers.runtime import Controller
from tmc.registry.service import WriteOptions

GOAL = ("<=", 200.0)
THRESHOLDS = gc.get_threshold()
EXISTING = 200

CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "Spread, 3 of 1,000 SyncTargets",
        {"syncTargetSelector": {"matchLabels": {"tier": "gold"}}, "strategy": "Spread", "numberOfTargets": 3},
    ),
    (
        "Divided over every eligible SyncTarget",
        {"syncTargetSelector": {}, "replicaScheduling": {"type": "Divided", "dynamicWeight": "AvailableCapacity"}},
    ),
)


def _body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": name},
        "spec": {"locationResource": LOCATION_RESOURCE, "namespaceSelector": {}, **spec},
    }


async def _measure(call: Any, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = await call()
        orjson.dumps(answer)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _rows(name: str, times: list[float]) -> list[Row]:
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    note = f"{len(times)} sequential dry runs; p50 {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms"
    return [row(f"placement simulation, p99: {name}", p99, "ms", goal=GOAL, note=note)]


async def _run(tmp: str, samples: int) -> list[Row]:
    store, registry, service = await _start(tmp)
    controllers: list[Controller] = placement_controllers(store, registry, service)
    try:
        await _targets(service)
        await _create_placements(service, 0, EXISTING)
        for c in controllers:
            await c.start()
        await _until(_decided(store, 0, EXISTING), 120)
        # The hub's collector settings (server/process.py): without them the full collections walking every stored
        # object, not the simulation, make the tail (up to 250 ms on the development machine).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        dry = WriteOptions(dry_run=True)
        rows: list[Row] = []
        for name, spec in CASES:

            async def create(spec: dict[str, Any] = spec) -> dict[str, Any]:
                return await service.create(PLACEMENTS, "root", None, _body("simulated", spec), dry)

            answer = await create()
            assert len(answer["status"]["candidates"]) == TARGETS, "the simulation must explain every target"
            rows += _rows(f"create, {name}", await _measure(create, samples))
        existing = store.get(PLACEMENTS.key("root", None, "p-00000"))
        assert existing is not None
        changed = {**existing.obj, "spec": {**existing.obj["spec"], "numberOfTargets": 5}}

        async def update() -> dict[str, Any]:
            return await service.update(PLACEMENTS, "root", None, "p-00000", changed, dry)

        rows += _rows("update of an existing Placement (3 -> 5 targets)", await _measure(update, samples))
        return rows
    finally:
        gc.set_threshold(*THRESHOLDS)
        gc.unfreeze()
        for c in controllers:
            await c.stop()
        await store.close()


def run(quick: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tmc-bench-simulation-") as tmp:
        return asyncio.run(_run(tmp, 100 if quick else 400))


def main() -> None:
    for r in run():
        print(f"{r['name']:<80} {r['value']:>8.1f} {r['unit']}  {r.get('goal', '')}  {r.get('note', '')}")


if __name__ == "__main__":
    main()
