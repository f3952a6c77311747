"""Tracing over OTLP/gRPC: the OpenTelemetry SDK's provider and the library's gRPC exporter (TMC's light spans
speak OTLP/HTTP only). Imported only when a process is configured for gRPC."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.sdk.trace import TracerProvider

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.id_generator import IdGenerator

log = logging.getLogger("tmc.tracing")


def grpc_provider(url: str, timeout: float, resource: Any, ratio: float, roots: bool, ids: object) -> TracerProvider:
    """The OpenTelemetry SDK's provider with the library's gRPC exporter (the light path speaks HTTP only)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    exporter = GrpcExporter(endpoint=url, insecure=parsed.scheme != "https", timeout=timeout)
    # Without `roots` (member clusters) the process only continues traces it is handed, and starts none of its own.
    root = TraceIdRatioBased(ratio) if roots else ALWAYS_OFF
    provider = TracerProvider(resource=resource, sampler=ParentBased(root), id_generator=cast("IdGenerator", ids))
    provider.add_span_processor(BatchSpanProcessor(cast("SpanExporter", _WarningExporter(exporter, url))))
    return provider


class _WarningExporter:
    """Wraps an OTLP exporter so a failing export is one warning line per outage, not a stack trace per batch."""

    def __init__(self, inner: SpanExporter, url: str) -> None:
        self.inner = inner
        self.url = url
        self.failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.inner.export(spans)
        except Exception as e:
            result = SpanExportResult.FAILURE
            error = str(e)
        else:
            error = "the collector did not accept the spans"
        if result == SpanExportResult.FAILURE and not self.failing:
            log.warning("could not export spans", extra={"endpoint": self.url, "error": error})
        elif result == SpanExportResult.SUCCESS and self.failing:
            log.info("exporting spans again", extra={"endpoint": self.url})
        self.failing = result == SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
