"""OpenTelemetry tracing for every tmc process: setup from flags and the standard `OTEL_*` variables, and the few
helpers the hub, controllers and syncers use to continue one trace across processes.

Off by default. While off, `enabled` is False and every call site checks it before doing anything else, so the cost
on a hot path is one module attribute read; the SDK and exporters are imported only by `configure`. On, spans over
OTLP/HTTP are TMC's own light implementation of the API (observability/spans.py, a fraction of the SDK span's
cost); over gRPC they are the SDK's.

The trace crosses processes through objects: a spec write made inside a sampled span records that span's context in
the `tracing.k8s.io/traceparent` annotation (the key KEP-5915 proposes), and whoever acts on the object next (a
controller's reconcile, a syncer's downstream write) starts its span as a child of it. The annotation is the W3C
`traceparent` header value (~55 bytes); a status write leaves it as it was, and syncers never copy it downstream.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext
from opentelemetry.trace import SpanKind as SpanKind

from tmc.observability.spans import (
    LEAF_TRACEPARENT,
    LeafSpan,
    LightSpan,
    LightTracerProvider,
    mark_failed,
    random_span_id,
    ratio_bound,
)
from tmc.observability.trace_context import TRACE_FLAGS
from tmc.observability.trace_context import TRACEPARENT_ANNOTATION as TRACEPARENT_ANNOTATION
from tmc.observability.trace_context import format_traceparent as format_traceparent
from tmc.observability.trace_context import object_traceparent as object_traceparent
from tmc.observability.trace_context import parse_traceparent as parse_traceparent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from tmc.observability.spans import Sink

    _Provider = TracerProvider | LightTracerProvider

TRACEPARENT_HEADER = "traceparent"
PROTOCOLS = ("http/protobuf", "grpc")
# Short enough that a stopping process does not hang on an unreachable collector at exit.
EXPORT_TIMEOUT = 5.0

# Checked before any span is made: False means tracing costs one attribute read.
enabled = False
# Whether this process records trace context on the objects it writes: the hub does; a simulated member cluster,
# whose objects are the syncers' downstream copies, must not.
_annotate = False
# Whether a reconcile that continues no trace is a span of its own (a new trace). The hub's are; a simulated member
# cluster's controllers stand in for a real member's, which trace nothing of their own (only their API requests).
reconcile_roots = False
# Whether this process starts traces of its own (by its sample ratio) or only continues those it is handed: a member
# cluster's are only continued, so its requests without a trusted `traceparent` need no span at all.
root_spans = False
# Whether storage commits are spans of their own (inside the write that asked for them). The hub's are; a member
# cluster's request span says enough, and each extra span per downstream object is paid on every member.
commit_spans = False
_provider: _Provider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()
# The light tracer's `start_child` (a span from its parent's SpanContext, no Context built to carry it); None with
# the SDK's tracer (gRPC).
_start_child: Callable[..., trace.Span] | None = None
# The root sampler's bound (TraceIdRatioBased's; 0 when the process starts no traces), for deferred root spans.
_root_bound = 0
# The light tracer's sink and the scope index of its "tmc" tracer, for leaf spans; None with the SDK's tracer.
_leaf: tuple[Sink, int] | None = None

log = logging.getLogger("tmc.tracing")
# Whether spec writes made now record the active span on the object. Set by the spans that belong to a traced write
# (a hub request, a reconcile or sync that continues an object's trace); a controller's own root spans leave it
# unset, so routine reconciles never stamp objects.
_carry: contextvars.ContextVar[bool] = contextvars.ContextVar("tmc_tracing_carry", default=False)
# The deferred span (see `deferred_span`) that is current, if any: it becomes a real span once something inside it
# needs it (a child span, or an object recording its context).
_deferred: contextvars.ContextVar[_Deferred | None] = contextvars.ContextVar("tmc_tracing_deferred", default=None)
# The span id the next span made by this thread must have (a deferred span's, chosen when it began).
_forced_span_id: contextvars.ContextVar[int] = contextvars.ContextVar("tmc_tracing_span_id", default=0)
# The trace id the next new trace made by this thread must have (a deferred root span's).
_forced_trace_id: contextvars.ContextVar[int] = contextvars.ContextVar("tmc_tracing_trace_id", default=0)


class TracingConfigError(ValueError):
    """A tracing setting that cannot be used (a malformed ratio or protocol); its message is one line."""


def parse_ratio(text: str, source: str) -> float:
    """A sampling ratio in [0, 1]; TracingConfigError naming `source` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise TracingConfigError(f"{source}: {text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise TracingConfigError(f"{source}: {text!r} is outside [0, 1]")
    return value


def resolve_endpoint(flag: str | None, env: Mapping[str, str]) -> tuple[str, bool] | None:
    """(endpoint, is_signal_specific) from the flag, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    OTEL_EXPORTER_OTLP_ENDPOINT, in that order; None when none is set (tracing stays off)."""
    if flag:
        return flag, False
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], True
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_ENDPOINT"], False
    return None


