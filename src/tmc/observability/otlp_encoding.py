"""Finished spans as an OTLP `ExportTraceServiceRequest`, written straight to protobuf wire bytes.

The OTLP exporter's own encoder builds a protobuf message object per span, attribute and value, and hashes each
span's Resource (a JSON dump of its attributes) to group them: about 30 us per span, as much again as the SDK takes
to make the span. With every span sampled that is a third of a syncer's extra CPU. This encoder writes the same
message (tests/unit/test_otlp_encoding.py decodes both and compares them) in about a fifth of the time: the
Resource and scope headers are encoded once per batch, keyed by identity, and a span is a handful of byte joins.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from tmc.observability.spans import LeafSpan, LightSpan

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext

# SpanFlags of the OTLP proto: the parent's is_remote is known (always), and it is true.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_KIND = {
    "INTERNAL": b"\x30\x01",
    "SERVER": b"\x30\x02",
    "CLIENT": b"\x30\x03",
    "PRODUCER": b"\x30\x04",
    "CONSUMER": b"\x30\x05",
}
_FIXED32 = struct.Struct("<I")
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _delimited(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes and embedded messages."""
    n = len(payload)
    return _tag(field, 2) + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _string(field: int, text: str | None) -> bytes:
    return _delimited(field, text.encode()) if text else b""


def _uint(field: int, value: int) -> bytes:
    return _tag(field, 0) + _varint(value) if value else b""


def _any_value(value: Any) -> bytes:
    """An AnyValue; the SDK has already cleaned attribute values to these types."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _delimited(1, value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement, ten bytes if negative
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _delimited(7, value)
    if isinstance(value, Sequence):
        return _delimited(5, b"".join(_delimited(1, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _delimited(6, b"".join(_delimited(1, _key_value(str(k), v)) for k, v in value.items()))
    return b""  # None: an empty AnyValue, as the library writes it


def _key_value(key: str, value: Any) -> bytes:
    return _delimited(1, key.encode()) + _delimited(2, _any_value(value))


# Encoded attributes by (field, key, type, value): the same verbs, resources, namespaces and codes recur in almost
# every span, so most attributes are one dictionary lookup. Bounded; cleared when full.
_ENCODED: dict[tuple[int, str, type, Any], bytes] = {}
_ENCODED_MAX = 8192


def _attributes(field: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        kind = type(value)
        cacheable = kind is str or kind is int or kind is bool  # not float: 0.0 and -0.0 are equal keys
        ident = (field, key, kind, value) if cacheable else None
        encoded = _ENCODED.get(ident) if ident is not None else None
        if encoded is None:
            encoded = _delimited(field, _key_value(key, value))
            if ident is not None:
                if len(_ENCODED) >= _ENCODED_MAX:
                    _ENCODED.clear()
                _ENCODED[ident] = encoded
        parts.append(encoded)
    return b"".join(parts)


def _flags(parent: SpanContext | None) -> bytes:
    """Field 16 (flags, fixed32): whether the parent is remote is always known."""
    return _REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT


_LOCAL_PARENT = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE)
_REMOTE_PARENT = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE | _IS_REMOTE)
_NAMES: dict[str, bytes] = {}  # encoded span names (field 5); a process has a few dozen


def _name(name: str) -> bytes:
    encoded = _string(5, name)
    if len(_NAMES) < 1024:
        _NAMES[name] = encoded
    return encoded


def _trace_state(state: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in state.items()) if state else ""


def encode_span(span: ReadableSpan) -> bytes:
    ctx = span.get_span_context()
    assert ctx is not None  # a finished SDK span always has one
    parent = span.parent
    name = _NAMES.get(span.name) or _name(span.name)
    parts = [
        b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
        _string(3, _trace_state(ctx.trace_state)),
        b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent is not None else b"",
        name,
        _KIND[span.kind.name],
        b"\x39" + _FIXED64.pack(span.start_time or 0),
        b"\x41" + _FIXED64.pack(span.end_time or 0),
        _attributes(9, span.attributes),
        _uint(10, span.dropped_attributes),
    ]
    for event in span.events:
        body = b"\x09" + _FIXED64.pack(event.timestamp) + _string(2, event.name)
        body += _attributes(3, event.attributes) + _uint(4, event.dropped_attributes)
        parts.append(_delimited(11, body))
    parts.append(_uint(12, span.dropped_events))
    for link in span.links:
        body = b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
        body += _attributes(4, link.attributes) + _uint(5, link.dropped_attributes)
        body += b"\x35" + _flags(link.context)[2:]  # a Link's flags are its field 6
        parts.append(_delimited(13, body))
    parts.append(_uint(14, span.dropped_links))
    status = span.status
    parts.append(_delimited(15, _string(2, status.description) + _uint(3, status.status_code.value)))
    parts.append(_flags(parent))
    return b"".join(parts)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ExportTraceServiceRequest for `spans`, grouped by Resource and then instrumentation scope
    (by identity: a process has one TracerProvider and so one Resource and scope object)."""
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        scopes = groups.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_delimited(2, encode_span(span)))
    out = []
    for resource, scopes in groups.values():
        body = [_delimited(1, _attributes(1, resource.attributes))]
        for scope, encoded in scopes.values():
            header = b""
            if scope is not None:
                header = _string(1, scope.name) + _string(2, scope.version) + _attributes(3, scope.attributes)
            scope_body = _delimited(1, header) + b"".join(encoded)
            scope_body += _string(3, scope.schema_url if scope is not None else None)
            body.append(_delimited(2, scope_body))
        body.append(_string(3, resource.schema_url))
        out.append(_delimited(1, b"".join(body)))
    return b"".join(out)


