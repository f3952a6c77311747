"""The scheduler's metrics (docs/placement.md) as Prometheus exposes them, after real decisions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from tests.unit._scheduling_env import REGION, Env


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_decisions_are_counted_timed_and_their_targets_gauged(tmp_path: Path) -> None:
    scheduled = {"strategy": "Spread", "result": "scheduled", "workspace": "root"}
    unschedulable = {"strategy": "Binpack", "result": "unschedulable", "workspace": "root"}
    before = (
        _value("tmc_placement_decisions_total", **scheduled),
        _value("tmc_placement_decisions_total", **unschedulable),
        _value("tmc_placement_decision_duration_seconds_count"),
    )

    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1", {REGION: "eu"})
            await env.target("us-1", {REGION: "us"})
            await env.placement("spread", {"syncTargetSelector": {}})
            await env.placement(
                "nowhere", {"syncTargetSelector": {"matchLabels": {REGION: "mars"}}, "strategy": "Binpack"}
            )
            await env.until(lambda: len(env.decided_names("spread")) == 2, "two targets chosen")
            await env.until(
                lambda: _value("tmc_placement_decisions_total", **unschedulable) > before[1],
                "an unschedulable decision",
            )
            selected = {"workspace": "root", "placement": "spread"}
            assert _value("tmc_placement_selected_targets", **selected) == 2
            assert _value("tmc_placement_selected_targets", workspace="root", placement="nowhere") == 0

    asyncio.run(main())
    assert _value("tmc_placement_decisions_total", **scheduled) > before[0]
    assert _value("tmc_placement_decision_duration_seconds_count") >= before[2] + 2