def resolve_protocol(env: Mapping[str, str]) -> str:
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
    protocol = protocol or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return protocol


def http_traces_url(endpoint: str, signal_specific: bool) -> str:
    """The URL the HTTP exporter posts to: a base endpoint gets `/v1/traces`, as the OTLP spec says."""
    if signal_specific:
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


@dataclass(frozen=True)
class Settings:
    endpoint: str
    signal_specific: bool  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the URL as it is
    protocol: str
    ratio: float
    timeout: float  # seconds per export attempt


def settings(endpoint: str | None, sample_ratio: float | None, env: Mapping[str, str]) -> Settings | None:
    """The tracing settings from flags and environment; None when no endpoint is set (tracing stays off).
    TracingConfigError for a malformed OTEL_TRACES_SAMPLER_ARG, protocol or timeout."""
    where = resolve_endpoint(endpoint, env)
    if where is None:
        return None
    ratio = sample_ratio
    if ratio is None:
        arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        ratio = parse_ratio(arg, "OTEL_TRACES_SAMPLER_ARG") if arg else 1.0
    timeout = _timeout(env.get("OTEL_EXPORTER_OTLP_TIMEOUT", ""))
    return Settings(where[0], where[1], resolve_protocol(env), ratio, timeout)


def _timeout(text: str) -> float:
    """OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds) in seconds; EXPORT_TIMEOUT when unset."""
    if not text.strip():
        return EXPORT_TIMEOUT
    try:
        value = float(text) / 1000
    except ValueError:
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT: {text!r} is not a number of milliseconds") from None
    if not value > 0:
        raise TracingConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT: {text!r} must be positive")
    return value


def configure(
    service_name: str,
    *,
    endpoint: str | None = None,
    sample_ratio: float | None = None,
    attributes: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    annotate: bool = False,
    root_reconciles: bool = False,
    roots: bool = True,
    commits: bool = True,
) -> bool:
    """Start exporting spans when an endpoint is given by flag or environment; True when tracing is on.

    Raises TracingConfigError for settings that can never work (a malformed OTEL_TRACES_SAMPLER_ARG or protocol);
    an unreachable endpoint is only a logged warning: tracing must never stop the process it observes."""
    global enabled, _annotate, reconcile_roots, root_spans, commit_spans, _provider, _tracer, _start_child, _root_bound
    global _leaf
    env = os.environ if env is None else env
    chosen = settings(endpoint, sample_ratio, env)
    if chosen is None:
        return False
    url, protocol, ratio = chosen.endpoint, chosen.protocol, chosen.ratio
    from opentelemetry.sdk.resources import Resource

    from tmc.observability.grpc_tracing import grpc_provider

    # OTEL_SERVICE_NAME wins over the process's own name, as the SDK's resource detection would have it.
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name, **(attributes or {})})
    provider: _Provider
    if protocol == "grpc":
        provider = grpc_provider(url, chosen.timeout, resource, ratio, roots, SpanIds())
    else:
        url = http_traces_url(url, chosen.signal_specific)
        provider = _light_provider(url, chosen.timeout, resource.attributes, ratio, roots, env)
    _provider = provider
    _tracer = provider.get_tracer("tmc")
    _start_child = getattr(_tracer, "start_child", None)
    # The same tracer (the provider keeps one per scope); the light provider's is typed as a LightTracer.
    _leaf = (provider.sink, provider.get_tracer("tmc").scope) if isinstance(provider, LightTracerProvider) else None
    _root_bound = ratio_bound(ratio) if roots else 0
    _annotate = annotate
    reconcile_roots = root_reconciles
    root_spans = roots
    commit_spans = commits
    enabled = True
    _probe(url)
    log.info("tracing on", extra={"endpoint": url, "protocol": protocol, "sample_ratio": ratio})
    return True


