"""tmc.observability.tracing: settings from flags and OTEL_* variables, the traceparent annotation, log trace ids."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, cast

import click
import grpc
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, TraceFlags

from tests.otlp import OtlpReceiver
from tmc.cli.params import tracing_options
from tmc.controllers.runtime import Controller, Result
from tmc.observability import tracing
from tmc.observability.logging import JSONFormatter
from tmc.observability.spans import LightSpan, LightTracerProvider, ratio_bound
from tmc.storage.sqlite import SqliteStore
from tmc.syncer.transform import downstream_object

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class KeptLight:
    """The light tracer's ended spans, kept in memory (they have the fields these tests read from SDK spans)."""

    def __init__(self) -> None:
        self.spans: list[LightSpan] = []

    def on_end(self, span: LightSpan) -> None:
        self.spans.append(span)

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass

    def get_finished_spans(self) -> tuple[Any, ...]:
        return tuple(self.spans)


@pytest.fixture(params=["sdk", "light"])
def spans(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    """Tracing on, recording every span in memory, as the hub has it (objects get the annotation); with the SDK's
    tracer (the gRPC path) and with TMC's light one (OTLP/HTTP)."""
    provider: TracerProvider | LightTracerProvider
    if request.param == "sdk":
        exporter = InMemorySpanExporter()
        provider = TracerProvider(id_generator=cast("IdGenerator", tracing.SpanIds()))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        kept = exporter
    else:
        light = KeptLight()
        provider = LightTracerProvider(tracing.SpanIds(), light, 1.0)
        kept = cast("InMemorySpanExporter", light)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_start_child", getattr(tracing._tracer, "start_child", None))
    monkeypatch.setattr(tracing, "_root_bound", ratio_bound(1.0))
    monkeypatch.setattr(tracing, "enabled", True)
    monkeypatch.setattr(tracing, "_annotate", True)
    monkeypatch.setattr(tracing, "reconcile_roots", True)
    monkeypatch.setattr(tracing, "commit_spans", True)
    yield kept
    provider.shutdown()


def test_traceparent_parses_and_formats_back() -> None:
    ctx = tracing.parse_traceparent(TRACEPARENT)
    assert ctx is not None and ctx.is_remote and ctx.trace_flags.sampled
    assert tracing.format_traceparent(ctx) == TRACEPARENT
    # The same context the API's constructor makes, its validity and empty trace state included.
    made = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(TraceFlags.SAMPLED))
    assert ctx == made and ctx.is_valid and ctx.trace_state == made.trace_state
    unsampled = tracing.parse_traceparent(TRACEPARENT[:-2] + "00")
    assert unsampled is not None and not unsampled.trace_flags.sampled and unsampled.is_valid


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff is invalid
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",  # short span id
        "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",
        42,
    ],
)
def test_malformed_traceparent_is_ignored(value: object) -> None:
    assert tracing.parse_traceparent(value) is None


