"""The syncer's OpenTelemetry metric instruments, `tmc.sync.operations` (counter) and `tmc.sync.duration` (histogram,
seconds), exported over OTLP with the traces when an endpoint is configured. They carry what the Prometheus series
syncer_operations_total and syncer_operation_duration_seconds carry, for backends that take OTLP only. Off by default:
`record` is then one module attribute read. The export interval is the SDK's OTEL_METRIC_EXPORT_INTERVAL (60 s unless
set)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from tmc.observability.tracing import Settings

log = logging.getLogger("tmc.otel_metrics")

enabled = False
_provider: Any = None
_operations: Any = None
_duration: Any = None


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
    global enabled, _provider, _operations, _duration
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

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
    _provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)])
    meter = _provider.get_meter("tmc")
    _operations = meter.create_observable_counter(
        "tmc.sync.operations",
        callbacks=[_observe_operations],
        unit="{operation}",
        description="Writes by the syncer (create, update, delete, status)",
    )
    _duration = meter.create_histogram("tmc.sync.duration", unit="s", description="Time of one syncer write")
    enabled = True


# Writes counted here and read by the SDK at each export: an SDK counter's add() cost about 10 us per write (it
# hashes the attribute set every time), as much again as the histogram's record.
_counts: dict[tuple[str, str, str, str], int] = {}
# One attribute dict per (sync target, resource, operation), reused by every record of the histogram.
_attributes: dict[tuple[str, str, str], dict[str, str]] = {}


def record(sync_target: str, resource_type: str, operation: str, result: str, seconds: float) -> None:
    if not enabled:
        return
    key = (sync_target, resource_type, operation, result)
    _counts[key] = _counts.get(key, 0) + 1
    attributes = _attributes.get(key[:3])
    if attributes is None:
        attributes = {"sync_target": sync_target, "resource_type": resource_type, "operation": operation}
        _attributes[key[:3]] = attributes
    _duration.record(seconds, attributes)


def _observe_operations(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    for (sync_target, resource_type, operation, result), count in list(_counts.items()):
        labels = {"sync_target": sync_target, "resource_type": resource_type, "operation": operation}
        yield Observation(count, {**labels, "result": result})


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
    _counts.clear()  # after the last export: a later configure starts from zero, as a new process would
