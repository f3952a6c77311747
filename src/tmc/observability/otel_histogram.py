"""A metric exporter wrapper that adds one histogram, built at export time from tallies kept elsewhere, to what the
OpenTelemetry SDK collected: an instrument whose writes cost nothing on the hot path (the SDK's Python has no
MetricProducer to plug in instead)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# What a point source returns per label set: attributes, bounds, bucket_counts, count, sum, start and time (ns).
Points = Callable[[], list[dict[str, Any]]]


class WithHistogram(MetricExporter):
    def __init__(
        self, inner: MetricExporter, resource: Resource, scope: str, name: str, description: str, points: Points
    ) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.resource = resource
        self.scope = scope
        self.name = name
        self.description = description
        self.points = points

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return self.inner.export(self.extended(metrics_data), timeout_millis=timeout_millis, **kwargs)

    def extended(self, data: MetricsData) -> MetricsData:
        """`data` with the histogram in the scope named `scope` (added to the first resource, or as a resource of
        its own when the SDK collected nothing)."""
        points = self.points()
        if not points:
            return data
        metric = Metric(
            name=self.name,
            description=self.description,
            unit="s",
            data=Histogram(
                data_points=[
                    HistogramDataPoint(
                        attributes=p["attributes"],
                        start_time_unix_nano=p["start"],
                        time_unix_nano=p["time"],
                        count=p["count"],
                        sum=p["sum"],
                        bucket_counts=p["bucket_counts"],
                        explicit_bounds=p["bounds"],
                        min=None,  # type: ignore[arg-type]  # optional in OTLP; the Prometheus tallies have none
                        max=None,  # type: ignore[arg-type]
                    )
                    for p in points
                ],
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
            ),
        )
        resources = list(data.resource_metrics)
        for i, rm in enumerate(resources):
            scopes = list(rm.scope_metrics)
            for j, sm in enumerate(scopes):
                if sm.scope.name == self.scope:
                    scopes[j] = ScopeMetrics(sm.scope, [*sm.metrics, metric], sm.schema_url)
                    resources[i] = ResourceMetrics(rm.resource, scopes, rm.schema_url)
                    return MetricsData(resources)
        scope = ScopeMetrics(InstrumentationScope(self.scope), [metric], "")
        if resources:
            first = resources[0]
            resources[0] = ResourceMetrics(first.resource, [*first.scope_metrics, scope], first.schema_url)
        else:
            resources.append(ResourceMetrics(self.resource, [scope], ""))
        return MetricsData(resources)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
