"""A lightweight implementation of the OpenTelemetry tracing API: TracerProvider, Tracer and Span.

The SDK's span costs about 60 us of CPU on an asyncio loop from start to end (BoundedAttributes takes a lock and
runs ABC isinstance checks per attribute, the sampler chain builds result objects, `end` copies the span into a
ReadableSpan). A syncer makes one per downstream write, so with every trace sampled that was most of its extra
CPU. This span is a slotted object with a plain attribute dict, made only once the sampling decision says it is
recorded (otherwise it is the API's NonRecordingSpan), and handed to a queue when it ends (`span_export`).

Everything that uses the API keeps working: `trace.set_span_in_context`, `trace.get_current_span`, `use_span`,
`start_as_current_span`, exceptions recorded as events the way the SDK records them.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util import types

from tmc.observability.trace_context import format_traceparent

if TYPE_CHECKING:
    from opentelemetry.util._decorator import _AgnosticContextManager  # the API's declared return type

log = logging.getLogger("tmc.tracing")

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_TRACE_ID_LIMIT = (1 << 64) - 1
# Attribute values kept as they are; anything else is cleaned as the API's rules say (sequences become tuples).
_PLAIN = frozenset((str, bool, int, float, bytes, type(None)))
# The SDK's default span limits (OTEL_SPAN_*_COUNT_LIMIT): attributes per span, events and links per span.
ATTRIBUTE_LIMIT = 128
EVENT_LIMIT = 128
LINK_LIMIT = 128


class Ids(Protocol):
    def generate_span_id(self) -> int: ...

    def generate_trace_id(self) -> int: ...


class Sink(Protocol):
    def on_end(self, span: LightSpan | LeafSpan) -> None: ...

    def force_flush(self, timeout: float = 30.0) -> bool: ...

    def shutdown(self) -> None: ...


def ratio_bound(ratio: float) -> int:
    """TraceIdRatioBased's bound: a new trace is sampled when the low 64 bits of its id are below it."""
    return round(ratio * (_TRACE_ID_LIMIT + 1))


def clean_value(value: Any) -> Any:
    """An attribute value as the API allows it: primitives as they are, sequences as tuples, mappings as dicts,
    anything else as its string (with a warning, as the SDK does)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str | bool | int | float | bytes):
        return value
    if isinstance(value, Sequence):
        return tuple(clean_value(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): clean_value(v) for k, v in value.items() if k}
    log.warning("invalid attribute value of type %s; its string is recorded", type(value).__name__)
    return str(value)


class Event:
    __slots__ = ("attributes", "name", "timestamp")

    def __init__(self, name: str, attributes: dict[str, Any], timestamp: int) -> None:
        self.name = name
        self.attributes = attributes
        self.timestamp = timestamp


class LightSpan(trace.Span):
    """A recording span. Read by the exporter after `end` (the fields are public for it), written only before."""

    __slots__ = (
        "attributes",
        "context",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "events",
        "kind",
        "links",
        "name",
        "parent",
        "scope",
        "sink",
        "start_time",
        "status",
        "traceparent_value",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        links: list[Link],
        start_time: int,
        scope: int,
        sink: Sink,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.links = links
        self.start_time = start_time
        self.end_time: int | None = None
        self.events: list[Event] = []
        self.status = _UNSET
        self.scope = scope
        self.sink = sink
        self.dropped_attributes = self.dropped_events = self.dropped_links = 0
        self.traceparent_value: str | None = None

    def traceparent(self) -> str:
        """The W3C `traceparent` of this span, formatted once: every request made inside it sends it."""
        value = self.traceparent_value
        if value is None:
            value = self.traceparent_value = format_traceparent(self.context)
        return value

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            log.warning("span %r ended twice", self.name)
            return
        self.end_time = end_time or time.time_ns()
        self.sink.on_end(self)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self.end_time is not None or not key:
            return
        attributes = self.attributes
        if key not in attributes and len(attributes) >= ATTRIBUTE_LIMIT:
            del attributes[next(iter(attributes))]  # the oldest goes, as with the SDK's BoundedAttributes
            self.dropped_attributes += 1
        attributes[key] = value if type(value) in _PLAIN else clean_value(value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        if len(self.events) >= EVENT_LIMIT:
            self.events.pop(0)
            self.dropped_events += 1
        cleaned = {str(k): clean_value(v) for k, v in attributes.items() if k} if attributes else {}
        self.events.append(Event(name, cleaned, timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_time is not None or not context.is_valid:
            return
        if len(self.links) >= LINK_LIMIT:
            self.dropped_links += 1
            return
        self.links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # The SDK's rules: an OK status is final; a Status object carries its own description.
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module, qualname = type(exception).__module__, type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def __repr__(self) -> str:
        return f"LightSpan({self.name!r}, trace_id={self.context.trace_id:032x}, span_id={self.context.span_id:016x})"


# The `traceparent` of the leaf span that is current, for the requests made inside it (see LeafSpan).
LEAF_TRACEPARENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("tmc_leaf_traceparent", default=None)


class LeafSpan:
    """A sampled span that nothing in its process names but the requests made inside it: a syncer's downstream write,
    a child of the object's trace annotation (a remote parent) or, for an object in no trace, the root of a new trace
    (`parent` None, `trace_id` given). Its `traceparent` reaches those requests through LEAF_TRACEPARENT, not through
    an OpenTelemetry context, and it is queued as these few fields, encoded on the export thread. A syncer makes one
    per downstream object, and the LightSpan's path (a SpanContext of its own, a context attached and detached, the
    header formatted from it) was most of what tracing a write cost. One that fails becomes a LightSpan, with the
    exception recorded as any span records it. Nothing inside a leaf may start spans: they would not be its
    children."""

    __slots__ = (
        "attributes",
        "end_time",
        "kind",
        "name",
        "parent",
        "scope",
        "sink",
        "span_id",
        "start_time",
        "token",
        "trace_id",
    )

    def __init__(
        self,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        scope: int,
        sink: Sink,
        trace_id: int = 0,
    ) -> None:
        self.name = name
        self.parent = parent
        self.trace_id = parent.trace_id if parent is not None else trace_id
        self.kind = kind
        self.attributes = attributes
        self.scope = scope
        self.sink = sink

    def __enter__(self) -> None:
        span_id = self.span_id = random_span_id()
        self.token = LEAF_TRACEPARENT.set(f"00-{self.trace_id:032x}-{span_id:016x}-01")
        self.start_time = time.time_ns()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        LEAF_TRACEPARENT.reset(self.token)
        self.end_time = time.time_ns()
        if error is None:
            self.sink.on_end(self)
            return
        parent = self.parent
        state = parent.trace_state if parent is not None else DEFAULT_TRACE_STATE
        own = tuple.__new__(SpanContext, (self.trace_id, self.span_id, False, _SAMPLED, state, True))
        made = LightSpan(self.name, own, parent, self.kind, self.attributes, [], self.start_time, self.scope, self.sink)
        mark_failed(made, error)
        made.end(self.end_time)


def random_span_id() -> int:
    return random.getrandbits(64) or 1


def mark_failed(target: trace.Span, error: BaseException) -> None:
    """An exception recorded on a span, and its status set to ERROR with the exception's type and message."""
    target.record_exception(error)
    target.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


