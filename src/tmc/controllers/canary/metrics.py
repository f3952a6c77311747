"""Canary controller metrics (docs/observability.md has the catalogue; Flagger's names and meanings, with `tmc_`).

CanaryDeployments are few, long-lived configuration objects, so their names are bounded labels; the series of a
deleted CanaryDeployment are removed with it.
"""

from __future__ import annotations

from tmc.api.canary import ANALYZING, FAILED, PAUSED, PROGRESSING, ROLLED_BACK, SUCCEEDED
from tmc.observability import catalogue
from tmc.observability.catalogue import HUB

STATUS = catalogue.gauge(
    "tmc_canary_status",
    "Where each canary is, as Flagger reports it: 0 running (Pending, Progressing, Analyzing, Paused), "
    "1 succeeded, 2 failed (Failed, RolledBack).",
    ("canary", "namespace"),
    owners=(HUB,),
    promql="max by (namespace, canary) (tmc_canary_status) == 2",
)
WEIGHT = catalogue.gauge(
    "tmc_canary_weight",
    "Percent of traffic the routing sends to the canary, the same in every cluster.",
    ("canary", "namespace"),
    owners=(HUB,),
    promql="max by (namespace, canary) (tmc_canary_weight)",
)
METRIC_ANALYSIS = catalogue.gauge(
    "tmc_canary_metric_analysis",
    "Last measured value of each analysis metric of a canary (the deciding cluster's value; a comparison's score).",
    ("canary", "metric"),
    owners=(HUB,),
    promql='tmc_canary_metric_analysis{metric="error-rate"}',
)
DURATION = catalogue.histogram(
    "tmc_canary_duration_seconds",
    "Time from a canary's start to its promotion or rollback.",
    (),
    owners=(HUB,),
    promql="histogram_quantile(0.9, sum by (le) (rate(tmc_canary_duration_seconds_bucket[1d])))",
    buckets=(30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
SUCCESSES = catalogue.counter(
    "tmc_canary_successes_total",
    "Canaries promoted.",
    (),
    owners=(HUB,),
    promql="increase(tmc_canary_successes_total[1d])",
)
FAILURES = catalogue.counter(
    "tmc_canary_failures_total",
    "Canaries rolled back, by reason: AnalysisFailed, AnalysisError, ProgressDeadlineExceeded, Aborted.",
    ("reason",),
    owners=(HUB,),
    promql="sum by (reason) (increase(tmc_canary_failures_total[1d]))",
)

_STATUS_VALUE = {PROGRESSING: 0, ANALYZING: 0, PAUSED: 0, SUCCEEDED: 1, FAILED: 2, ROLLED_BACK: 2}


def record(namespace: str, name: str, phase: str, weight: int, values: dict[str, float]) -> None:
    STATUS.labels(name, namespace).set(_STATUS_VALUE.get(phase, 0))
    WEIGHT.labels(name, namespace).set(weight)
    for metric, value in values.items():
        METRIC_ANALYSIS.labels(name, metric).set(value)


def forget(namespace: str, name: str, metrics: list[str]) -> None:
    for gauge in (STATUS, WEIGHT):
        try:
            gauge.remove(name, namespace)
        except KeyError:
            pass
    for metric in metrics:
        try:
            METRIC_ANALYSIS.remove(name, metric)
        except KeyError:
            pass
