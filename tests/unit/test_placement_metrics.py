"""The scheduler's metrics (docs/placement.md) as Prometheus exposes them, after real decisions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from tests.unit._scheduling_env import DEPLOYMENTS, REGION, Env


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_decisions_are_counted_timed_and_their_targets_gauged(tmp_path: Path) -> None:
    scheduled = {"strategy": "Spread", "result": "success", "workspace": "root"}
    unschedulable = {"strategy": "Binpack", "result": "no_targets", "workspace": "root"}
    timed = {"strategy": "Spread", "candidates": "1-10"}
    latency = {"workspace": "root", "strategy": "Spread"}
    before = (
        _value("tmc_placement_decisions_total", **scheduled),
        _value("tmc_placement_decisions_total", **unschedulable),
        _value("tmc_placement_decision_duration_seconds_count", **timed),
        _value("tmc_placement_latency_seconds_count", **latency),
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
            # A workload written into a placed namespace: the time until its state labels are written is observed.
            await env.namespace("shop")
            await env.deployment("shop", "web")
            await env.until(lambda: len(env.keys_on(DEPLOYMENTS, "web", "shop")) == 2, "web placed on both targets")
            await env.until(
                lambda: _value("tmc_placement_latency_seconds_count", **latency) > before[3], "placement latency"
            )

    asyncio.run(main())
    assert _value("tmc_placement_decisions_total", **scheduled) > before[0]
    assert _value("tmc_placement_decision_duration_seconds_count", **timed) > before[2]
    assert _value("tmc_placement_decision_duration_seconds_sum", **timed) > 0