def _light_provider(
    url: str, timeout: float, resource: Mapping[str, Any], ratio: float, roots: bool, env: Mapping[str, str]
) -> LightTracerProvider:
    """TMC's own spans (observability/spans.py), batched by a thread of their own and posted with the OTLP/HTTP
    exporter's transport (its OTEL_EXPORTER_OTLP_* headers, compression, certificates and retries)."""
    from tmc.observability.otlp_encoding import FastOTLPSpanExporter, encode_light_spans
    from tmc.observability.span_export import BatchExporter, BatchSettings

    transport = FastOTLPSpanExporter(endpoint=url, timeout=timeout)
    scopes: list[tuple[str, str | None, str | None]] = []
    batches = BatchExporter(
        lambda spans: encode_light_spans(spans, resource, scopes),
        transport.send,
        url,
        BatchSettings.from_env(env),
        close=transport.shutdown,
    )
    provider = LightTracerProvider(SpanIds(), batches, ratio, roots=roots, scopes=scopes)
    atexit.register(provider.shutdown)  # spans still queued leave at exit, as the SDK's provider does
    return provider


def shutdown() -> None:
    """Flush what is buffered and stop exporting (tests; the SDK also does this at exit)."""
    global enabled, _annotate, reconcile_roots, root_spans, commit_spans, _provider, _tracer, _start_child, _root_bound
    global _leaf
    provider, _provider = _provider, None
    _root_bound = 0
    enabled = _annotate = reconcile_roots = root_spans = commit_spans = False
    _tracer = trace.NoOpTracer()
    _start_child = _leaf = None
    if provider is not None:
        provider.shutdown()


def force_flush(timeout: float = 5.0) -> bool:
    return _provider.force_flush(int(timeout * 1000)) if _provider is not None else True


