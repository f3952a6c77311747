"""Strict field validation: what kube-apiserver's JSON decoder reports about a request body.

Built-in kinds are Go structs upstream, so decoding (a) silently drops unknown fields, or reports them as
`strict decoding error: unknown field "spec.foo"` under `fieldValidation=Strict`, and (b) rejects values of the
wrong JSON type with `json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type
int32`. Both are 400 BadRequest. This module emulates that decoder over the built-in schemas in one walk.

Custom resources are checked by `crd_schema.StructuralSchema`, which implements the same `decode_fields`
protocol, so the API layer calls `check_fields` the same way for both.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from tmc.apimachinery import errors
from tmc.apimachinery.quantity import QUANTITY_SHAPE, QUANTITY_SHAPE_MESSAGE
from tmc.apimachinery.schemas import Schema, builtin_definitions, ref_name

FIELD_VALIDATION_MODES = ("Ignore", "Warn", "Strict")
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_MAX_STRICT_ERRORS = 100  # upstream stops accumulating strict errors here

# JSON kinds a node accepts, as bits so the per-field check is one `&`.
_OBJ, _ARR, _STR, _INT, _NUM, _BOOL = 1, 2, 4, 8, 16, 32
_ANY = _OBJ | _ARR | _STR | _INT | _NUM | _BOOL
_TYPE_BITS = {"object": _OBJ, "array": _ARR, "string": _STR, "integer": _INT, "number": _NUM | _INT, "boolean": _BOOL}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_GO_SCALARS = {"string": "string", "boolean": "bool", "number": "float64"}

_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class FieldDecoder(Protocol):
    """Something `check_fields` can run: built-in `Schema`s here, CRD `StructuralSchema`s in crd_schema."""

    def decode_fields(self, obj: dict[str, Any], drop: bool) -> tuple[list[str], str | None]:
        """(unknown field paths, first decode error); removes unknown fields from `obj` when `drop`."""
        ...


class _Node:
    """A built-in schema node resolved once: `$ref`s followed, accepted JSON kinds as bits, Go type names."""

    __slots__ = ("accepts", "fmt", "go_type", "int_range", "items", "open", "props", "struct", "values")

    def __init__(self) -> None:
        self.accepts = _ANY
        self.props: dict[str, _Node] | None = None
        self.values: _Node | None = None  # map values (additionalProperties)
        self.items: _Node | None = None
        self.open = True  # unknown keys are kept without complaint (RawExtension, JSON, ...)
        self.go_type = "interface {}"
        self.struct = ""  # Go struct name: the error context for its fields
        self.int_range: tuple[int, int] | None = None
        self.fmt = ""  # "byte", "date-time", "quantity": string contents the Go type parses


class _Compiler:
    """Compiles schema dicts to `_Node`s; definitions are memoised by name, which also ties recursive refs."""

    def __init__(self, defs: dict[str, dict[str, Any]]) -> None:
        self.defs = defs
        self.by_name: dict[str, _Node] = {}

    def compile(self, raw: dict[str, Any]) -> _Node:
        ref = raw.get("$ref")
        if isinstance(ref, str):
            # In the built-in schemas a $ref's siblings are descriptions and patch metadata only.
            return self.definition(ref_name(ref))
        node = _Node()
        self._fill(node, raw, "")
        return node

    def definition(self, name: str) -> _Node:
        node = self.by_name.get(name)
        if node is None:
            node = self.by_name[name] = _Node()
            short = name.rsplit(".", 2)
            node.go_type = f"{short[-2]}.{short[-1]}" if len(short) == 3 else name
            self._fill(node, self.defs.get(name, {}), name)
        return node

    def _fill(self, node: _Node, raw: dict[str, Any], defname: str) -> None:
        types = raw.get("type")
        if types is None:
            alternatives = raw.get("oneOf") or raw.get("anyOf") or []
            types = [t for alt in alternatives for t in _as_list(alt.get("type"))]
        names = [t for t in _as_list(types) if t != "null"]
        if names:
            node.accepts = 0
            for t in names:
                node.accepts |= _TYPE_BITS.get(t, 0)
        fmt = raw.get("format", "")
        if node.accepts & _INT and not node.accepts & _NUM:
            node.int_range = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
        if defname == _QUANTITY_DEF:
            node.fmt = "quantity"
        elif fmt in ("byte", "date-time"):
            node.fmt = fmt
        props = raw.get("properties")
        extra = raw.get("additionalProperties")
        if isinstance(props, dict):
            node.props = {k: self.compile(v) for k, v in props.items()}
            node.open = False
            node.struct = defname.rsplit(".", 1)[-1]
        if isinstance(extra, dict):
            node.values = self.compile(extra)
            node.open = False
        elif extra is False:
            node.open = False
        if raw.get("x-kubernetes-preserve-unknown-fields"):
            node.open = True
        items = raw.get("items")
        if isinstance(items, dict):
            node.items = self.compile(items)
        if not defname:
            node.go_type = _go_type(node, names, fmt)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _go_type(node: _Node, names: list[str], fmt: str) -> str:
    if len(names) != 1:
        return "interface {}"
    t = names[0]
    if t == "integer":
        return fmt if fmt in _INT_RANGES else "int64"
    if t == "array":
        return "[]" + (node.items.go_type if node.items else "interface {}")
    if t == "object":
        return "map[string]" + (node.values.go_type if node.values else "interface {}")
    return _GO_SCALARS.get(t, "interface {}")


@functools.cache
def _builtin_compiler() -> _Compiler:
    return _Compiler(builtin_definitions())


# Root nodes by id(schema.raw); the raw dict is held so its id cannot be reused while cached.
_roots: OrderedDict[int, tuple[dict[str, Any], dict[str, Any], _Node]] = OrderedDict()
_MAX_ROOTS = 512


def _root(schema: Schema) -> _Node:
    key = id(schema.raw)
    hit = _roots.get(key)
    if hit is not None and hit[0] is schema.raw and hit[1] is schema.definitions:
        return hit[2]
    if schema.definitions is builtin_definitions():
        node = _builtin_compiler().compile(schema.raw)
    else:
        node = _Compiler(schema.definitions).compile(schema.raw)
    _roots[key] = (schema.raw, schema.definitions, node)
    if len(_roots) > _MAX_ROOTS:
        _roots.popitem(last=False)
    return node


def builtin_node(definition: str) -> _Node:
    """The compiled node of a built-in definition (ObjectMeta for CR metadata, for instance)."""
    return _builtin_compiler().definition(definition)


class _Walk:
    __slots__ = ("drop", "error", "unknown")

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.unknown: list[str] = []
        self.error: str | None = None


def _scalar_error(value: Any, node: _Node) -> str | None:
    """The decode error for a non-container value, as (Value part of) Go's UnmarshalTypeError or a parse error."""
    t = type(value)
    if t is str:
        if not node.accepts & _STR:
            return "string"
        if node.fmt:
            return _format_error(value, node.fmt)
        return None
    if t is bool:
        return None if node.accepts & _BOOL else "bool"
    if t is int:
        if not node.accepts & (_INT | _NUM):
            return "number"
        rng = node.int_range
        if rng is not None and not node.accepts & _STR and not rng[0] <= value <= rng[1]:
            return f"number {value}"
        return None
    if t is float:
        if node.accepts & _NUM:
            return None
        return f"number {value}" if node.accepts & _INT else "number"
    return None


