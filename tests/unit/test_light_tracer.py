"""The light tracer (observability/spans.py, span_export.py): ParentBased(TraceIdRatioBased) sampling, ids, what
reaches the collector (decoded with the OTLP proto classes), the export queue's limits, flush at shutdown and
the warning for an unreachable collector."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import AnyValue

from tests.otlp import OtlpReceiver
from tmc.observability import tracing
from tmc.observability.otlp_encoding import encode_light_spans
from tmc.observability.span_export import BatchExporter, BatchSettings
from tmc.observability.spans import LightSpan, LightTracerProvider, ratio_bound

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
PARENT = 0xB7AD6B7169203331
RESOURCE = {"service.name": "tmc-test", "tmc.cluster": "c1"}


class FixedIds:
    """Trace ids chosen by the test; span ids counting up from 1."""

    def __init__(self, trace_ids: Sequence[int] = (TRACE,)) -> None:
        self.trace_ids = list(trace_ids)
        self.next_span = 0

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0)

    def generate_span_id(self) -> int:
        self.next_span += 1
        return self.next_span


class Kept:
    """A sink that keeps ended spans."""

    def __init__(self) -> None:
        self.spans: list[LightSpan] = []

    def on_end(self, span: LightSpan) -> None:
        self.spans.append(span)

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def remote(sampled: bool) -> SpanContext:
    return SpanContext(TRACE, PARENT, is_remote=True, trace_flags=TraceFlags(1 if sampled else 0))


def in_context(ctx: SpanContext) -> object:
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def test_a_root_is_sampled_when_its_trace_id_is_below_the_ratio_bound() -> None:
    bound = ratio_bound(0.25)
    assert bound == 1 << 62
    # Only the low 64 bits count, as in TraceIdRatioBased.
    ids = FixedIds([(7 << 64) | (bound - 1), bound, (1 << 64) | 0])
    tracer = LightTracerProvider(ids, Kept(), 0.25).get_tracer("tmc")
    first, second, third = (tracer.start_span("root") for _ in range(3))
    assert isinstance(first, LightSpan) and first.is_recording() and first.parent is None
    assert isinstance(second, NonRecordingSpan) and not second.is_recording()
    assert not second.get_span_context().trace_flags.sampled and second.get_span_context().span_id == 2
    assert isinstance(third, LightSpan)


def test_ratios_zero_and_one_are_never_and_always() -> None:
    limit = (1 << 64) - 1
    never = LightTracerProvider(FixedIds([1]), Kept(), 0.0).get_tracer("tmc")
    always = LightTracerProvider(FixedIds([limit]), Kept(), 1.0).get_tracer("tmc")
    assert not never.start_span("x").is_recording()
    assert always.start_span("x").is_recording()


@pytest.mark.parametrize("roots", [True, False])
def test_a_child_follows_its_parents_sampled_flag_whatever_the_ratio(roots: bool) -> None:
    kept = Kept()
    tracer = LightTracerProvider(FixedIds([]), kept, 0.0, roots=roots).get_tracer("tmc")
    sampled = tracer.start_span("continued", context=in_context(remote(True)))  # type: ignore[arg-type]
    refused = tracer.start_span("refused", context=in_context(remote(False)))  # type: ignore[arg-type]
    assert isinstance(sampled, LightSpan)
    assert sampled.parent == remote(True) and sampled.parent is not None and sampled.parent.is_remote
    assert sampled.get_span_context().trace_id == TRACE and not sampled.get_span_context().is_remote
    assert isinstance(refused, NonRecordingSpan)
    assert refused.get_span_context().trace_id == TRACE and not refused.get_span_context().trace_flags.sampled


def test_a_member_cluster_starts_no_trace_of_its_own() -> None:
    """roots=False is ParentBased(ALWAYS_OFF): even a ratio of 1 samples no new trace."""
    tracer = LightTracerProvider(FixedIds([1]), Kept(), 1.0, roots=False).get_tracer("tmc")
    assert isinstance(tracer.start_span("request"), NonRecordingSpan)


def test_children_name_their_local_parent_and_share_its_trace() -> None:
    kept = Kept()
    provider = LightTracerProvider(FixedIds([TRACE]), kept, 1.0)
    tracer = provider.get_tracer("tmc")
    with tracer.start_as_current_span("outer") as outer, tracer.start_as_current_span("inner") as inner:
        assert trace.get_current_span() is inner
    assert isinstance(inner, LightSpan) and isinstance(outer, LightSpan)
    assert inner.parent is not None and inner.parent.span_id == outer.get_span_context().span_id
    assert not inner.parent.is_remote
    assert inner.get_span_context().trace_id == outer.get_span_context().trace_id == TRACE
    assert [s.name for s in kept.spans] == ["inner", "outer"]  # ended innermost first


def test_the_trace_state_of_the_parent_is_kept() -> None:
    state = TraceState([("vendor", "v1")])
    parent = SpanContext(TRACE, PARENT, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    made = LightTracerProvider(FixedIds([]), Kept(), 1.0).get_tracer("tmc").start_span("x", in_context(parent))  # type: ignore[arg-type]
    assert made.get_span_context().trace_state == state


def decoded(spans: Sequence[LightSpan], provider: LightTracerProvider) -> list[ProtoSpan]:
    request = ExportTraceServiceRequest.FromString(encode_light_spans(spans, RESOURCE, provider.scopes))
    [resource_spans] = request.resource_spans
    assert {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes} == RESOURCE
    return [s for scope in resource_spans.scope_spans for s in scope.spans]


def test_attributes_status_events_and_links_reach_the_otlp_request() -> None:
    kept = Kept()
    provider = LightTracerProvider(FixedIds([]), kept, 1.0)
    tracer = provider.get_tracer("tmc")
    linked = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1))
    attributes: dict[str, AnyValue] = {
        "k8s.verb": "create",
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "names": ["a", "b"],
    }
    made = tracer.start_span(
        "create deployments",
        context=in_context(remote(True)),  # type: ignore[arg-type]
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=[Link(linked, {"why": "untrusted"})],
        start_time=1_000,
    )
    made.set_attribute("http.response.status_code", 500)
    try:
        raise ValueError("bad spec")
    except ValueError as e:
        made.record_exception(e)
        made.set_status(Status(StatusCode.ERROR, "ValueError: bad spec"))
    made.end(2_000)
    made.set_attribute("after", "end")  # ignored: the span has ended
    [span] = decoded(kept.spans, provider)
    assert span.name == "create deployments" and span.kind == ProtoSpan.SPAN_KIND_SERVER
    assert span.trace_id.hex() == f"{TRACE:032x}" and span.parent_span_id.hex() == f"{PARENT:016x}"
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1_000, 2_000)
    values = {kv.key: kv.value for kv in span.attributes}
    assert values["k8s.verb"].string_value == "create" and values["count"].int_value == 3
    assert values["ratio"].double_value == 0.5 and values["flag"].bool_value is True
    assert [v.string_value for v in values["names"].array_value.values] == ["a", "b"]
    assert values["http.response.status_code"].int_value == 500 and "after" not in values
    assert span.status.code == StatusCode.ERROR.value and span.status.message == "ValueError: bad spec"
    [event] = span.events
    event_values = {kv.key: kv.value.string_value for kv in event.attributes}
    assert event.name == "exception" and event_values["exception.type"] == "ValueError"
    assert (
        event_values["exception.message"] == "bad spec" and "raise ValueError" in event_values["exception.stacktrace"]
    )
    [link] = span.links
    assert link.trace_id.hex() == f"{0x1234:032x}" and link.span_id.hex() == f"{0x99:016x}"
    assert {kv.key: kv.value.string_value for kv in link.attributes} == {"why": "untrusted"}
    assert span.flags & 0x300 == 0x300  # the parent is known to be remote


def test_an_ok_status_is_final_and_unset_is_not_written() -> None:
    kept = Kept()
    provider = LightTracerProvider(FixedIds([1, 2]), kept, 1.0)
    tracer = provider.get_tracer("tmc")
    ok = tracer.start_span("ok")
    ok.set_status(StatusCode.OK)
    ok.set_status(StatusCode.ERROR, "too late")
    ok.end()
    tracer.start_span("plain").end()
    first, second = decoded(kept.spans, provider)
    assert first.status.code == StatusCode.OK.value and not first.status.message
    assert second.status.code == StatusCode.UNSET.value and second.flags & 0x300 == 0x100  # a local root


def test_attributes_beyond_the_limit_drop_the_oldest_and_are_counted() -> None:
    kept = Kept()
    provider = LightTracerProvider(FixedIds([1]), kept, 1.0)
    made = provider.get_tracer("tmc").start_span("many")
    for i in range(130):
        made.set_attribute(f"a{i}", i)
    made.end()
    many: dict[str, AnyValue] = {f"b{i}": i for i in range(131)}
    provider.get_tracer("tmc").start_span("many at start", in_context(remote(True)), attributes=many).end()  # type: ignore[arg-type]
    set_one_by_one, given_at_start = decoded(kept.spans, provider)
    assert len(set_one_by_one.attributes) == 128 and set_one_by_one.dropped_attributes_count == 2
    assert set_one_by_one.attributes[0].key == "a2"
    assert len(given_at_start.attributes) == 128 and given_at_start.dropped_attributes_count == 3
    assert given_at_start.attributes[0].key == "b3"


def tracing_wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Sent:
    """A sender that records the decoded requests, or fails while `failing` is set."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.failing = False
        self.release = threading.Event()
        self.release.set()

    def __call__(self, data: bytes) -> None:
        self.release.wait(10)
        if self.failing:
            raise ConnectionRefusedError("connection refused")
        self.requests.append(ExportTraceServiceRequest.FromString(data))

    def names(self) -> list[str]:
        return [s.name for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.fixture
def pipeline() -> Iterator[tuple[LightTracerProvider, Sent, BatchExporter]]:
    sent = Sent()
    made: list[LightTracerProvider] = []
    # A long delay: only a full batch, a flush or the shutdown exports.
    batches = BatchExporter(
        lambda spans: encode_light_spans(spans, RESOURCE, made[0].scopes),
        sent,
        "http://collector:4318/v1/traces",
        BatchSettings(max_queue=4, max_batch=4, delay=60.0, timeout=5.0),
    )
    made.append(LightTracerProvider(FixedIds([]), batches, 1.0))
    yield made[0], sent, batches
    batches.shutdown()


def test_a_full_queue_drops_spans_counts_them_and_says_so(
    pipeline: tuple[LightTracerProvider, Sent, BatchExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, sent, batches = pipeline
    tracer = provider.get_tracer("tmc")
    sent.release.clear()  # the export thread is stuck in its first export
    parent = in_context(remote(True))
    for i in range(4):
        tracer.start_span(f"s{i}", parent).end()  # type: ignore[arg-type]
    tracing_wait(lambda: len(batches._queue) == 0)  # the full batch was taken by the export thread
    for i in range(4, 10):
        tracer.start_span(f"s{i}", parent).end()  # type: ignore[arg-type]
    assert batches.dropped == 2  # the queue holds four
    with caplog.at_level(logging.WARNING, logger="tmc.tracing"):
        sent.release.set()
        assert provider.force_flush(5000)
    assert sent.names() == [f"s{i}" for i in range(8)]
    assert any("spans dropped" in r.message and r.__dict__.get("dropped") == 2 for r in caplog.records)


def test_shutdown_exports_what_is_queued(pipeline: tuple[LightTracerProvider, Sent, BatchExporter]) -> None:
    provider, sent, batches = pipeline
    provider.get_tracer("tmc").start_span("last", in_context(remote(True))).end()  # type: ignore[arg-type]
    assert sent.names() == []  # below a batch, before the delay
    provider.shutdown()
    assert sent.names() == ["last"]
    assert not batches._thread.is_alive()


def test_a_failing_collector_is_one_warning_per_outage(
    pipeline: tuple[LightTracerProvider, Sent, BatchExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, sent, _ = pipeline
    tracer = provider.get_tracer("tmc")
    sent.failing = True
    with caplog.at_level(logging.INFO, logger="tmc.tracing"):
        for name in ("a", "b"):
            tracer.start_span(name, in_context(remote(True))).end()  # type: ignore[arg-type]
            provider.force_flush(5000)
        sent.failing = False
        tracer.start_span("c", in_context(remote(True))).end()  # type: ignore[arg-type]
        provider.force_flush(5000)
    messages = [r.message for r in caplog.records]
    assert messages.count("could not export spans") == 1 and messages.count("exporting spans again") == 1
    warning = next(r for r in caplog.records if r.message == "could not export spans")
    assert "connection refused" in warning.__dict__["error"]
    assert sent.names() == ["c"]


def test_configure_exports_light_spans_to_an_otlp_http_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")  # read as the SDK reads it
    receiver = OtlpReceiver()
    try:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "50"}
        assert tracing.configure("tmc-syncer", env=env, roots=False)
        assert isinstance(tracing._provider, LightTracerProvider)
        with tracing.span("new trace"):  # a member: no root
            assert tracing.current_traceparent() is None
        with tracing.span("workload-sync", parent=remote(True), kind=SpanKind.CLIENT) as outer, tracing.span("inner"):
            pass
        tracing_wait(lambda: len(receiver.spans) == 2)  # by the schedule delay, without a flush
        inner, exported_outer = receiver.spans
        assert (inner.name, exported_outer.name) == ("inner", "workload-sync")
        assert inner.parent_span_id == f"{outer.get_span_context().span_id:016x}"
        assert exported_outer.parent_span_id == f"{PARENT:016x}" and exported_outer.service == "tmc-syncer"
        assert exported_outer.resource["deployment.environment"] == "test"
    finally:
        tracing.shutdown()
        receiver.close()


def test_a_light_span_encodes_as_the_library_encodes_the_same_sdk_span() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class KeepSdk(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    def record(tracer: trace.Tracer) -> None:
        parent = SpanContext(TRACE, PARENT, True, TraceFlags(1), TraceState([("vendor", "v1")]))
        linked = SpanContext(0x1234, 0x99, is_remote=False, trace_flags=TraceFlags(1))
        made = tracer.start_span(
            "patch deployments/status",
            context=in_context(parent),  # type: ignore[arg-type]
            kind=SpanKind.CLIENT,
            attributes={"k8s.verb": "patch", "n": -3, "ratio": 1.5, "ok": False, "names": ("a", "b")},
            links=[Link(linked, {"why": "batched"})],
            start_time=1_000,
        )
        made.set_attribute("http.response.status_code", 409)
        made.add_event("conflict", {"rev": 7}, timestamp=1_500)
        made.set_status(Status(StatusCode.ERROR, "Conflict: stale"))
        made.end(2_000)

    sdk_kept = KeepSdk()
    sdk = TracerProvider(id_generator=cast("IdGenerator", FixedIds([])))
    sdk.add_span_processor(SimpleSpanProcessor(sdk_kept))
    record(sdk.get_tracer("tmc"))
    kept = Kept()
    light = LightTracerProvider(FixedIds([]), kept, 1.0)
    record(light.get_tracer("tmc"))
    theirs = ExportTraceServiceRequest.FromString(library_encode(sdk_kept.spans).SerializeToString())
    [ours] = decoded(kept.spans, light)
    assert ours == theirs.resource_spans[0].scope_spans[0].spans[0]
    assert ours.events[0].name == "conflict" and len(ours.links) == 1  # the comparison covered them
