"""TMC's OTLP span encoder writes what the OpenTelemetry exporter's own encoder writes: both are decoded with the
OTLP proto classes and compared, over spans with every kind of attribute value, events, links, statuses, remote and
local parents, trace state and two resources."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from tmc.observability.otlp_encoding import encode_spans


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[call-overload]
        return SpanExportResult.SUCCESS


def finished_spans() -> list[ReadableSpan]:
    kept = Keep()
    spans: list[ReadableSpan] = []
    for service in ("tmc-server", "tmc-syncer/east"):
        provider = TracerProvider(resource=Resource.create({"service.name": service, "k8s.cluster": "root"}))
        provider.add_span_processor(SimpleSpanProcessor(kept))
        tracer = provider.get_tracer("tmc", "1.0", schema_url="https://opentelemetry.io/schemas/1.21.0")
        other = provider.get_tracer("tmc.storage")
        remote = SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=TraceFlags(1),
            trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
        )
        attributes = {
            "text": "POST",
            "empty": "",
            "flag": True,
            "off": False,
            "count": 201,
            "zero": 0,
            "negative": -5,
            "huge": 2**62,
            "ratio": 0.25,
            "names": ("a", "b"),
            "numbers": (1, -2, 3),
            "flags": (True, False),
            "floats": (1.5, -0.0),
        }
        with tracer.start_as_current_span(
            "POST deployments",
            context=set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=[Link(remote, {"why": "batched"})],
        ) as outer:
            outer.add_event("committed", {"rev": 7})
            outer.add_event("bare")
            with other.start_as_current_span("storage.commit") as inner:
                inner.set_status(Status(StatusCode.ERROR, "disk full"))
            with tracer.start_as_current_span("reconcile placement", kind=SpanKind.CLIENT) as ok:
                ok.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("a root", kind=SpanKind.PRODUCER):
            pass
        with other.start_as_current_span("consumer", kind=SpanKind.CONSUMER, attributes={"unicode": "näme ✓"}):
            pass
        provider.shutdown()
        spans.extend(kept.spans)
        kept.spans.clear()
    return spans


def test_the_same_request_as_the_library_encoder() -> None:
    spans = finished_spans()
    assert len(spans) == 10
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    theirs = ExportTraceServiceRequest.FromString(library_encode(spans).SerializeToString())
    assert ours == theirs
    assert len(ours.resource_spans) == 2
    assert sum(len(s.spans) for r in ours.resource_spans for s in r.scope_spans) == 10


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