def test_endpoint_precedence_flag_then_traces_variable_then_general_variable() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}
    assert tracing.resolve_endpoint("http://flag:4318", env) == ("http://flag:4318", False)
    assert tracing.resolve_endpoint(None, env) == ("http://t/x", True)
    assert tracing.resolve_endpoint(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://g:4318"}) == ("http://g:4318", False)
    assert tracing.resolve_endpoint(None, {}) is None
    # A base endpoint gets the traces path; a signal-specific one is used as it is.
    assert tracing.http_traces_url("http://g:4318/", False) == "http://g:4318/v1/traces"
    assert tracing.http_traces_url("http://t/x", True) == "http://t/x"


def test_off_without_an_endpoint() -> None:
    assert tracing.configure("tmc-hub", env={}) is False
    assert tracing.enabled is False
    assert tracing.current_traceparent() is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_SAMPLER_ARG": "x"}, "OTEL_TRACES_SAMPLER_ARG: 'x' is not a number between 0 and 1"),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG: '1.5' is outside [0, 1]"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "'http/json' is not one of http/protobuf, grpc"),
    ],
)
def test_settings_that_can_never_work_are_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(tracing.TracingConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tracing.configure("tmc-hub", endpoint="http://127.0.0.1:4318", env=env)
    assert tracing.enabled is False


@pytest.mark.parametrize(("value", "error"), [("abc", "is not a number"), ("1.01", "outside [0, 1]"), ("nan", "")])
def test_sample_ratio_flag_rejects_what_is_not_a_ratio(value: str, error: str) -> None:
    @click.command()
    @tracing_options
    def cmd(tracing_endpoint: str | None, tracing_sample_ratio: float | None) -> None:
        click.echo(repr(tracing_sample_ratio))

    runner = CliRunner()
    assert runner.invoke(cmd, ["--tracing-sample-ratio", "0.25"]).output == "0.25\n"
    result = runner.invoke(cmd, ["--tracing-sample-ratio", value])
    assert result.exit_code == 2
    assert f"Invalid value for '--tracing-sample-ratio': '{value}'" in result.output and error in result.output


def test_spec_writes_record_the_span_only_inside_a_traced_write(spans: InMemorySpanExporter) -> None:
    obj: dict[str, object] = {"metadata": {"name": "web"}}
    parent = tracing.parse_traceparent(TRACEPARENT)
    with tracing.span("routine reconcile"):
        tracing.record_on(obj)
    assert obj == {"metadata": {"name": "web"}}  # a controller's own root span does not stamp objects
    with tracing.span("create deployments", parent=parent, carry=True), tracing.span("storage.commit"):
        tracing.record_on(obj)
    value = obj["metadata"]["annotations"][tracing.TRACEPARENT_ANNOTATION]  # type: ignore[index]
    commit = next(s for s in spans.get_finished_spans() if s.name == "storage.commit")
    assert value == f"00-0af7651916cd43dd8448eb211c80319c-{commit.context.span_id:016x}-01"
    continued = tracing.object_traceparent(obj)
    assert continued is not None and continued.trace_id == parent.trace_id  # type: ignore[union-attr]


def test_member_clusters_never_record_trace_context(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "_annotate", False)
    obj: dict[str, object] = {"metadata": {}}
    with tracing.span("create deployments", parent=tracing.parse_traceparent(TRACEPARENT), carry=True):
        tracing.record_on(obj)
    assert obj == {"metadata": {}}


def test_log_lines_carry_trace_and_span_ids_while_a_span_is_active(spans: InMemorySpanExporter) -> None:
    formatter = JSONFormatter("server")
    record = logging.LogRecord("tmc", logging.INFO, __file__, 1, "hello", (), None)
    assert "trace_id" not in json.loads(formatter.format(record))
    with tracing.span("work", parent=tracing.parse_traceparent(TRACEPARENT)) as current:
        line = json.loads(formatter.format(record))
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == f"{current.get_span_context().span_id:016x}"


def test_downstream_copy_never_carries_the_trace_annotation() -> None:
    view = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {tracing.TRACEPARENT_ANNOTATION: TRACEPARENT, "team": "shop"}},
        "spec": {"replicas": 1},
    }
    out = downstream_object(view, "deployments", "key", "kcp-abc")
    assert out["metadata"]["annotations"] == {"team": "shop"}


class _GrpcCollector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.services: list[str] = []

    def Export(self, request: ExportTraceServiceRequest, context: object) -> ExportTraceServiceResponse:
        for rs in request.resource_spans:
            self.services += [kv.value.string_value for kv in rs.resource.attributes if kv.key == "service.name"]
            self.names += [s.name for ss in rs.scope_spans for s in ss.spans]
        return ExportTraceServiceResponse()


@pytest.fixture
def configured() -> Iterator[None]:
    yield
    tracing.shutdown()


def test_spans_reach_an_otlp_http_receiver(configured: None) -> None:
    receiver = OtlpReceiver()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "custom"}
        assert tracing.configure("tmc-hub", env=env, attributes={"tmc.cluster": "c1"})
        with tracing.span("work", parent=tracing.parse_traceparent(TRACEPARENT)):
            pass
        assert tracing.force_flush()
        [span] = receiver.trace("0af7651916cd43dd8448eb211c80319c")
        assert (span.name, span.service, span.resource["tmc.cluster"]) == ("work", "custom", "c1")
        assert span.parent_span_id == "b7ad6b7169203331"
    finally:
        receiver.close()


