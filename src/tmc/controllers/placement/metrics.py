"""Placement scheduler metrics (the names and labels docs/placement.md lists)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Exposed as tmc_placement_decisions_total; result is scheduled, unschedulable or no_location.
PLACEMENT_DECISIONS = Counter(
    "tmc_placement_decisions",
    "Scheduling decisions made for Placements, by strategy, result and workspace.",
    ["strategy", "result", "workspace"],
)
PLACEMENT_DECISION_SECONDS = Histogram(
    "tmc_placement_decision_duration_seconds",
    "Time to compute one Placement's decisions (filtering, ranking, division), excluding API writes.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
# Per Placement: Placements are few and long-lived configuration objects, so the name label stays bounded.
PLACEMENT_SELECTED_TARGETS = Gauge(
    "tmc_placement_selected_targets",
    "SyncTargets currently chosen by a Placement.",
    ["workspace", "placement"],
)
