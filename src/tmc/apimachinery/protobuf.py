"""Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).

kubectl's generator commands (`kubectl create configmap|deployment|secret|role|...`, `create token`,
`autoscale`) send their objects as protobuf. A body is the magic `k8s\\x00` followed by a `runtime.Unknown`
message whose typeMeta names the object and whose `raw` holds the typed message.

No Kubernetes .proto file ships with TMC and no package on PyPI carries current ones, but every kubectl binary
registers gzip-compressed FileDescriptorProtos for all of its `generated.proto` files (gogo-protobuf keeps them
for reflection). We find those inside the kubectl on this machine, build a descriptor pool from them, and
convert decoded messages into the dict the same object's JSON form gives. What proto2 cannot say comes from
three more sources: the gogo options left in the descriptors (which Go fields are pointers, which are embedded
structs), the Go struct tags compiled into the same binary (JSON names, `json:",inline"`), and the OpenAPI
schema's required lists (which zero values Go's JSON still shows).
"""

from __future__ import annotations

import base64
import json
import mmap
import os
import re
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, unknown_fields
from google.protobuf.message import DecodeError, Message

from tmc.apimachinery import errors
from tmc.apimachinery.schemas import builtin_definitions

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
BINARY_ENV = "TMC_KUBECTL_BINARY"

# Go's compress/gzip writes this exact header (no name, no mtime), so it marks each registered descriptor.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
_INFLATE_CHUNK = 64 * 1024
_INFLATE_LIMIT = 4 * 1024 * 1024  # the largest descriptor, core/v1, inflates to about 75 KiB
_GOGO_NULLABLE = 65001
_GOGO_CUSTOMNAME = 65004
_MAX_NESTING = 16  # RawExtension may hold another k8s protobuf body; bound the recursion

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
# Kinds metav1.AddToGroupVersion registers in every group version, so a typed client sends them under
# e.g. apps/v1 although only meta/v1 defines the message.
_META_KINDS = frozenset(
    {"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions", "ListOptions", "WatchEvent"}
)
# Package folder -> API group where the group is not "<folder>.k8s.io".
_GROUPS = {"core": "", "rbac": "rbac.authorization.k8s.io", "flowcontrol": "flowcontrol.apiserver.k8s.io"}
_GROUPS |= {"apiserverinternal": "internal.apiserver.k8s.io"}
_GROUPS |= {legacy: legacy for legacy in ("apps", "batch", "autoscaling", "policy", "extensions")}
_API_PACKAGE_PREFIXES = ("k8s.io.api.", "k8s.io.apimachinery.pkg.apis.", "k8s.io.metrics.pkg.apis.")
# A Go struct tag such as `json:"name,omitempty" protobuf:"bytes,1,opt,name=name"` (patchStrategy and the like
# may stand between): Go keeps tags in the binary for reflection, and they hold what descriptors lack: JSON
# names and `json:",inline"` embedding.
_STRUCT_TAG = re.compile(rb'json:"([^",]*)[^"]*"(?: \w+:"[^"]*")* protobuf:"\w+,(\d+),([^"]*)"')
_GO_ZERO_TIME_SECONDS = -62135596800  # time.Time{} (0001-01-01) in Unix seconds; JSON renders it as null
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FDP = descriptor_pb2.FieldDescriptorProto
_VALUE_KINDS = {_FDP.TYPE_MESSAGE: "message", _FDP.TYPE_BYTES: "bytes"}  # every other type is a JSON scalar


@dataclass
class _Tags:
    json_names: dict[tuple[str, int], set[str]]  # (proto name, number) -> JSON names in tags; "" is inline
    nameless_inline: set[int]  # numbers of inline tags without a proto name (EphemeralContainer's)


@dataclass(frozen=True, slots=True)
class _Field:
    json: str
    container: str  # "one", "list" or "map"
    value: str  # "scalar", "bytes" or "message": how each element renders
    # A non-pointer Go scalar, which gogo always writes: its zero value is dropped unless the OpenAPI schema
    # requires the field (Go's JSON then shows the zero, as for PodDisruptionBudgetStatus.expectedPods: 0).
    omit_zero: bool
    inline: bool