def _format_error(value: str, fmt: str) -> str | None:
    if fmt == "quantity":
        return None if QUANTITY_SHAPE.match(value) else "!" + QUANTITY_SHAPE_MESSAGE
    if fmt == "date-time":
        if value == "" or _RFC3339_RE.match(value):
            return None
        return f'!parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}" as "2006"'
    return _base64_error(value)


def _base64_error(value: str) -> str | None:
    # Go's StdEncoding ignores \r and \n, requires padding, and reports the first bad offset.
    text = value.replace("\r", "").replace("\n", "") if "\n" in value or "\r" in value else value
    if len(text) % 4 == 0 and _BASE64_RE.fullmatch(text):
        return None  # the common case, checked at C speed; the loop below only locates the error
    body = text.rstrip("=")
    for i, ch in enumerate(body):
        if ch not in _BASE64_CHARS:
            return f"!illegal base64 data at input byte {i}"
    pad = len(text) - len(body)
    if len(text) % 4 or pad > 2 or (pad and len(body) % 4 == 0):
        return f"!illegal base64 data at input byte {len(body) - len(body) % 4}"
    return None


def _type_error(value: str, node: _Node, struct: str, gopath: str) -> str:
    if value.startswith("!"):
        return value[1:]  # a parse error from the type's own unmarshaller: no Go field context
    if struct or gopath:
        return f"json: cannot unmarshal {value} into Go struct field {struct}.{gopath} of type {node.go_type}"
    return f"json: cannot unmarshal {value} into Go value of type {node.go_type}"