def test_spans_reach_an_otlp_grpc_receiver(configured: None) -> None:
    collector = _GrpcCollector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        assert tracing.configure("tmc-syncer", endpoint=f"http://127.0.0.1:{port}", sample_ratio=1.0, env=env)
        with tracing.span("workload-sync"):
            pass
        assert tracing.force_flush()
        assert collector.names == ["workload-sync"] and collector.services == ["tmc-syncer"]
    finally:
        server.stop(None)


def test_ratio_zero_records_new_traces_never_but_continues_sampled_ones(configured: None) -> None:
    receiver = OtlpReceiver()
    try:
        assert tracing.configure("tmc-hub", endpoint=receiver.endpoint, sample_ratio=0.0, env={})
        with tracing.span("new"):
            assert tracing.current_traceparent() is None
        with tracing.span("continued", parent=tracing.parse_traceparent(TRACEPARENT)):
            assert tracing.current_traceparent() is not None
        assert tracing.force_flush()
        assert [s.name for s in receiver.spans] == ["continued"]
    finally:
        receiver.close()


class _Recorder(Controller):
    name = "recorder"
    prefix = "/registry/things/"

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.seen: list[str | None] = []

    async def reconcile(self, key: str) -> Result | None:
        self.seen.append(tracing.current_traceparent())
        # A write made while continuing the object's trace records the reconcile's span on what it writes.
        await self.store.create(key + "-child", tracing_stamped({"metadata": {"name": "child"}}))
        return None


def tracing_stamped(obj: dict[str, Any]) -> dict[str, Any]:
    tracing.record_on(obj)
    return obj


