"""W3C trace context as text: the `traceparent` header's value, and the trace annotation an object carries (the
same value under `tracing.k8s.io/traceparent`). Parsed for every traced request and object read, so parsing skips
what the API's SpanContext constructor re-checks and caches an object's value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

TRACEPARENT_ANNOTATION = "tracing.k8s.io/traceparent"


def parse_traceparent(value: object) -> SpanContext | None:
    """The remote span context of a W3C `traceparent` value, or None when it is absent or malformed."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    # What SpanContext(trace_id, span_id, is_remote=True, trace_flags=...) makes, without its range checks (32 and
    # 16 hex digits are in range) and a new TraceFlags per call: parsed for every traced request.
    return tuple.__new__(SpanContext, (trace_id, span_id, True, TRACE_FLAGS[flags & 0x01], DEFAULT_TRACE_STATE, True))


# Flags by sampled bit (0, 1).
TRACE_FLAGS = (TraceFlags(TraceFlags.DEFAULT), TraceFlags(TraceFlags.SAMPLED))


def format_traceparent(ctx: SpanContext) -> str:
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags) & 0x01:02x}"


def object_traceparent(obj: Mapping[str, Any] | None) -> SpanContext | None:
    """The span context an object's trace annotation records, if any."""
    if not obj:
        return None
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRACEPARENT_ANNOTATION)
    if not isinstance(value, str):
        return None
    # An object's annotation is read by each reconcile, sync and status report of it: parsed once.
    ctx = _PARSED.get(value)
    if ctx is None:
        ctx = parse_traceparent(value)
        if ctx is None:
            return None
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        _PARSED[value] = ctx
    return ctx


_PARSED: dict[str, SpanContext] = {}
