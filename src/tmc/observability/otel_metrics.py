"""The syncer's OpenTelemetry metric instruments, `tmc.sync.operations` (counter) and `tmc.sync.duration` (histogram,
seconds), exported over OTLP with the traces when an endpoint is configured. They carry what the Prometheus series
syncer_operations_total and syncer_operation_duration_seconds carry, for backends that take OTLP only, and are read
from those series at each export: a write costs nothing more than its Prometheus observation (the SDK histogram's
`record` was about 20 us per write, its counter's `add` about 10). The export interval is the SDK's
OTEL_METRIC_EXPORT_INTERVAL (60 s unless set).

The syncer names the two Prometheus series with `use_sources`; `configure` starts the export."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tmc.observability.tracing import Settings

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger("tmc.otel_metrics")

enabled = False
_provider: Any = None
_operations: Any = None
# The Prometheus series the instruments are read from (the syncer's; see use_sources).
_sources: tuple[Collector, Collector] | None = None
LABELS = ("sync_target", "resource_type", "operation")
_started: dict[tuple[str, ...], int] = {}  # start time of each exported histogram series
DURATION = "tmc.sync.duration"
DURATION_DESCRIPTION = "Time of one syncer write"


def use_sources(operations: Collector, durations: Collector) -> None:
    """The Prometheus counter (labels sync_target, resource_type, operation, result) and histogram (sync_target,
    resource_type, operation) whose values the OTel instruments export."""
    global _sources
    _sources = (operations, durations)


def metrics_url(settings: Settings, env: Mapping[str, str]) -> str:
    """Where the HTTP exporter posts metrics: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as it is, else the base endpoint
    with `/v1/metrics` (from a traces-specific endpoint, its `/v1/traces` replaced)."""
    specific = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip()
    if specific:
        return specific
    base = settings.endpoint.rstrip("/")
    if settings.signal_specific:
        base = base.removesuffix("/v1/traces")
    return base + "/v1/metrics"


def configure(settings: Settings, service_name: str, attributes: Mapping[str, str] | None = None) -> None:
    """Create the instruments and export them over OTLP, by the same protocol as the traces."""
    global enabled, _provider, _operations
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    from tmc.observability.otel_histogram import WithHistogram

    exporter: Any
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        insecure = not settings.endpoint.startswith("https://")
        exporter = GrpcExporter(endpoint=settings.endpoint, insecure=insecure, timeout=settings.timeout)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        exporter = HttpExporter(endpoint=metrics_url(settings, os.environ), timeout=settings.timeout)
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name, **(attributes or {})}
    )
    # The histogram is not an SDK instrument: the exporter adds it to each export, from the Prometheus histogram.
    exporter = WithHistogram(exporter, resource, "tmc", DURATION, DURATION_DESCRIPTION, _duration_points)
    _provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)])
    meter = _provider.get_meter("tmc")
    _operations = meter.create_observable_counter(
        "tmc.sync.operations",
        callbacks=[_observe_operations],
        unit="{operation}",
        description="Writes by the syncer (create, update, delete, status)",
    )
    enabled = True


def _observe_operations(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    if _sources is None:
        return
    for family in _sources[0].collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = {k: sample.labels[k] for k in (*LABELS, "result") if k in sample.labels}
                yield Observation(int(sample.value), labels)


def _duration_points() -> list[dict[str, Any]]:
    """One cumulative histogram point per label set of the Prometheus histogram: its bounds, per-bucket counts
    (Prometheus' are cumulative), count, sum and creation time (the point's start)."""
    if _sources is None:
        return []
    series: dict[tuple[str, ...], dict[str, Any]] = {}
    for family in _sources[1].collect():
        for sample in family.samples:
            key = tuple(sample.labels.get(k, "") for k in LABELS)
            point = series.setdefault(key, {"attributes": dict(zip(LABELS, key, strict=True)), "le": []})
            suffix = sample.name.rsplit("_", 1)[1]
            if suffix == "bucket":
                point["le"].append((float(sample.labels["le"]), int(sample.value)))
            elif suffix in ("count", "sum", "created"):
                point[suffix] = sample.value
    now = time.time_ns()
    points = []
    for point in series.values():
        cumulative = sorted(point.pop("le"))
        bounds = [b for b, _ in cumulative if b != float("inf")]
        counts = [c - (cumulative[i - 1][1] if i else 0) for i, (_, c) in enumerate(cumulative)]
        created = point.pop("created", None)
        key = tuple(point["attributes"].values())
        # A cumulative point's start stays the same from export to export: the series' creation time when
        # Prometheus keeps it (TMC turns `_created` off), else when this process first exported the series.
        start = _started.setdefault(key, int(created * 1e9) if created else now)
        point.update(
            bounds=bounds,
            bucket_counts=counts,
            count=int(point.get("count", 0)),
            sum=point.get("sum", 0.0),
            start=start,
            time=now,
        )
        points.append(point)
    return points


def shutdown() -> None:
    """Export what is left and stop (at exit, and in tests)."""
    global enabled, _provider
    provider, _provider = _provider, None
    enabled = False
    if provider is not None:
        try:
            provider.shutdown()
        except Exception as e:  # an unreachable endpoint must not fail the process's exit
            log.warning("could not export the last metrics: %s", e)
