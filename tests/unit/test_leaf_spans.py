"""Leaf spans (spans.LeafSpan, tracing.leaf_span): the syncer's span per downstream write. What reaches the collector
is what an ordinary light span with the same ids would send; requests and log lines inside one name it; a failure
is recorded; without a parent it is the root of a new trace, sampled at the ratio; inside an active span, or under
an unsampled parent, it is an ordinary span."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from tests.otlp import OtlpReceiver
from tmc.observability import tracing
from tmc.observability.otlp_encoding import encode_light_spans
from tmc.observability.spans import LeafSpan, LightSpan

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
PARENT = 0xB7AD6B7169203331
ATTRIBUTES = {"workload.type": "configmaps", "workload.name": "c1", "workload.namespace": "ns", "cluster.name": "m1"}


def remote(sampled: bool = True) -> SpanContext:
    return SpanContext(TRACE, PARENT, is_remote=True, trace_flags=TraceFlags(1 if sampled else 0))


class Kept:
    def __init__(self) -> None:
        self.spans: list[LightSpan | LeafSpan] = []

    def on_end(self, span: LightSpan | LeafSpan) -> None:
        self.spans.append(span)

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def decoded(spans: Sequence[LightSpan | LeafSpan]) -> list[ProtoSpan]:
    request = ExportTraceServiceRequest.FromString(
        encode_light_spans(spans, {"service.name": "t"}, [("tmc", None, None)])
    )
    return [s for rs in request.resource_spans for scope in rs.scope_spans for s in scope.spans]


def test_a_leaf_span_encodes_as_a_light_span_with_the_same_ids() -> None:
    kept = Kept()
    leaf = LeafSpan("workload-sync", remote(), SpanKind.CLIENT, dict(ATTRIBUTES), 0, kept)
    with leaf:
        pass
    assert kept.spans == [leaf] and leaf.start_time <= leaf.end_time
    own = SpanContext(TRACE, leaf.span_id, is_remote=False, trace_flags=TraceFlags(1))
    light = LightSpan("workload-sync", own, remote(), SpanKind.CLIENT, dict(ATTRIBUTES), [], leaf.start_time, 0, kept)
    light.end(leaf.end_time)
    ours, reference = decoded([leaf, light])
    assert ours == reference
    assert ours.parent_span_id == PARENT.to_bytes(8, "big") and ours.trace_id == TRACE.to_bytes(16, "big")


def test_a_root_leaf_encodes_as_a_light_root_span() -> None:
    kept = Kept()
    leaf = LeafSpan("workload-sync", None, SpanKind.CLIENT, dict(ATTRIBUTES), 0, kept, trace_id=TRACE)
    with leaf:
        pass
    own = SpanContext(TRACE, leaf.span_id, is_remote=False, trace_flags=TraceFlags(1))
    light = LightSpan("workload-sync", own, None, SpanKind.CLIENT, dict(ATTRIBUTES), [], leaf.start_time, 0, kept)
    light.end(leaf.end_time)
    ours, reference = decoded([leaf, light])
    assert ours == reference
    assert ours.parent_span_id == b"" and ours.trace_id == TRACE.to_bytes(16, "big")


def test_a_failed_leaf_records_the_exception_and_an_error_status() -> None:
    kept = Kept()
    with pytest.raises(ConnectionResetError), LeafSpan("workload-sync", remote(), SpanKind.CLIENT, {}, 0, kept):
        raise ConnectionResetError("member went away")
    [span] = decoded(kept.spans)
    assert span.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert span.status.message == "ConnectionResetError: member went away"
    [event] = span.events
    assert event.name == "exception"
    assert {kv.key: kv.value.string_value for kv in event.attributes}["exception.type"] == "ConnectionResetError"


def receiving(ratio: float = 1.0) -> Iterator[OtlpReceiver]:
    received = OtlpReceiver()
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": received.endpoint + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    assert tracing.configure("tmc-syncer", env=env, sample_ratio=ratio)
    yield received
    tracing.shutdown()
    received.close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    yield from receiving()


@pytest.fixture
def unsampled() -> Iterator[OtlpReceiver]:
    yield from receiving(0.0)


def test_requests_and_log_lines_inside_a_leaf_name_it(receiver: OtlpReceiver) -> None:
    with tracing.leaf_span("workload-sync", remote(), SpanKind.CLIENT, dict(ATTRIBUTES)):
        sent = tracing.current_traceparent()
        ids = tracing.current_ids()
    assert tracing.current_traceparent() is None and tracing.current_ids() is None
    assert tracing.force_flush()
    [span] = receiver.spans
    assert sent == f"00-{TRACE:032x}-{span.span_id}-01" and ids == (f"{TRACE:032x}", span.span_id)
    assert (span.name, span.kind, span.parent_span_id) == ("workload-sync", SpanKind.CLIENT.value + 1, f"{PARENT:016x}")
    assert span.attributes == ATTRIBUTES and span.service == "tmc-syncer"


def test_without_a_sampled_remote_parent_it_is_an_ordinary_span(receiver: OtlpReceiver) -> None:
    with tracing.leaf_span("not sampled", remote(sampled=False), SpanKind.CLIENT, {}):
        assert tracing.current_traceparent() is None
    with tracing.span("outer", parent=remote()) as outer, tracing.leaf_span("child", None, SpanKind.CLIENT, {}):
        inner = tracing.current_traceparent()
    assert tracing.force_flush()
    names = {s.name: s for s in receiver.spans}
    assert set(names) == {"outer", "child"}  # the unsampled one recorded nothing
    assert names["child"].parent_span_id == f"{outer.get_span_context().span_id:016x}"
    assert inner == f"00-{TRACE:032x}-{names['child'].span_id}-01"


def test_without_a_parent_it_is_the_root_of_a_new_trace(receiver: OtlpReceiver) -> None:
    with tracing.leaf_span("workload-sync", None, SpanKind.CLIENT, dict(ATTRIBUTES)):
        sent = tracing.current_traceparent()
        ids = tracing.current_ids()
    with tracing.leaf_span("workload-sync", None, SpanKind.CLIENT, dict(ATTRIBUTES)):
        other = tracing.current_traceparent()
    assert tracing.force_flush()
    first, second = receiver.spans
    assert first.parent_span_id == "" and second.parent_span_id == ""
    assert sent == f"00-{first.trace_id}-{first.span_id}-01" and ids == (first.trace_id, first.span_id)
    assert other == f"00-{second.trace_id}-{second.span_id}-01" and second.trace_id != first.trace_id
    assert first.attributes == ATTRIBUTES


def test_a_root_leaf_follows_the_sample_ratio(unsampled: OtlpReceiver) -> None:
    with tracing.leaf_span("workload-sync", None, SpanKind.CLIENT, {}):
        assert tracing.current_traceparent() is None and tracing.current_ids() is None
    with tracing.leaf_span("continued", remote(), SpanKind.CLIENT, {}):
        assert tracing.current_traceparent() is not None  # a sampled parent is followed at any ratio
    assert tracing.force_flush()
    assert [s.name for s in unsampled.spans] == ["continued"]