def test_a_reconcile_continues_the_trace_its_object_carries(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            traced = {"metadata": {"name": "a", "annotations": {tracing.TRACEPARENT_ANNOTATION: TRACEPARENT}}}
            await store.create("/registry/things/a", traced)
            await store.create("/registry/things/b", {"metadata": {"name": "b"}})
            controller = _Recorder(store)
            await controller.traced_process("/registry/things/a")
            await controller.traced_process("/registry/things/b")
            sent = controller.seen
            child = store.get("/registry/things/a-child")
            untraced_child = store.get("/registry/things/b-child")
        finally:
            await store.close()
        assert child is not None and untraced_child is not None
        [continued, root] = [s for s in spans.get_finished_spans() if s.name == "reconcile recorder"]
        assert continued.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
        assert continued.parent is not None and continued.parent.span_id == 0xB7AD6B7169203331
        assert root.parent is None and root.context.trace_id != continued.context.trace_id
        assert root.attributes is not None and root.attributes["key"] == "/registry/things/b"
        # Requests made inside either reconcile named the span that was exported later, ids and all.
        assert sent == [tracing.format_traceparent(continued.context), tracing.format_traceparent(root.context)]
        stamped = child.obj["metadata"]["annotations"][tracing.TRACEPARENT_ANNOTATION]
        assert stamped == tracing.format_traceparent(continued.context)
        assert "annotations" not in untraced_child.obj["metadata"]  # a routine reconcile stamps nothing
        # A reconcile's writes are its own work, covered by its span: no commit spans of their own.
        assert [s.name for s in spans.get_finished_spans() if s.name == "storage.commit"] == []

    asyncio.run(main())


def test_a_member_cluster_traces_only_reconciles_that_continue_a_trace(
    spans: InMemorySpanExporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "reconcile_roots", False)

    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            await store.create("/registry/things/b", {"metadata": {"name": "b"}})
            controller = _Recorder(store)
            await controller.traced_process("/registry/things/b")
            assert controller.seen == [None] and store.get("/registry/things/b-child") is not None
        finally:
            await store.close()

    asyncio.run(main())
    assert spans.get_finished_spans() == ()


class _Idle(Controller):
    """Reconciles that find nothing to do, then one that fails."""

    name = "idle"
    prefix = "/registry/things/"
    fail = False

    async def reconcile(self, key: str) -> Result | None:
        if self.fail:
            raise RuntimeError("broken")
        return None


def test_a_reconcile_that_does_nothing_is_no_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    """A reconcile, continuing a trace or a trace of its own, is exported only when something happened in it: idle
    ones would be most of the hub's spans. A failing one is a span, with its error."""

    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            traced = {"metadata": {"name": "a", "annotations": {tracing.TRACEPARENT_ANNOTATION: TRACEPARENT}}}
            await store.create("/registry/things/a", traced)
            await store.create("/registry/things/b", {"metadata": {"name": "b"}})
            idle = _Idle(store)
            for _ in range(3):
                await idle.traced_process("/registry/things/a")
                await idle.traced_process("/registry/things/b")
            assert [s.name for s in spans.get_finished_spans()] == []
            idle.fail = True
            await idle.traced_process("/registry/things/a")
        finally:
            await store.close()
        [failed] = spans.get_finished_spans()
        assert failed.name == "reconcile idle" and failed.status.status_code.name == "ERROR"
        assert failed.parent is not None and failed.parent.span_id == 0xB7AD6B7169203331
        assert failed.start_time is not None and failed.end_time is not None and failed.start_time <= failed.end_time

    asyncio.run(main())


class _StatusWriter(Controller):
    """Writes its object back without recording a trace on it (as a status aggregation does)."""

    name = "status-writer"
    prefix = "/registry/things/"

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        assert entry is not None
        await self.store.update(key, {**entry.obj, "status": {"seen": True}})
        return None


def test_a_commit_is_a_span_only_inside_a_request_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    """A request's durable write is its `storage.commit` child; a reconcile's writes are part of its own span, and
    a reconcile continuing a trace that only wrote is still exported (the write is what happened in it)."""

    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            traced = {"metadata": {"name": "a", "annotations": {tracing.TRACEPARENT_ANNOTATION: TRACEPARENT}}}
            parent = tracing.parse_traceparent(TRACEPARENT)
            with tracing.span("create things", parent=parent, kind=tracing.SpanKind.SERVER, carry=True):
                await store.create("/registry/things/a", traced)
            with tracing.span("reconcile other"):
                await store.create("/registry/things/b", {"metadata": {"name": "b"}})
            await _StatusWriter(store).traced_process("/registry/things/a")
        finally:
            await store.close()
        finished = {s.name: s for s in spans.get_finished_spans()}
        assert sorted(finished) == ["create things", "reconcile other", "reconcile status-writer", "storage.commit"]
        commit, request = finished["storage.commit"], finished["create things"]
        assert commit.parent is not None and commit.parent.span_id == request.context.span_id
        assert commit.attributes is not None and commit.attributes["db.operation"] == "create"
        written = finished["reconcile status-writer"]
        assert written.parent is not None and written.parent.span_id == 0xB7AD6B7169203331

    asyncio.run(main())


def test_a_span_that_is_not_current_is_exported_but_never_named(spans: InMemorySpanExporter) -> None:
    """A member cluster's request span: recorded with its parent, failed by an error leaving it, but nothing inside
    it sees it (no `traceparent` to send on, no child)."""
    parent = tracing.parse_traceparent(TRACEPARENT)
    with tracing.span("create configmaps", parent=parent, kind=tracing.SpanKind.SERVER, current=False) as made:
        assert tracing.current_traceparent() is None
        made.set_attribute("http.response.status_code", 201)
    with pytest.raises(RuntimeError), tracing.span("delete configmaps", parent=parent, current=False):
        raise RuntimeError("broken")
    ok, failed = spans.get_finished_spans()
    assert ok.parent is not None and ok.parent.span_id == 0xB7AD6B7169203331
    assert ok.attributes is not None and ok.attributes["http.response.status_code"] == 201
    assert failed.status.status_code.name == "ERROR" and failed.events[0].name == "exception"


def test_requests_inside_a_span_send_its_traceparent(spans: InMemorySpanExporter) -> None:
    with tracing.span("workload-sync", parent=tracing.parse_traceparent(TRACEPARENT)) as made:
        sent = tracing.current_traceparent()
        assert sent == tracing.format_traceparent(made.get_span_context())
        assert tracing.current_traceparent() == sent  # the same value for every request of the span
    assert sent is not None and sent.startswith("00-0af7651916cd43dd8448eb211c80319c-") and sent.endswith("-01")
