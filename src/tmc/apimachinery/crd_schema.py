"""Custom resources against their CRD's `openAPIV3Schema`: pruning, defaulting and value validation.

Compiled once per CRD version (the API layer should cache a `StructuralSchema` per CRD resourceVersion) into
nodes with every keyword pre-read, so each request is plain walks over the object. Messages follow
apiextensions-apiserver/kube-openapi (`spec.replicas in body must be of type integer: "string"`).
`x-kubernetes-validations` (CEL rules) are compiled by `tmc.apimachinery.cel` on first use (`cel`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

import orjson

from tmc.apimachinery.cel import CelValidator
from tmc.apimachinery.field_validation import OBJECT_META, builtin_node, decode_builtin
from tmc.apimachinery.schemas import Schema
from tmc.apimachinery.validation_common import (
    Cause,
    duplicate,
    invalid,
    join,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
    validate_object_meta,
)

_META_FIELDS = ("apiVersion", "kind", "metadata")
_MISSING = object()


class _Node:
    """One schema node with its keywords read out; junctor branches are nodes too (value validation only)."""

    __slots__ = (
        "all_of",
        "any_of",
        "default",
        "default_props",
        "embedded",
        "enum",
        "excl_max",
        "excl_min",
        "fmt",
        "has_default",
        "int_or_string",
        "items",
        "list_type",
        "map_keys",
        "max_items",
        "max_len",
        "max_props",
        "maximum",
        "min_items",
        "min_len",
        "min_props",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "preserve",
        "props",
        "required",
        "type",
        "unique",
        "values",
        "values_any",
    )

    def __init__(self, raw: dict[str, Any]) -> None:
        self.type = str(raw.get("type") or "")
        self.nullable = bool(raw.get("nullable"))
        self.preserve = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
        self.int_or_string = bool(raw.get("x-kubernetes-int-or-string"))
        self.embedded = bool(raw.get("x-kubernetes-embedded-resource"))
        self.has_default = "default" in raw
        self.default = raw.get("default")
        props = raw.get("properties")
        self.props = {k: _Node(v) for k, v in props.items() if isinstance(v, dict)} if isinstance(props, dict) else None
        extra = raw.get("additionalProperties")
        self.values = _Node(extra) if isinstance(extra, dict) else None
        self.values_any = extra is True
        items = raw.get("items")
        self.items = _Node(items) if isinstance(items, dict) else None
        self.default_props = tuple((k, n) for k, n in (self.props or {}).items() if n.has_default)
        self.required = tuple(raw.get("required") or ())
        enum = raw.get("enum")
        self.enum = list(enum) if isinstance(enum, list) else None
        self.fmt = str(raw.get("format") or "")
        self.pattern = _compile_pattern(raw.get("pattern"))
        self.minimum = raw.get("minimum")
        self.maximum = raw.get("maximum")
        self.excl_min = bool(raw.get("exclusiveMinimum"))
        self.excl_max = bool(raw.get("exclusiveMaximum"))
        self.multiple_of = raw.get("multipleOf")
        self.min_len = raw.get("minLength")
        self.max_len = raw.get("maxLength")
        self.min_items = raw.get("minItems")
        self.max_items = raw.get("maxItems")
        self.unique = bool(raw.get("uniqueItems"))
        self.min_props = raw.get("minProperties")
        self.max_props = raw.get("maxProperties")
        self.list_type = str(raw.get("x-kubernetes-list-type") or "")
        self.map_keys = tuple(raw.get("x-kubernetes-list-map-keys") or ())
        self.all_of = tuple(_Node(s) for s in raw.get("allOf") or () if isinstance(s, dict))
        self.any_of = tuple(_Node(s) for s in raw.get("anyOf") or () if isinstance(s, dict))
        self.one_of = tuple(_Node(s) for s in raw.get("oneOf") or () if isinstance(s, dict))
        not_ = raw.get("not")
        self.not_ = _Node(not_) if isinstance(not_, dict) else None

    def child(self, key: str) -> _Node | None:
        if self.props is not None:
            node = self.props.get(key)
            if node is not None:
                return node
        return self.values


def _compile_pattern(pattern: Any) -> re.Pattern[str] | None:
    if not isinstance(pattern, str):
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None  # CRD validation rejects it; never fail a request on it


# --- formats (loosely, as kube-openapi's registry checks them) --------------------------------------------------

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?\s*(ns|us|µs|ms|s|m|h|d|w)\s*)+")


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _valid_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _valid_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": lambda v: bool(_DATE_TIME.fullmatch(v)),
    "datetime": lambda v: bool(_DATE_TIME.fullmatch(v)),
    "date": lambda v: bool(_DATE.fullmatch(v)),
    "byte": _valid_base64,
    "uuid": lambda v: bool(_UUID.fullmatch(v)),
    "ipv4": lambda v: _valid_ip(v) and "." in v,
    "ipv6": lambda v: _valid_ip(v) and ":" in v,
    "cidr": _valid_cidr,
    "hostname": lambda v: len(v) <= 255 and bool(_HOSTNAME.fullmatch(v)),
    "email": lambda v: bool(_EMAIL.fullmatch(v)),
    "duration": lambda v: bool(_DURATION.fullmatch(v.strip())),
}
_INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Upstream decodes a custom resource's numbers as int64 when they fit and as float64 otherwise, and a float64 counts
# as an integer only up to 2**53 - 1 (kube-openapi's IsFloat64AJSONInteger): anything larger is a "number".
_INT64_MIN, _INT64_MAX = _INT_FORMATS["int64"]
_MAX_JSON_INTEGER_FLOAT = float(2**53 - 1)


def _json_type(value: Any) -> str:
    t = type(value)
    if t is str:
        return "string"
    if t is bool:
        return "boolean"
    if t is int:
        return "integer" if _INT64_MIN <= value <= _INT64_MAX else "number"
    if t is float:
        return "number"
    if t is dict:
        return "object"
    if t is list:
        return "array"
    return "null" if value is None else t.__name__


def _type_ok(value: Any, expected: str) -> bool:
    t = type(value)
    if expected == "string":
        return t is str
    if expected == "integer":
        if t is int:
            return _INT64_MIN <= value <= _INT64_MAX
        return t is float and value.is_integer() and abs(value) <= _MAX_JSON_INTEGER_FLOAT
    if expected == "number":
        return t is int or t is float
    if expected == "boolean":
        return t is bool
    if expected == "object":
        return t is dict
    if expected == "array":
        return t is list
    return True


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _json_key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _enum_has(enum: list[Any], value: Any) -> bool:
    is_bool = type(value) is bool
    return any((type(e) is bool) == is_bool and e == value for e in enum)


class StructuralSchema:
    """A CRD version's `openAPIV3Schema`, compiled: `decode_fields` (pruning, for `check_fields`),
    `apply_defaults` and `validate`."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.root = _Node(raw)
        self._meta = builtin_node(OBJECT_META)

    @classmethod
    def from_crd(cls, crd: dict[str, Any], version: str) -> StructuralSchema | None:
        schema = crd_version_schema(crd, version)
        return cls(schema.raw) if schema is not None else None

    @cached_property
    def cel(self) -> CelValidator | None:
        """The schema's CEL rules, compiled once (None when it has none)."""
        return CelValidator.build(self.raw)[0]

    @property
    def schema(self) -> Schema:
        """The same tree as a `Schema` node, for the openapi and patch modules."""
        return Schema(raw=self.raw, definitions={})

    # --- pruning -----------------------------------------------------------------------------------------

    def decode_fields(self, obj: dict[str, Any], drop: bool) -> tuple[list[str], str | None]:
        """Unknown field paths (pruned from `obj` when `drop`) and a metadata decode error, as for built-ins."""
        unknown: list[str] = []
        error: str | None = None
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            unknown, error = decode_builtin(meta, self._meta, drop, "metadata")
        elif meta is not None:
            error = f"json: cannot unmarshal {_json_type(meta)} into Go struct field .metadata of type v1.ObjectMeta"
        self._prune(obj, self.root, "", True, unknown, drop)
        return unknown, error

    def unknown_paths(self, obj: dict[str, Any]) -> list[str]:
        """Fields the schema would prune (metadata aside), without modifying `obj`."""
        unknown: list[str] = []
        self._prune(obj, self.root, "", True, unknown, False)
        return unknown

    def _prune(self, value: Any, node: _Node, path: str, root: bool, unknown: list[str], drop: bool) -> None:
        t = type(value)
        if t is list:
            items = node.items
            if items is not None:
                for i, v in enumerate(value):
                    if type(v) is dict or type(v) is list:
                        self._prune(v, items, f"{path}[{i}]", False, unknown, drop)
            return
        if t is not dict or node.type not in ("", "object"):
            return  # a type mismatch is reported by validate(); nothing to prune in it
        keep_meta = root or node.embedded
        dropped: list[str] = []
        for key, v in value.items():
            if keep_meta and key in _META_FIELDS:
                if key == "metadata" and node.embedded and isinstance(v, dict):
                    sub, _ = decode_builtin(v, self._meta, drop, join(path, "metadata"))
                    unknown.extend(sub)
                continue
            child = node.child(key)
            if child is None:
                if not node.preserve and not node.values_any:
                    unknown.append(join(path, key))
                    dropped.append(key)
                continue
            if type(v) is dict or type(v) is list:
                self._prune(v, child, join(path, key), False, unknown, drop)
        if drop:
            for key in dropped:
                del value[key]

    # --- defaulting ----------------------------------------------------------------------------------------

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        """Fill `default`s where a field is absent (or a non-nullable null) and drop other non-nullable nulls."""
        self._default(obj, self.root, True)

    def _default(self, value: Any, node: _Node, root: bool) -> None:
        t = type(value)
        if t is list:
            if node.items is not None:
                for v in value:
                    if type(v) is dict or type(v) is list:
                        self._default(v, node.items, False)
            return
        if t is not dict:
            return
        for key, child in node.default_props:
            current = value.get(key, _MISSING)
            if current is _MISSING or (current is None and not child.nullable):
                value[key] = copy.deepcopy(child.default)
        nulls: list[str] = []
        for key, v in value.items():
            if root and key in _META_FIELDS:
                continue
            sub = node.child(key)
            if sub is None:
                continue
            if v is None:
                if not sub.nullable and not sub.has_default:
                    nulls.append(key)
            elif type(v) is dict or type(v) is list:
                self._default(v, sub, False)
        for key in nulls:
            del value[key]

    # --- validation ----------------------------------------------------------------------------------------

    def validate(self, obj: dict[str, Any]) -> list[Cause]:
        """Value validations of the schema; causes use the request's field paths."""
        out: list[Cause] = []
        self._validate(obj, self.root, "", out, True)
        return out

    def validate_value(self, value: Any, path: str = "") -> list[Cause]:
        """Validate a value (not an object root) against the schema, e.g. a `default`."""
        out: list[Cause] = []
        self._validate(value, self.root, path, out)
        return out

    def _validate(self, value: Any, node: _Node, path: str, out: list[Cause], root: bool = False) -> None:
        if value is None:
            if not node.nullable and node.type:
                out.append(type_invalid(path, "null", f'{path} in body must be of type {node.type}: "null"'))
            return
        expected = node.type
        if expected:
            if not _type_ok(value, expected):
                actual = _json_type(value)
                out.append(type_invalid(path, actual, f'{path} in body must be of type {expected}: "{actual}"'))
                return
        elif node.int_or_string and (type(value) is not str and type(value) is not int):
            actual = _json_type(value)
            out.append(type_invalid(path, actual, f'{path} in body must be of type integer,string: "{actual}"'))
            return
        if node.enum is not None and not _enum_has(node.enum, value):
            values = [e if isinstance(e, str) else _json_key(e).decode() for e in node.enum]
            out.append(not_supported(path, value, values))
        t = type(value)
        if t is str:
            self._validate_string(value, node, path, out)
        elif t is int or t is float:
            self._validate_number(value, node, path, out)
        elif t is list:
            self._validate_array(value, node, path, out)
        elif t is dict:
            self._validate_object(value, node, path, out, root)
        if node.all_of or node.any_of or node.one_of or node.not_ is not None:
            self._validate_junctors(value, node, path, out)

    def _validate_string(self, value: str, node: _Node, path: str, out: list[Cause]) -> None:
        check = _STRING_FORMATS.get(node.fmt)
        if check is not None and not check(value):
            out.append(invalid(path, value, f'{path} in body must be of type {node.fmt}: "{value}"'))
        if node.max_len is not None and len(value) > node.max_len:
            out.append(too_long(path, node.max_len))
        if node.min_len is not None and len(value) < node.min_len:
            out.append(invalid(path, value, f"{path} in body should be at least {node.min_len} chars long"))
        if node.pattern is not None and not node.pattern.search(value):
            out.append(invalid(path, value, f"{path} in body should match '{node.pattern.pattern}'"))

    def _validate_number(self, value: float, node: _Node, path: str, out: list[Cause]) -> None:
        bounds = _INT_FORMATS.get(node.fmt)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            out.append(invalid(path, value, f'{path} in body must be of type {node.fmt}: "{_num(value)}"'))
        if node.minimum is not None:
            low = node.minimum
            if value < low or (node.excl_min and value == low):
                word = "greater than" if node.excl_min else "greater than or equal to"
                out.append(invalid(path, value, f"{path} in body should be {word} {_num(low)}"))
        if node.maximum is not None:
            high = node.maximum
            if value > high or (node.excl_max and value == high):
                word = "less than" if node.excl_max else "less than or equal to"
                out.append(invalid(path, value, f"{path} in body should be {word} {_num(high)}"))
        if node.multiple_of:
            quotient = value / node.multiple_of
            if abs(quotient - round(quotient)) > 1e-9:
                out.append(invalid(path, value, f"{path} in body should be a multiple of {_num(node.multiple_of)}"))

    def _validate_array(self, value: list[Any], node: _Node, path: str, out: list[Cause]) -> None:
        if node.max_items is not None and len(value) > node.max_items:
            out.append(too_many(path, len(value), node.max_items))
        if node.min_items is not None and len(value) < node.min_items:
            out.append(invalid(path, value, f"{path} in body should have at least {node.min_items} items"))
        if node.unique and len({_json_key(v) for v in value}) != len(value):
            out.append(invalid(path, value, f"{path} in body shouldn't contain duplicates"))
        if node.list_type == "set":
            seen: set[bytes] = set()
            for i, v in enumerate(value):
                key = _json_key(v)
                if key in seen:
                    out.append(duplicate(f"{path}[{i}]", v))
                seen.add(key)
        elif node.list_type == "map" and node.map_keys:
            seen_keys: set[bytes] = set()
            for i, v in enumerate(value):
                if isinstance(v, dict):
                    keys = {k: v.get(k) for k in node.map_keys if k in v}
                    key = _json_key(keys)
                    if key in seen_keys:
                        out.append(duplicate(f"{path}[{i}]", keys))
                    seen_keys.add(key)
        if node.items is not None:
            for i, v in enumerate(value):
                self._validate(v, node.items, f"{path}[{i}]", out)

    def _validate_object(self, value: dict[str, Any], node: _Node, path: str, out: list[Cause], root: bool) -> None:
        for key in node.required:
            if key not in value:
                out.append(required(join(path, key)))
        if node.max_props is not None and len(value) > node.max_props:
            out.append(too_many(path, len(value), node.max_props))
        if node.min_props is not None and len(value) < node.min_props:
            out.append(invalid(path, value, f"{path} in body should have at least {node.min_props} properties"))
        if node.embedded:
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    out.append(required(join(path, key), "must not be empty"))
            meta = value.get("metadata")
            validate_object_meta(meta, out, namespaced=None, path=join(path, "metadata"), require_name=False)
        for key, v in value.items():
            child = node.child(key)
            if child is None:
                continue
            if root and key == "metadata":
                # ObjectMeta rules run separately; the CRD schema may only constrain name and generateName.
                self._validate_meta_names(v, child, out)
                continue
            self._validate(v, child, join(path, key), out)

    def _validate_meta_names(self, meta: Any, node: _Node, out: list[Cause]) -> None:
        if not isinstance(meta, dict) or node.props is None:
            return
        for key in ("name", "generateName"):
            child = node.props.get(key)
            if child is not None and key in meta:
                self._validate(meta[key], child, f"metadata.{key}", out)

    def _validate_junctors(self, value: Any, node: _Node, path: str, out: list[Cause]) -> None:
        name = path or "body"
        for sub in node.all_of:
            errs: list[Cause] = []
            self._validate(value, sub, path, errs)
            if errs:
                out.extend(errs)
                out.append(invalid(path, value, f"{name} in body must validate all the schemas (allOf)"))
        if node.any_of and not any(self._passes(value, sub, path) for sub in node.any_of):
            out.append(invalid(path, value, f"{name} in body must validate at least one schema (anyOf)"))
        if node.one_of:
            passing = sum(1 for sub in node.one_of if self._passes(value, sub, path))
            if passing != 1:
                found = "Found none valid" if passing == 0 else f"Found {passing} valid alternatives"
                detail = f"{name} in body must validate one and only one schema (oneOf). {found}"
                out.append(invalid(path, value, detail))
        if node.not_ is not None and self._passes(value, node.not_, path):
            out.append(invalid(path, value, f"{name} in body must not validate the schema (not)"))

    def _passes(self, value: Any, node: _Node, path: str) -> bool:
        errs: list[Cause] = []
        self._validate(value, node, path, errs)
        return not errs


def crd_version_schema(crd: dict[str, Any], version: str) -> Schema | None:
    """A CRD version's `openAPIV3Schema` as a `Schema` node (no definitions: CRD schemas have no $refs)."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(entry, dict) and entry.get("name") == version:
            raw = (entry.get("schema") or {}).get("openAPIV3Schema")
            return Schema(raw=raw, definitions={}) if isinstance(raw, dict) else None
    return None