def _probe(url: str) -> None:
    """Warn once, off the caller's thread, when the collector cannot be reached: spans would be dropped."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

    def check() -> None:
        try:
            socket.create_connection((host, port), timeout=EXPORT_TIMEOUT).close()
        except OSError as e:
            log.warning(
                "tracing endpoint unreachable; spans are dropped until it answers",
                extra={"endpoint": url, "error": str(e)},
            )

    threading.Thread(target=check, name="tracing-probe", daemon=True).start()


class SpanIds:
    """The SDK's random ids (its IdGenerator's methods, without importing the SDK with this module), except that a
    deferred span, made after the fact, gets the id its children already name."""

    def generate_span_id(self) -> int:
        return _forced_span_id.get() or random_span_id()

    def generate_trace_id(self) -> int:
        return _forced_trace_id.get() or random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


# The exporters log every failed attempt with a traceback; the light path's BatchExporter and grpc_tracing's
# _WarningExporter say it once per outage instead.
for _name in ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.proto.grpc"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


# ---------------------------------------------------------------- trace context


def current_traceparent() -> str | None:
    """The `traceparent` of the active span when it is sampled; None otherwise (or when tracing is off)."""
    if not enabled:
        return None
    leaf = LEAF_TRACEPARENT.get()
    if leaf is not None:
        return leaf
    current = trace.get_current_span()
    if type(current) is LightSpan:
        return current.traceparent()  # sampled, and formatted once per span
    ctx = current.get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return format_traceparent(ctx)


def record_on(obj: dict[str, Any]) -> None:
    """Record the active sampled span's context on an object about to be written (spec writes only), when that span
    belongs to a traced write."""
    if not (_annotate and _carry.get()):
        return
    value = current_traceparent()
    if value is None:
        return
    _use_deferred()
    md = obj.setdefault("metadata", {})
    annotations = md.get("annotations")
    if not isinstance(annotations, dict):
        annotations = md["annotations"] = {}
    annotations[TRACEPARENT_ANNOTATION] = value


def span(
    name: str,
    *,
    parent: SpanContext | None = None,
    links: Sequence[SpanContext] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    carry: bool | None = None,
    current: bool = True,
) -> _Scope:
    """A current span named `name`: a child of `parent` when given (a remote context from a header or an
    annotation), else of the active span. Links are passed at start, where samplers can see them. `carry` says
    whether spec writes inside it record it on the object (None: as the enclosing span says). `current=False` makes
    a span that is not made the active one for its block (nothing inside it can name it: no child spans, no
    `traceparent` sent on, no trace ids in log lines), for a process that only records its requests, at a few
    microseconds less per span."""
    if parent is None:
        _use_deferred()
    start_child = _start_child
    if start_child is not None:
        made = start_child(name, parent, kind, attributes, [Link(c) for c in links if c.is_valid] if links else None)
    else:
        ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        made = _tracer.start_span(
            name, context=ctx, kind=kind, attributes=attributes, links=[Link(c) for c in links] or None
        )
    return _Scope(made, carry) if current else _Detached(made)


def leaf_span(
    name: str, parent: SpanContext | None, kind: SpanKind, attributes: dict[str, Any]
) -> contextlib.AbstractContextManager[Any]:
    """A span for one write that names nothing in this process but the requests made inside it (spans.LeafSpan: a
    fraction of a current span's cost): a child of a sampled remote `parent` (an object's trace annotation), or,
    when there is none and no span is active here, the root of a new trace at the sample ratio (an object no traced
    write changed, the common case in a burst). Otherwise, or with the SDK's tracer, it is an ordinary current span."""
    leaf = _leaf
    if leaf is None:
        return span(name, parent=parent, kind=kind, attributes=attributes)
    sink, scope = leaf
    if parent is not None:
        if not parent.trace_flags & 0x01:
            return span(name, parent=parent, kind=kind, attributes=attributes)
        return LeafSpan(name, parent, kind, attributes, scope, sink)
    if _deferred.get() is not None or trace.get_current_span() is not trace.INVALID_SPAN:
        return span(name, parent=None, kind=kind, attributes=attributes)
    trace_id, sampled = _new_trace()
    if not sampled:
        return _UNTRACED  # a trace not sampled: nothing to record and nothing to send on
    return LeafSpan(name, None, kind, attributes, scope, sink, trace_id)


_UNTRACED = contextlib.nullcontext()


class _Scope:
    """The span made current for a `with` block, and ended after it; an exception leaving the block marks it
    failed. A class rather than a generator context manager: a few microseconds less per span."""

    __slots__ = ("attached", "carry", "span", "token")

    def __init__(self, made: trace.Span, carry: bool | None) -> None:
        self.span = made
        self.carry = carry

    def __enter__(self) -> trace.Span:
        self.attached = otel_context.attach(trace.set_span_in_context(self.span))
        self.token = _carry.set(self.carry) if self.carry is not None else None
        return self.span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        current = self.span
        if error is not None and current.is_recording():
            mark_failed(current, error)
        if self.token is not None:
            _carry.reset(self.token)
        otel_context.detach(self.attached)
        current.end()


class _Detached(_Scope):
    """A span ended after a `with` block, marked failed by an exception leaving it, but never the active span."""

    __slots__ = ()

    def __init__(self, made: trace.Span) -> None:
        self.span = made

    def __enter__(self) -> trace.Span:
        return self.span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is not None and self.span.is_recording():
            mark_failed(self.span, error)
        self.span.end()


def commit_span_wanted() -> bool:
    """Whether a storage commit now is a span of its own: only directly inside an API request's span, where it tells
    the request's own time from its durable write's. A reconcile's writes are its own work, and its span covers them
    (a deferred reconcile span is made because of the write, as when its commit was a child span)."""
    current = trace.get_current_span()
    if getattr(current, "kind", None) is SpanKind.SERVER and current.is_recording():
        return True
    _use_deferred()
    return False