def _walk_object(obj: dict[str, Any], node: _Node, path: str, gopath: str, struct: str, st: _Walk) -> None:
    props = node.props
    values = node.values
    ctx = node.struct or struct  # Go reports the innermost struct that owns the failing field
    dropped: list[str] | None = None
    for key, val in obj.items():
        child = props.get(key) if props is not None else None
        in_map = False
        if child is None:
            child = values
            if child is None:
                if node.open:
                    continue
                if len(st.unknown) < _MAX_STRICT_ERRORS:
                    st.unknown.append(f"{path}.{key}" if path else key)
                if st.drop:
                    dropped = dropped or []
                    dropped.append(key)
                continue
            in_map = True
        if val is None:
            if not in_map and child.accepts & (_OBJ | _ARR) and not child.accepts & ~(_OBJ | _ARR):
                # Go decodes null into a struct, map or slice field as its zero value, which the object then omits;
                # defaulting fills it in as if absent (`"spec": null` on a Deployment is an empty spec, not a crash).
                dropped = dropped or []
                dropped.append(key)
            continue
        t = type(val)
        if t is dict or t is list:
            kind = _OBJ if t is dict else _ARR
            if child.accepts & kind:
                sub = gopath if in_map else (f"{gopath}.{key}" if gopath else key)
                if child.open and child.props is None and child.values is None and child.items is None:
                    continue
                if t is dict:
                    _walk_object(val, child, f"{path}.{key}" if path else key, sub, ctx, st)
                else:
                    _walk_array(val, child, f"{path}.{key}" if path else key, sub, ctx, st)
                continue
            err: str | None = "object" if t is dict else "array"
        else:
            err = _scalar_error(val, child)
        if err is not None and st.error is None:
            st.error = _type_error(err, child, ctx, gopath if in_map else (f"{gopath}.{key}" if gopath else key))
    if dropped:
        for key in dropped:
            del obj[key]


def _walk_array(items: list[Any], node: _Node, path: str, gopath: str, struct: str, st: _Walk) -> None:
    child = node.items
    if child is None:
        return
    for i, val in enumerate(items):
        if val is None:
            continue
        t = type(val)
        if t is dict:
            if child.accepts & _OBJ:
                _walk_object(val, child, f"{path}[{i}]", gopath, struct, st)
                continue
            err: str | None = "object"
        elif t is list:
            if child.accepts & _ARR:
                _walk_array(val, child, f"{path}[{i}]", gopath, struct, st)
                continue
            err = "array"
        else:
            err = _scalar_error(val, child)
        if err is not None and st.error is None:
            st.error = _type_error(err, child, struct, gopath)


