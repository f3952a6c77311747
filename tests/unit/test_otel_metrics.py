"""The syncer's OTel instruments are read from its Prometheus series at export: `tmc.sync.duration` as a cumulative
explicit-bucket histogram with the Prometheus buckets, `tmc.sync.operations` as the counter's values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter, Histogram

from tmc.observability import otel_metrics
from tmc.observability.otel_histogram import WithHistogram

LABELS = ("sync_target", "resource_type", "operation")


@pytest.fixture
def sources() -> Iterator[tuple[Counter, Histogram]]:
    registry = CollectorRegistry()
    operations = Counter("ops", "writes", (*LABELS, "result"), registry=registry)
    durations = Histogram("seconds", "time", LABELS, buckets=(0.001, 0.01, 0.1), registry=registry)
    previous = otel_metrics._sources
    otel_metrics.use_sources(operations, durations)
    yield operations, durations
    otel_metrics._sources = previous


class Keep(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


def test_the_duration_histogram_is_the_prometheus_histogram(sources: tuple[Counter, Histogram]) -> None:
    _, durations = sources
    for seconds in (0.0005, 0.005, 0.005, 0.05, 3.0):
        durations.labels("eu-1", "deployments.apps", "create").observe(seconds)
    durations.labels("eu-1", "configmaps", "status").observe(0.002)
    kept = Keep()
    resource = Resource.create({"service.name": "tmc-syncer"})
    exporter = WithHistogram(kept, resource, "tmc", "tmc.sync.duration", "Time", otel_metrics._duration_points)
    exporter.export(MetricsData([]))  # the SDK collected nothing else
    request = ExportMetricsServiceRequest.FromString(encode_metrics(kept.exported[0]).SerializeToString())
    [resource_metrics] = request.resource_metrics
    [scope] = resource_metrics.scope_metrics
    [metric] = scope.metrics
    assert (scope.scope.name, metric.name, metric.unit) == ("tmc", "tmc.sync.duration", "s")
    assert metric.histogram.aggregation_temporality == 2  # cumulative
    points = {
        tuple(kv.value.string_value for kv in p.attributes): p for p in metric.histogram.data_points
    }  # attribute order: sync_target, resource_type, operation
    create = points[("eu-1", "deployments.apps", "create")]
    assert list(create.explicit_bounds) == [0.001, 0.01, 0.1]
    assert list(create.bucket_counts) == [1, 2, 1, 1]  # per bucket, not cumulative as in Prometheus
    assert create.count == 5 and create.sum == pytest.approx(3.0605)
    assert not create.HasField("min") and create.start_time_unix_nano <= create.time_unix_nano
    assert points[("eu-1", "configmaps", "status")].count == 1
    # Cumulative: the next export has the same start, a later time and the new totals.
    durations.labels("eu-1", "deployments.apps", "create").observe(0.0001)
    exporter.export(MetricsData([]))
    request = ExportMetricsServiceRequest.FromString(encode_metrics(kept.exported[1]).SerializeToString())
    [later] = [
        p
        for p in request.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points
        if p.attributes[0].value.string_value == "eu-1" and p.attributes[1].value.string_value == "deployments.apps"
    ]
    assert later.start_time_unix_nano == create.start_time_unix_nano and later.count == 6
    assert later.time_unix_nano >= create.time_unix_nano and list(later.bucket_counts) == [2, 2, 1, 1]


def test_the_histogram_joins_the_sdk_scope_of_the_same_name(sources: tuple[Counter, Histogram]) -> None:
    """Exported next to the observable counter, in one scope `tmc`, whose values are the Prometheus counter's."""
    operations, durations = sources
    operations.labels("eu-1", "configmaps", "create", "success").inc(3)
    durations.labels("eu-1", "configmaps", "create").observe(0.02)
    from opentelemetry.sdk.metrics import MeterProvider

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("tmc").create_observable_counter("tmc.sync.operations", [otel_metrics._observe_operations])
    collected = reader.get_metrics_data()
    assert collected is not None
    exporter = WithHistogram(
        Keep(), Resource.create(), "tmc", "tmc.sync.duration", "Time", otel_metrics._duration_points
    )
    extended = exporter.extended(collected)
    [resource_metrics] = extended.resource_metrics
    [scope] = resource_metrics.scope_metrics
    assert [m.name for m in scope.metrics] == ["tmc.sync.operations", "tmc.sync.duration"]
    [counted] = scope.metrics[0].data.data_points
    assert (
        isinstance(counted, NumberDataPoint)
        and counted.value == 3
        and dict(counted.attributes or {})["result"] == "success"
    )
    provider.shutdown()