def encode_light_span(span: LightSpan) -> bytes:
    """One span of the light tracer (`spans.LightSpan`), written as `encode_span` writes an SDK span, as a
    ScopeSpans `spans` field (tag and length included). The common case (no events, links or drops, status unset)
    is a single concatenation."""
    ctx, parent = span.context, span.parent
    state = ctx.trace_state
    head = b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big") + b"\x12\x08" + ctx.span_id.to_bytes(8, "big")
    if state:
        head += _string(3, _trace_state(state))
    if parent is not None:
        head += b"\x22\x08" + parent.span_id.to_bytes(8, "big")
    body = head + _named_and_timed(span.name, span.kind, span.start_time, span.end_time or 0, span.attributes)
    if span.events or span.links or span.dropped_attributes or span.dropped_events or span.dropped_links:
        body += _rare_fields(span)
    status = span.status
    body += (
        _UNSET_STATUS
        if status.status_code is StatusCode.UNSET and not status.description
        else _delimited(15, _string(2, status.description) + _uint(3, status.status_code.value))
    )
    body += _REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT
    return _span_field(body)


def _span_field(body: bytes) -> bytes:
    """An encoded span as field 2 of ScopeSpans; a span is almost always between 128 bytes and 16 KiB: a two-byte
    length."""
    n = len(body)
    if 0x80 <= n < 0x4000:
        return b"\x12" + bytes((n & 0x7F | 0x80, n >> 7)) + body
    return _delimited(2, body)


def encode_leaf_span(span: LeafSpan) -> bytes:
    """A leaf span (`spans.LeafSpan`: a remote parent or none, status unset, nothing but attributes) as
    `encode_light_span` writes the same span."""
    parent = span.parent
    head = b"\x0a\x10" + span.trace_id.to_bytes(16, "big") + b"\x12\x08" + span.span_id.to_bytes(8, "big")
    if parent is None:
        flags = _LOCAL_PARENT
    else:
        if parent.trace_state:
            head += _string(3, _trace_state(parent.trace_state))
        head += b"\x22\x08" + parent.span_id.to_bytes(8, "big")
        flags = _REMOTE_PARENT
    named = _named_and_timed(span.name, span.kind, span.start_time, span.end_time, span.attributes)
    return _span_field(head + named + _UNSET_STATUS + flags)


def _named_and_timed(name: str, kind: SpanKind, start: int, end: int, attributes: Mapping[str, Any]) -> bytes:
    """Fields 5 to 9 of a span: name, kind, start and end times, attributes."""
    encoded_name = _NAMES.get(name) or _name(name)
    times = b"\x39" + _FIXED64.pack(start) + b"\x41" + _FIXED64.pack(end)
    return encoded_name + _KIND_OF[kind] + times + _attributes(9, attributes)


def _rare_fields(span: LightSpan) -> bytes:
    """Fields 10-14 of a span (dropped counts, events, links), in field order."""
    parts = [_uint(10, span.dropped_attributes)]
    for event in span.events:
        body = b"\x09" + _FIXED64.pack(event.timestamp) + _string(2, event.name) + _attributes(3, event.attributes)
        parts.append(_delimited(11, body))
    parts.append(_uint(12, span.dropped_events))
    for link in span.links:
        body = b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
        body += _string(3, _trace_state(link.context.trace_state))
        body += _attributes(4, link.attributes) + _uint(5, link.dropped_attributes)
        body += b"\x35" + _flags(link.context)[2:]
        parts.append(_delimited(13, body))
    parts.append(_uint(14, span.dropped_links))
    return b"".join(parts)


_KIND_OF = {kind: _KIND[kind.name] for kind in SpanKind}
_UNSET_STATUS = _delimited(15, b"")


def encode_light_spans(
    spans: Sequence[LightSpan | LeafSpan],
    resource: Mapping[str, Any],
    scopes: Sequence[tuple[str, str | None, str | None]],
) -> bytes:
    """The serialized ExportTraceServiceRequest for spans of one light TracerProvider: one Resource, and the
    instrumentation scopes the spans name by index."""
    by_scope: dict[int, list[bytes]] = {}
    for span in spans:
        one = encode_leaf_span(span) if type(span) is LeafSpan else encode_light_span(span)  # type: ignore[arg-type]
        by_scope.setdefault(span.scope, []).append(one)
    body = [_delimited(1, _attributes(1, resource))]
    for index, encoded in by_scope.items():
        name, version, schema_url = scopes[index]
        scope_body = _delimited(1, _string(1, name) + _string(2, version)) + b"".join(encoded)
        body.append(_delimited(2, scope_body + _string(3, schema_url)))
    return _delimited(1, b"".join(body))


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The OTLP/HTTP exporter (its transport, headers, compression, certificates and retries) with this module's
    encoder in place of the library's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        if client is None or getattr(self, "_shutdown", False):
            return super().export(spans)  # a library version without the transport this relies on
        return SpanExportResult.SUCCESS if client.export(encode_spans(spans)).success else SpanExportResult.FAILURE

    def send(self, data: bytes) -> None:
        """Post an encoded request with the exporter's transport (headers, compression, certificates, retries with
        back-off within the timeout); an exception says why it failed."""
        client = getattr(self, "_client", None)
        if client is not None:
            result = client.export(data)
            if not result.success:
                raise ExportError(str(result.error or f"the collector answered {result.status_code}"))
            return
        # Library versions before the shared HTTP client posted serialized spans with this method.
        older = getattr(self, "_export_serialized_spans", None)
        if older is None:
            raise ExportError("this opentelemetry-exporter-otlp-proto-http has no way to post encoded spans")
        if older(data) != SpanExportResult.SUCCESS:
            raise ExportError("the collector did not accept the spans")


class ExportError(Exception):
    """An export the collector did not accept, or that could not reach it."""