def decode_builtin(obj: Any, node: _Node, drop: bool, path: str = "") -> tuple[list[str], str | None]:
    """Walk `obj` against a compiled node: (unknown field paths, first decode error)."""
    st = _Walk(drop)
    if isinstance(obj, dict):
        if node.accepts & _OBJ:
            _walk_object(obj, node, path, path, "", st)
        else:
            st.error = _type_error("object", node, "", "")
    return st.unknown, st.error


class _BuiltinDecoder:
    __slots__ = ("node",)

    def __init__(self, node: _Node) -> None:
        self.node = node

    def decode_fields(self, obj: dict[str, Any], drop: bool) -> tuple[list[str], str | None]:
        return decode_builtin(obj, self.node, drop)


def _decoder(schema: Schema | FieldDecoder) -> FieldDecoder:
    if isinstance(schema, Schema):
        return _BuiltinDecoder(_root(schema))
    return schema


def unknown_fields(obj: dict[str, Any], schema: Schema | FieldDecoder) -> list[str]:
    """Dotted paths of fields the schema does not declare, e.g. `spec.template.spec.containers[0].imagePullPolicyy`.

    Does not modify `obj`. Map values (additionalProperties), preserve-unknown-fields and untyped nodes
    (RawExtension, int-or-string, quantities) are honoured.
    """
    return _decoder(schema).decode_fields(obj, False)[0]


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_escape(text: str) -> str:
    """`text` as inside Go's %q: quotes, backslashes and non-printable characters escaped."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out: list[str] = []
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def go_quote(text: str) -> str:
    """Go's %q of a string: how upstream names a field in its messages (`unknown field "a\\x01b"`)."""
    return f'"{go_escape(text)}"'


def builtin_decoder(definition: str) -> FieldDecoder:
    """A `check_fields` decoder for a built-in definition that is not a resource's own (autoscaling/v1 Scale)."""
    return _BuiltinDecoder(builtin_node(definition))


def validate_field_validation_param(value: str | None, options_kind: str = "CreateOptions") -> str:
    """The effective `fieldValidation` mode; absent means Warn, as upstream. Bad values are 422 like upstream."""
    if not value:
        return "Warn"
    if value in FIELD_VALIDATION_MODES:
        return value
    cause = {
        "type": "FieldValueNotSupported",
        "message": f'Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"',
        "field": "fieldValidation",
    }
    raise errors.invalid(options_kind, "", [cause], group="meta.k8s.io")


def check_fields(
    obj: dict[str, Any],
    schema: Schema | FieldDecoder,
    mode: str,
    *,
    kind: str = "",
    version: str = "",
    type_error: Callable[[str], errors.StatusError] | None = None,
) -> list[str]:
    """Apply `fieldValidation` to a decoded request body; returns warnings (Warn mode) to send as headers.

    Unknown fields are removed from `obj` (Ignore/Warn) or rejected (Strict) with 400 `... cannot be handled
    as a <Kind>: strict decoding error: unknown field "spec.foo"`. Type mismatches the upstream decoder
    rejects are 400 in every mode, or what `type_error` makes of the decoder's message (a patched object's is 422).
    `kind`/`version` default to the body's own `kind`/`apiVersion`.
    """
    unknown, err = _decoder(schema).decode_fields(obj, mode != "Strict")
    if err is None and (not unknown or mode == "Ignore"):
        return []
    kind = kind or str(obj.get("kind") or "")
    version = version or str(obj.get("apiVersion") or "").rsplit("/", 1)[-1]
    prefix = f'{kind} in version "{version}" cannot be handled as a {kind}: '
    if err is not None:
        raise type_error(err) if type_error is not None else errors.bad_request(prefix + err)
    messages = [f"unknown field {go_quote(p)}" for p in unknown]
    if mode == "Strict":
        raise errors.bad_request(prefix + "strict decoding error: " + ", ".join(messages))
    return messages
