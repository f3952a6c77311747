"""Rollback metrics (docs/observability.md has the catalogue, docs/rollback.md what they mean). Reasons and kinds are
few fixed values; no workload name is a label."""

from __future__ import annotations

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB

ROLLBACKS = catalogue.counter(
    "tmc_rollbacks_total",
    "Workloads rolled back to an earlier revision, by reason: ProgressDeadlineExceeded or AnalysisFailed (a "
    "RollbackPolicy), UserRequested (`kubectl tmc rollout undo`).",
    ("reason",),
    owners=(HUB,),
    promql="sum by (reason) (increase(tmc_rollbacks_total[1h]))",
)
ROLLBACK_SECONDS = catalogue.histogram(
    "tmc_rollback_duration_seconds",
    "From a rollback's decision (or the undo request) to the restored revision being available on every cluster.",
    owners=(HUB,),
    promql="histogram_quantile(0.99, sum by (le) (rate(tmc_rollback_duration_seconds_bucket[1h])))",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
REVISIONS = catalogue.gauge(
    "tmc_workload_revisions",
    "WorkloadRevisions the hub keeps, by workload kind (pruned to each workload's revisionHistoryLimit).",
    ("kind",),
    owners=(HUB,),
    promql="sum(tmc_workload_revisions)",
)