class LightTracer(trace.Tracer):
    """Makes spans with ParentBased(TraceIdRatioBased(ratio)) sampling: a child follows its parent's sampled flag
    (local or remote); a root is sampled when its trace id is below the ratio's bound (a bound of 0 is ALWAYS_OFF).
    The decision comes first: a span that is not sampled is a NonRecordingSpan with fresh ids and nothing else."""

    def __init__(self, provider: LightTracerProvider, scope: int) -> None:
        self._provider = provider
        self.scope = scope

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        valid = [link for link in links if link.context.is_valid][:LINK_LIMIT] if links else []
        return self.start_child(name, parent, kind, attributes, valid, start_time)

    def start_child(
        self,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: list[Link] | None = None,
        start_time: int | None = None,
    ) -> trace.Span:
        """`start_span` with the parent's SpanContext given (None: the current span's), and links already valid:
        no Context is built to carry the parent, which is most of what the API's path costs."""
        provider = self._provider
        if parent is None:
            parent = trace.get_current_span().get_span_context()
        ids = provider.ids
        if parent is not None and parent.is_valid:
            trace_id, sampled, state = parent.trace_id, parent.trace_flags & 0x01, parent.trace_state
        else:
            trace_id = ids.generate_trace_id()
            sampled, state, parent = trace_id & _TRACE_ID_LIMIT < provider.bound, DEFAULT_TRACE_STATE, None
        if not sampled:
            return NonRecordingSpan(SpanContext(trace_id, ids.generate_span_id(), False, _NOT_SAMPLED, state))
        # SpanContext's own constructor re-checks the ids' ranges; generated ids are valid by construction.
        own = tuple.__new__(SpanContext, (trace_id, ids.generate_span_id(), False, _SAMPLED, state, True))
        kept: dict[str, Any] = {}
        if attributes:
            for key, value in attributes.items():
                if key:
                    kept[key] = value if type(value) in _PLAIN else clean_value(value)
        made = LightSpan(
            name,
            own,
            parent,
            kind,
            kept,
            links or [],
            start_time or time.time_ns(),
            self.scope,
            provider.sink,
        )
        if len(kept) > ATTRIBUTE_LIMIT:  # the first ones go, as when they are set one by one
            made.dropped_attributes = len(kept) - ATTRIBUTE_LIMIT
            for key in list(kept)[: made.dropped_attributes]:
                del kept[key]
        return made

    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _AgnosticContextManager[trace.Span]:
        made = self.start_span(name, context, kind, attributes, links, start_time)
        return trace.use_span(
            made,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        )


class LightTracerProvider(trace.TracerProvider):
    """Tracers sharing one sampler, id generator and sink. `scopes` lists the instrumentation scopes (name,
    version, schema URL) by the index a span carries, for the encoder."""

    def __init__(
        self,
        ids: Ids,
        sink: Sink,
        ratio: float,
        roots: bool = True,
        scopes: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        self.ids = ids
        self.sink = sink
        # Without roots (a member cluster) the process only continues traces: ALWAYS_OFF for new ones.
        self.bound = ratio_bound(ratio) if roots else 0
        # Shared with the sink's encoder when given: it names a span's scope by its index here.
        self.scopes = scopes if scopes is not None else []
        self._tracers: dict[tuple[str, str | None, str | None], LightTracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> LightTracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        tracer = self._tracers.get(key)
        if tracer is None:
            self.scopes.append(key)
            tracer = self._tracers[key] = LightTracer(self, len(self.scopes) - 1)
        return tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.sink.force_flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self.sink.shutdown()