class _Deferred:
    __slots__ = ("context", "error", "used")

    def __init__(self, context: SpanContext) -> None:
        self.context = context
        self.used = False
        self.error: BaseException | None = None


def record_error(error: BaseException) -> None:
    """The current span failed with `error` (handled by the caller, so no exception leaves the span): it is marked
    so, and a deferred span is made."""
    marker = _current_deferred()
    if marker is not None:
        marker.used, marker.error = True, error
        return
    current = trace.get_current_span()
    if current.is_recording():
        mark_failed(current, error)


def _current_deferred() -> _Deferred | None:
    """The deferred span, when it is the current span (not merely an ancestor of it)."""
    marker = _deferred.get()
    if marker is not None and trace.get_current_span().get_span_context() is marker.context:
        return marker
    return None


def _use_deferred() -> None:
    """Something is about to name the current span: if it is a deferred one, it must now be made."""
    marker = _current_deferred()
    if marker is not None:
        marker.used = True


@contextlib.contextmanager
def deferred_span(
    name: str, *, parent: SpanContext | None, attributes: Mapping[str, Any], carry: bool = True
) -> Iterator[None]:
    """A child span of `parent` (None: the root of a new trace, sampled at the process's ratio) that is exported
    only if something happened inside it: a child span, a write, or an exception. Most reconciles find nothing to do
    (an object's status aggregation runs on every change of the object); their spans would be a third of the hub's
    and say nothing. `carry`: whether spec writes inside it record it on the objects they write.

    Until it is needed the span is only a context (a trace id and a span id chosen now); once needed it is made at
    the end with the start time and those ids, so children made meanwhile name their real parent."""
    if parent is None:
        context = _new_root()
        if not context.trace_flags.sampled:  # what the tracer would have made: a span that records nothing
            with _Scope(NonRecordingSpan(context), carry):
                yield
            return
    elif not parent.trace_flags.sampled:
        with span(name, parent=parent, attributes=attributes, carry=carry):
            yield
        return
    else:
        context = SpanContext(
            parent.trace_id,
            random_span_id(),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
    marker = _Deferred(context)
    started = time.time_ns()
    tokens = (_deferred.set(marker), _carry.set(carry))
    attached = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(context)))
    error: BaseException | None = None
    try:
        yield
    except BaseException as e:
        error = e
        raise
    finally:
        otel_context.detach(attached)
        _carry.reset(tokens[1])
        _deferred.reset(tokens[0])
        if marker.used or error is not None:
            _make_deferred(name, parent, marker, started, attributes, error or marker.error)


def _new_trace() -> tuple[int, bool]:
    """A new trace id, and whether the root sampler records the trace (TraceIdRatioBased's rule: the low 64 bits of
    the id below the ratio's bound)."""
    trace_id = random.getrandbits(128) or 1
    return trace_id, trace_id & 0xFFFFFFFFFFFFFFFF < _root_bound


def _new_root() -> SpanContext:
    """The context of a new trace's root span, sampled as the root sampler decides."""
    trace_id, sampled = _new_trace()
    return SpanContext(trace_id, random_span_id(), is_remote=False, trace_flags=TRACE_FLAGS[sampled])


def _make_deferred(
    name: str,
    parent: SpanContext | None,
    marker: _Deferred,
    started: int,
    attributes: Mapping[str, Any],
    error: BaseException | None,
) -> None:
    # The span gets the ids its children already name: its span id, and for a root its trace id.
    token = _forced_span_id.set(marker.context.span_id)
    root = _forced_trace_id.set(marker.context.trace_id) if parent is None else None
    try:
        made = _tracer.start_span(
            name,
            context=trace.set_span_in_context(NonRecordingSpan(parent))
            if parent is not None
            else otel_context.Context(),
            attributes=attributes,
            start_time=started,
        )
    finally:
        if root is not None:
            _forced_trace_id.reset(root)
        _forced_span_id.reset(token)
    if error is not None:
        mark_failed(made, error)
    made.end()


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the active recording span, for log lines."""
    leaf = LEAF_TRACEPARENT.get()
    if leaf is not None:
        return leaf[3:35], leaf[36:52]
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
