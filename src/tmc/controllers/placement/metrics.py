"""Placement scheduler metrics (docs/observability.md has the catalogue, docs/placement.md what they mean for
scheduling). Workspaces and Placements are few, long-lived configuration objects, so their labels stay bounded;
the candidate count is bucketed, never a raw number."""

from __future__ import annotations

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB

# result: success (every wanted target found), no_targets (fewer than wanted, or none, fit), error (the
# Placement's location workspace or locations could not be resolved).
PLACEMENT_DECISIONS = catalogue.counter(
    "tmc_placement_decisions_total",
    "Scheduling decisions made for Placements, by strategy, result (success, no_targets, error) and workspace.",
    ("strategy", "result", "workspace"),
    owners=(HUB,),
    promql='sum(rate(tmc_placement_decisions_total{result!="success"}[10m])) '
    "/ sum(rate(tmc_placement_decisions_total[10m]))",
)
PLACEMENT_DECISION_SECONDS = catalogue.histogram(
    "tmc_placement_decision_duration_seconds",
    "Time to compute one Placement's decisions (filtering, ranking, division; no API writes), by strategy and the "
    "bucketed number of candidate SyncTargets.",
    ("strategy", "candidates"),
    owners=(HUB,),
    promql="histogram_quantile(0.99, sum by (le, candidates) "
    "(rate(tmc_placement_decision_duration_seconds_bucket[5m])))",
    buckets=catalogue.exponential_buckets(0.01, 2, 10),  # 10 ms .. 5.12 s
)
PLACEMENT_LATENCY = catalogue.histogram(
    "tmc_placement_latency_seconds",
    "From a workload's creation or change (its write reaching the scheduler) to the write of its placement (the "
    "state labels naming its SyncTargets), by workspace and the selecting Placement's strategy.",
    ("workspace", "strategy"),
    owners=(HUB,),
    promql="histogram_quantile(0.99, sum by (le) (rate(tmc_placement_latency_seconds_bucket[5m])))",
)
PLACEMENT_SELECTED_TARGETS = catalogue.gauge(
    "tmc_placement_selected_targets",
    "SyncTargets currently chosen by a Placement.",
    ("placement", "workspace"),
    owners=(HUB,),
    promql="tmc_placement_selected_targets == 0",
)


def candidates_bucket(count: int) -> str:
    """The `candidates` label: a bucketed count, so the series stay few whatever the fleet's size."""
    if count <= 10:
        return "1-10"
    if count <= 100:
        return "11-100"
    if count <= 1000:
        return "101-1000"
    return ">1000"