class ProtobufCodec:
    """Decodes Kubernetes protobuf bodies with the descriptors found in a kubectl binary.

    Loading is lazy and happens once per instance; `shared()` gives the process-wide instance.
    """

    _shared: ClassVar[ProtobufCodec | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary
        self._lock = threading.Lock()
        self._loaded = False
        self._source: str | None = None
        self._load_seconds = 0.0
        self._pool = descriptor_pool.DescriptorPool()
        self._fields: dict[str, dict[str, _Field]] = {}
        self._named_slices: set[str] = set()
        self._kinds: dict[tuple[str, str], str] = {}
        self._group_versions: set[str] = set()
        self._classes: dict[str, type[Message]] = {}

    @classmethod
    def shared(cls) -> ProtobufCodec:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @property
    def available(self) -> bool:
        self._ensure_loaded()
        return bool(self._kinds)

    @property
    def source(self) -> str | None:
        """The kubectl binary the descriptors came from."""
        self._ensure_loaded()
        return self._source

    @property
    def load_seconds(self) -> float:
        self._ensure_loaded()
        return self._load_seconds

    def kinds(self) -> set[tuple[str, str]]:
        """Every (apiVersion, kind) this codec can decode."""
        self._ensure_loaded()
        return set(self._kinds)

    def decode(self, body: bytes) -> dict[str, Any]:
        """Turn a protobuf request body into the JSON-form object (apiVersion and kind included)."""
        if not self.available:
            raise errors.unsupported_media_type(
                f"{MEDIA_TYPE} bodies cannot be decoded: no kubectl binary with API descriptors was found "
                f"(set {BINARY_ENV}); send application/json"
            )
        return self._decode(bytes(body), 0)

    # -- loading ---------------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            started = time.perf_counter()
            path = self._binary or os.environ.get(BINARY_ENV) or shutil.which("kubectl")
            if path and os.path.isfile(path):
                files, tags = _scan_binary(path)
                if files:
                    self._build(files, tags)
                    self._source = os.path.realpath(path)
            self._load_seconds = time.perf_counter() - started
            self._loaded = True

    def _build(self, files: dict[str, descriptor_pb2.FileDescriptorProto], tags: _Tags) -> None:
        definitions = builtin_definitions()
        for fdp in files.values():
            for msg in fdp.message_type:
                # OpenAPI names reverse the package's domain: k8s.io.api.core.v1.Pod is io.k8s.api.core.v1.Pod.
                definition = definitions.get(f"io.k8s.{fdp.package.removeprefix('k8s.io.')}.{msg.name}", {})
                self._index_message(fdp.package, msg, tags, set(definition.get("required", ())))
            _strip_gogo(fdp, files)
        # The pool needs every import before the file that uses it.
        added: set[str] = set()
        pending = dict(files)
        while pending:
            ready = [name for name, fdp in pending.items() if all(dep in added for dep in fdp.dependency)]
            if not ready:
                break  # the rest import something missing from this binary; leave them out
            for name in sorted(ready):
                try:
                    self._pool.AddSerializedFile(pending.pop(name).SerializeToString())
                    added.add(name)
                except TypeError:
                    continue  # refers to a type its imports lack; it and its dependents stay out
        for name in added:
            fdp = files[name]
            group_version = _group_version(fdp.package)
            if group_version is not None:
                self._group_versions.add(group_version)
                for msg in fdp.message_type:
                    self._kinds[(group_version, msg.name)] = f"{fdp.package}.{msg.name}"

    def _index_message(
        self, package: str, msg: descriptor_pb2.DescriptorProto, tags: _Tags, required: set[str]
    ) -> None:
        full_name = f"{package}.{msg.name}"
        map_entries = {f"{full_name}.{nested.name}": nested for nested in msg.nested_type if nested.options.map_entry}
        fields: dict[str, _Field] = {}
        for field in msg.field:
            nullable, go_name = _gogo_options(field.options)
            repeated = field.label == _FDP.LABEL_REPEATED
            entry = map_entries.get(field.type_name.lstrip("."))
            element = entry.field[1] if entry is not None else field
            seen = tags.json_names.get((field.name, field.number), set())
            named = seen - {"", "-"}
            # go-to-protobuf names some fields after the Go field (aPIGroup for apiGroup); the tag has the JSON name.
            json_name = named.pop() if len(named) == 1 else field.name
            # Go names an embedded field after its type; it is flattened into the parent when tagged inline.
            embedded = not nullable and field.type_name.endswith(f".{go_name}")
            inline = embedded and ("" in seen if seen else field.number in tags.nameless_inline)
            fields[field.name] = _Field(
                json=json_name,
                container="map" if entry is not None else "list" if repeated else "one",
                value=_VALUE_KINDS.get(element.type, "scalar"),
                omit_zero=not (nullable or repeated or field.type in _VALUE_KINDS or json_name in required),
                inline=inline,
            )
        self._fields[full_name] = fields
        # go-to-protobuf wraps a Go named slice ([]string) in a message with one `items` field; JSON shows a list.
        if [(f.name, f.label, f.type) for f in msg.field] == [("items", _FDP.LABEL_REPEATED, _FDP.TYPE_STRING)]:
            self._named_slices.add(full_name)

    # -- decoding --------------------------------------------------------------------------------------

    def _decode(self, body: bytes, depth: int) -> dict[str, Any]:
        if not body.startswith(MAGIC):
            raise errors.bad_request(f"the {MEDIA_TYPE} body does not start with the k8s\\x00 prefix")
        if depth > _MAX_NESTING:
            raise errors.bad_request(f"the {MEDIA_TYPE} body nests objects too deeply")
        envelope = self._parse(_UNKNOWN, body[len(MAGIC) :])
        api_version, kind = envelope.typeMeta.apiVersion, envelope.typeMeta.kind
        if not kind:
            raise errors.bad_request("Object 'Kind' is missing in the protobuf body")
        if envelope.contentEncoding:
            raise errors.unsupported_media_type(f"protobuf content encoding {envelope.contentEncoding!r}")
        name = self._kinds.get((api_version, kind))
        if name is None and kind in _META_KINDS and api_version in self._group_versions:
            name = f"{_META}.{kind}"
        if name is None:
            raise errors.unsupported_media_type(
                f"{MEDIA_TYPE} is not supported for {kind} in {api_version or 'an empty apiVersion'}; "
                "send application/json"
            )
        obj = self._parse(name, envelope.raw)
        result: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
        try:
            converted = self._message(obj, depth)
        except (UnicodeDecodeError, ValueError, OverflowError) as exc:
            raise errors.bad_request(f"cannot decode the {kind} in the {MEDIA_TYPE} body: {exc}") from None
        result.update(converted)
        return result

    def _parse(self, name: str, data: bytes) -> Any:
        cls = self._classes.get(name)
        if cls is None:
            cls = message_factory.GetMessageClass(self._pool.FindMessageTypeByName(name))
            self._classes[name] = cls
        msg = cls()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            raise errors.bad_request(f"malformed {MEDIA_TYPE} body ({name.rsplit('.', 1)[-1]}): {exc}") from None
        return msg

    def _message(self, msg: Any, depth: int) -> Any:
        name = msg.DESCRIPTOR.full_name
        special = _SPECIAL.get(name)
        if special is not None:
            return special(msg)
        if name == _RAW_EXTENSION:
            return self._raw_extension(msg.raw, depth)
        if name in self._named_slices:
            return [_text(item) for item in msg.items]
        fields = self._fields[name]
        out: dict[str, Any] = {}
        for descriptor, value in msg.ListFields():
            field = fields[descriptor.name]
            if field.container == "map":
                out[field.json] = {str(_text(k)): self._value(field.value, v, depth) for k, v in value.items()}
            elif field.container == "list":
                out[field.json] = [self._value(field.value, v, depth) for v in value]
            elif field.inline:
                out.update(self._message(value, depth))
            elif not (field.omit_zero and not value):
                out[field.json] = self._value(field.value, value, depth)
        return out

    def _value(self, kind: str, value: Any, depth: int) -> Any:
        if kind == "message":
            return self._message(value, depth)
        if kind == "bytes":
            return base64.b64encode(value).decode("ascii")
        return _text(value)

    def _raw_extension(self, raw: bytes, depth: int) -> Any:
        # Go renders a RawExtension by its bytes: JSON as is, or a nested protobuf object.
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return self._decode(raw, depth + 1)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise errors.bad_request(f"a RawExtension in the {MEDIA_TYPE} body is not JSON: {exc}") from None


def _scan_binary(path: str) -> tuple[dict[str, descriptor_pb2.FileDescriptorProto], _Tags]:
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    tags = _Tags({}, set())
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            pos = data.find(_GZIP_HEADER)
            while pos >= 0:
                fdp = _inflate_descriptor(data, pos)
                if fdp is not None and fdp.name.endswith("generated.proto"):
                    files.setdefault(_unvendored(fdp.name), fdp)
                pos = data.find(_GZIP_HEADER, pos + 1)
            for match in _STRUCT_TAG.finditer(data):
                json_name, number, rest = match.group(1).decode(), int(match.group(2)), match.group(3).decode()
                proto_name = next((part[5:] for part in rest.split(",") if part.startswith("name=")), "")
                if proto_name:
                    tags.json_names.setdefault((proto_name, number), set()).add(json_name)
                elif not json_name:
                    tags.nameless_inline.add(number)
    except (OSError, ValueError):  # unreadable, or empty (mmap refuses zero-length files)
        return {}, tags
    for fdp in files.values():
        fdp.name = _unvendored(fdp.name)
        fdp.dependency[:] = [_unvendored(dep) for dep in fdp.dependency]
    return files, tags


def _unvendored(name: str) -> str:
    """Older kubectl builds register k8s.io/kubernetes/vendor/k8s.io/api/... but import k8s.io/api/..."""
    return name.rsplit("/vendor/", 1)[-1]


def _inflate_descriptor(data: mmap.mmap, start: int) -> descriptor_pb2.FileDescriptorProto | None:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size, pos = 0, start
    try:
        while not inflater.eof and pos < len(data) and size < _INFLATE_LIMIT:
            parts.append(inflater.decompress(data[pos : pos + _INFLATE_CHUNK]))
            size += len(parts[-1])
            pos += _INFLATE_CHUNK
    except zlib.error:
        return None  # the header bytes occurred by chance
    if not inflater.eof:
        return None
    try:
        return descriptor_pb2.FileDescriptorProto.FromString(b"".join(parts))
    except DecodeError:
        return None


def _gogo_options(options: descriptor_pb2.FieldOptions) -> tuple[bool, str]:
    """(nullable, Go field name) from a field's gogoproto extensions, which parse as unknown fields here."""
    nullable, go_name = True, ""
    found = unknown_fields.UnknownFieldSet(options)
    for item in (found[i] for i in range(len(found))):
        if item.field_number == _GOGO_NULLABLE:
            nullable = bool(item.data)
        elif item.field_number == _GOGO_CUSTOMNAME:
            go_name = bytes(item.data).decode()
    return nullable, go_name


def _strip_gogo(fdp: descriptor_pb2.FileDescriptorProto, files: dict[str, Any]) -> None:
    """Drop gogo imports and options: gogo.proto is not in the binary and only decorates Go code generation."""
    fdp.dependency[:] = [dep for dep in fdp.dependency if dep in files]
    for name in ("public_dependency", "weak_dependency", "options"):
        fdp.ClearField(name)
    _strip_messages(fdp.message_type)


def _strip_messages(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for msg in messages:
        map_entry = msg.options.map_entry
        msg.ClearField("options")
        if map_entry:
            msg.options.map_entry = True
        for field in msg.field:
            field.ClearField("options")
        _strip_messages(msg.nested_type)


def _group_version(package: str) -> str | None:
    """The apiVersion a package's kinds are sent under: k8s.io.api.rbac.v1 -> rbac.authorization.k8s.io/v1."""
    if not package.startswith(_API_PACKAGE_PREFIXES):
        return None
    folder, version = package.split(".")[-2:]
    group = _GROUPS.get(folder, f"{folder}.k8s.io") if package.startswith("k8s.io.api.") else f"{folder}.k8s.io"
    return f"{group}/{version}" if group else version


def _text(value: Any) -> Any:
    # upb hands back a proto2 string holding invalid UTF-8 as bytes; Go's JSON writes U+FFFD for those bytes.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _time(msg: Any, micro: bool) -> str | None:
    # An empty message is Go's zero time, which metav1.Time and MicroTime render as null.
    if not msg.ListFields() or (msg.seconds == _GO_ZERO_TIME_SECONDS and msg.nanos == 0):
        return None
    moment = (_EPOCH + timedelta(seconds=msg.seconds, microseconds=msg.nanos // 1000)).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if micro else "seconds") + "Z"


def _go_duration(nanos: int) -> str:
    """time.Duration.String(): metav1.Duration travels as int64 nanoseconds but its JSON is "1h2m3.5s"."""
    if nanos == 0:
        return "0s"
    sign, rest = ("-" if nanos < 0 else ""), abs(nanos)
    if rest < 1_000_000_000:
        unit, size, digits = ("ns", 1, 0) if rest < 1000 else ("µs", 1000, 3) if rest < 1_000_000 else ("ms", 10**6, 6)
        whole, frac = divmod(rest, size)
        return f"{sign}{whole}{f'.{frac:0{digits}d}'.rstrip('0') if frac else ''}{unit}"
    seconds, frac = divmod(rest, 1_000_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{seconds}{f'.{frac:09d}'.rstrip('0') if frac else ''}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    return f"{sign}{minutes}m{text}" if minutes else f"{sign}{text}"


# Wrapper types whose Go MarshalJSON renders them as a scalar rather than an object.
_SPECIAL: dict[str, Callable[[Any], Any]] = {
    f"{_META}.Time": lambda m: _time(m, micro=False),
    f"{_META}.MicroTime": lambda m: _time(m, micro=True),
    f"{_META}.Duration": lambda m: _go_duration(m.duration),
    f"{_META}.FieldsV1": lambda m: json.loads(m.Raw) if m.Raw else None,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda m: m.string or "0",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": lambda m: m.string or "0",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": lambda m: _text(m.strVal) if m.type == 1 else m.intVal,
}
