"""The canary analysis engine: metrics measured through providers, judged by conditions or by a Mann-Whitney
comparison against the baseline, and accumulated into a run phase with Argo Rollouts' limit semantics.

A pure library with no API objects of its own: the canary controller parses `spec.analysis` with
`parse_analysis`, keeps an `AnalysisRun` in its status, measures what `AnalysisRun.due` names with
`measure_metric` / `measure_comparison`, and `record`s the results. docs/canary.md describes the fields and
outcomes.
"""

from tmc.controllers.canary.analysis.fields import SpecError, parse_duration
from tmc.controllers.canary.analysis.measure import Providers, measure_comparison, measure_metric
from tmc.controllers.canary.analysis.measurement import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    PENDING,
    RUNNING,
    SUCCESSFUL,
    ClusterValue,
    Measurement,
)
from tmc.controllers.canary.analysis.prometheus import PrometheusProvider
from tmc.controllers.canary.analysis.readings import ProviderError, Reading, Series
from tmc.controllers.canary.analysis.run import AnalysisRun, MetricState
from tmc.controllers.canary.analysis.spec import (
    COMPARISON,
    AnalysisSpec,
    ComparedMetric,
    ComparisonSpec,
    Limits,
    MetricSpec,
    Threshold,
    parse_analysis,
    parse_thresholds,
)
from tmc.controllers.canary.analysis.web import WebProvider

__all__ = [
    "COMPARISON",
    "ERROR",
    "FAILED",
    "INCONCLUSIVE",
    "PENDING",
    "RUNNING",
    "SUCCESSFUL",
    "AnalysisRun",
    "AnalysisSpec",
    "ClusterValue",
    "ComparedMetric",
    "ComparisonSpec",
    "Limits",
    "Measurement",
    "MetricSpec",
    "MetricState",
    "PrometheusProvider",
    "ProviderError",
    "Providers",
    "Reading",
    "Series",
    "SpecError",
    "Threshold",
    "WebProvider",
    "measure_comparison",
    "measure_metric",
    "parse_analysis",
    "parse_duration",
    "parse_thresholds",
]
