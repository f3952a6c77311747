"""Field sets in the `FieldsV1` wire format, and the schema types that decide how an object's fields are keyed.

A field set is kept as the very dict `metadata.managedFields[].fieldsV1` holds: keys are path elements
(`f:name` a field, `k:{"name":"c"}` a keyed list item, `v:"x"` a set value, `i:0` an index) and `.` marks a node
that is a member itself besides having members below it; an empty dict is a member with nothing below. So the
stored JSON needs no codec, and sets are values: operations never modify their inputs and share untouched
subtrees (a result `is` its input when nothing changed, which the callers use as a cheap "no change" test).

`FieldType` is a compiled schema node with structured-merge-diff's vocabulary: structs (named fields), granular
maps, atomic values, and lists that are atomic, sets of scalars or maps keyed by `x-kubernetes-list-map-keys`
(or by the `x-kubernetes-patch-merge-key` of built-ins that lack list metadata). Values no schema describes are
"deduced": objects are granular maps, everything else atomic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tmc.apimachinery.schemas import Schema, builtin_definitions

FieldSet = dict[str, Any]
MEMBER = "."

SCALAR, STRUCT, MAP, DEDUCED, LIST_MAP, LIST_SET, ATOMIC = range(7)
GRANULAR_MAPS = (STRUCT, MAP, DEDUCED)
# Server-owned metadata no manager owns (upstream's stripMeta set).
STRIPPED_METADATA = frozenset(
    {
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields",
        "resourceVersion",
    }
)  # fmt: skip
ROOT_SKIPPED = frozenset({"apiVersion", "kind"})
# List-map keys the API server defaults, so an applied item without them matches the stored one.
_KEY_DEFAULTS = {"protocol": "TCP"}
_ROOT_CACHE: dict[int, tuple[Any, FieldType]] = {}
_ROOT_CACHE_LIMIT = 1024


class FieldType:
    """A compiled schema node; children are compiled on first use and kept."""

    __slots__ = ("_children", "_elem", "_extra", "_schema", "keys", "kind", "required")

    def __init__(self, kind: int, schema: Schema | None = None, keys: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.keys = keys
        self._schema = schema
        self._children: dict[str, FieldType] = {}  # declared properties only: bounded by the schema
        self._elem: FieldType | None = None
        self._extra: FieldType | None = None
        self.required: frozenset[str] = frozenset(schema.node.get("required") or ()) if schema else frozenset()

    def child(self, name: str) -> FieldType:
        found = self._children.get(name)
        if found is not None:
            return found
        if self.kind == MAP:
            return self._extra or self._values()
        if self._schema is None or self.kind == DEDUCED:
            return DEDUCED_TYPE
        props = self._schema.node.get("properties")
        if props and name in props:
            found = compile_type(Schema(props[name], self._schema.definitions))
            self._children[name] = found
            return found
        return self._extra or self._values()

    def _values(self) -> FieldType:
        """The type of a map's values (`additionalProperties`), or deduced; one per node, whatever the key."""
        schema = self._schema
        extra = schema.node.get("additionalProperties") if schema is not None else None
        if schema is not None and isinstance(extra, dict):
            self._extra = compile_type(Schema(extra, schema.definitions))
        else:
            self._extra = DEDUCED_TYPE
        return self._extra

    def elem(self) -> FieldType:
        if self._elem is None:
            self._elem = compile_type(self._schema.items() if self._schema is not None else None)
        return self._elem

    def key_of(self, item: Any) -> str | None:
        """The `k:` path element of a keyed list's item, None when the item cannot be keyed."""
        if not isinstance(item, dict):
            return None
        fields: dict[str, Any] = {}
        for k in self.keys:
            v = item.get(k, _KEY_DEFAULTS.get(k))
            if v is None:
                continue
            fields[k] = v
        if not fields:
            return None
        return "k:" + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


DEDUCED_TYPE = FieldType(DEDUCED)
SCALAR_TYPE = FieldType(SCALAR)
ATOMIC_TYPE = FieldType(ATOMIC)


def compile_type(schema: Schema | None) -> FieldType:
    if schema is None:
        return DEDUCED_TYPE
    node = schema.node
    types = schema.types
    if node.get("x-kubernetes-int-or-string"):
        return SCALAR_TYPE
    if "array" in types:
        list_type = schema.list_type
        if list_type == "set":
            return FieldType(LIST_SET, schema)
        if list_type == "map" and schema.list_map_keys:
            return FieldType(LIST_MAP, schema, tuple(schema.list_map_keys))
        if not list_type and schema.patch_merge_key:
            return FieldType(LIST_MAP, schema, (schema.patch_merge_key,))
        return ATOMIC_TYPE
    if "object" in types or "properties" in node:
        if node.get("x-kubernetes-map-type") == "atomic":
            return ATOMIC_TYPE
        if node.get("properties"):
            return FieldType(STRUCT, schema)
        if isinstance(node.get("additionalProperties"), dict):
            return FieldType(MAP, schema)
        return DEDUCED_TYPE
    if types:
        return SCALAR_TYPE
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return DEDUCED_TYPE
    return SCALAR_TYPE  # no type at all: quantities, int-or-string, "any"


def _object_meta() -> Schema:
    defs = builtin_definitions()
    return Schema(defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"], defs)


def object_type(schema: Schema | None) -> FieldType:
    """The type of a whole object: its schema's struct, with `metadata` always the built-in ObjectMeta."""
    cached = _ROOT_CACHE.get(id(schema.raw) if schema is not None else 0)
    if cached is not None and (schema is None or cached[0] is schema.raw):
        return cached[1]
    root = FieldType(STRUCT, schema)
    root._children["metadata"] = compile_type(_object_meta())
    if len(_ROOT_CACHE) >= _ROOT_CACHE_LIMIT:
        _ROOT_CACHE.clear()  # CRD schemas come and go; a rebuild costs one compile per type
    _ROOT_CACHE[id(schema.raw) if schema is not None else 0] = (schema.raw if schema is not None else None, root)
    return root


def value_element(value: Any) -> str:
    return "v:" + orjson.dumps(value).decode()


# ---------------------------------------------------------------- sets of values


def applied_set(obj: dict[str, Any], t: FieldType) -> FieldSet:
    """The fields an applied configuration sets (upstream's ToFieldSet): leaves, list items, atomic values."""
    out: FieldSet = {}
    for key, value in obj.items():
        if key in ROOT_SKIPPED:
            continue
        if key == "metadata" and isinstance(value, dict):
            md = {k: v for k, v in value.items() if k not in STRIPPED_METADATA}
            node = value_set(md, t.child(key), False) if md else None
            if node:
                out["f:metadata"] = node
            continue
        out["f:" + key] = value_set(value, t.child(key), False)
    return out


def object_set(obj: dict[str, Any], t: FieldType, skip: tuple[str, ...] = ()) -> FieldSet:
    """Every field of an object as an Update that created it owns it (nodes it adds are members too)."""
    out: FieldSet = {}
    for key, value in obj.items():
        if key in ROOT_SKIPPED or key in skip:
            continue
        if key == "metadata" and isinstance(value, dict):
            md = {k: v for k, v in value.items() if k not in STRIPPED_METADATA}
            node = value_set(md, t.child(key), True) if md else None
            if node:
                out["f:metadata"] = node
            continue
        out["f:" + key] = value_set(value, t.child(key), True, key in t.required)
    return out


def value_set(value: Any, t: FieldType, added: bool, required: bool = False) -> FieldSet:
    """The set under one value. `added`: an Update's view, where a new map or list is a member itself
    (except structs and required fields, which upstream's zero-valued Go objects already hold)."""
    kind = t.kind
    if value is None:
        return {}
    if kind in GRANULAR_MAPS and isinstance(value, dict):
        if not value:
            return {}
        # "." first, where upstream's sorted encoding puts it
        out: FieldSet = {MEMBER: {}} if added and kind != STRUCT else {}
        for key, sub in value.items():
            tp = type(sub)
            if tp is not dict and tp is not list:
                out["f:" + key] = {}  # a scalar (or null) is a leaf whatever its schema: no lookup, no call
            else:
                out["f:" + key] = value_set(sub, t.child(key), added, key in t.required)
        return out
    if kind == LIST_MAP and isinstance(value, list):
        if not value:
            return {}
        out = {MEMBER: {}} if added and not required else {}
        elem = t.elem()
        for item in value:
            pe = t.key_of(item)
            if pe is None:
                return {}  # an item that cannot be keyed: the list is one value
            out[pe] = {MEMBER: {}, **value_set(item, elem, added)}
        return out
    if kind == LIST_SET and isinstance(value, list):
        if not value:
            return {}
        out = {MEMBER: {}} if added and not required else {}
        for v in value:
            out[value_element(v)] = {}
        return out
    return {}


# ---------------------------------------------------------------- set algebra


def is_member(node: FieldSet) -> bool:
    return not node or MEMBER in node


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    """The union of two whole sets (the root is never a member)."""
    if not b or a is b:
        return a
    if not a:
        return b
    return _union(a, b)


def _union(a: FieldSet, b: FieldSet) -> FieldSet:
    if a is b:
        return a
    if not a:  # a is a member leaf
        return b if not b or MEMBER in b else {**b, MEMBER: {}}
    if not b:
        return a if MEMBER in a else {**a, MEMBER: {}}
    out: FieldSet | None = None
    for k, bv in b.items():
        av = a.get(k)
        merged = bv if av is None else _union(av, bv)
        if merged is not av:
            if out is None:
                out = dict(a)
            out[k] = merged
    return a if out is None else out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """The members of a not in b; returns `a` itself when b takes nothing away."""
    if not a or not b:
        return a
    return _difference(a, b) or {}


def _difference(a: FieldSet, b: FieldSet) -> FieldSet | None:
    if not b:  # b holds only this node itself
        if not a:
            return None
        if MEMBER not in a:
            return a
        return {k: v for k, v in a.items() if k != MEMBER}
    if not a:
        return None if MEMBER in b else a
    out: FieldSet | None = None
    for k, bv in b.items():
        av = a.get(k)
        if av is None:
            continue
        rest = None if k == MEMBER else _difference(av, bv)
        if rest is av:
            continue
        if out is None:
            out = dict(a)
        if rest is None:
            del out[k]
        else:
            out[k] = rest
    if out is None:
        return a
    if not out:
        return None
    if len(out) == 1 and MEMBER in out:
        return {}
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    if not a or not b:
        return {}
    return _intersection(a, b) or {}


def _intersection(a: FieldSet, b: FieldSet) -> FieldSet | None:
    out: FieldSet = {}
    if a and b:
        small, big = (a, b) if len(a) <= len(b) else (b, a)
        for k, v in small.items():
            if k == MEMBER:
                continue
            w = big.get(k)
            if w is not None:
                both = _intersection(v, w)
                if both is not None:
                    out[k] = both
    if is_member(a) and is_member(b):
        if out:
            out[MEMBER] = {}
        return out
    return out or None


def paths(s: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The member paths of a set, depth first in key order."""
    for k in sorted(s):
        if k == MEMBER:
            continue
        node = s[k]
        path = (*prefix, k)
        if is_member(node):
            yield path
        if node:
            yield from paths(node, path)


def path_string(path: tuple[str, ...]) -> str:
    """A path as upstream prints it: `.spec.containers[name="c"].image`, `[="v"]`, `[0]`."""
    out = []
    for pe in path:
        kind, rest = pe[:2], pe[2:]
        if kind == "f:":
            out.append("." + rest)
        elif kind == "k:":
            fields = orjson.loads(rest)
            out.append("[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in fields.items()) + "]")
        elif kind == "v:":
            out.append("[=" + rest + "]")
        else:
            out.append("[" + rest + "]")
    return "".join(out)


def valid_set(node: Any, depth: int = 0) -> bool:
    """Whether a client-supplied fieldsV1 value is a well-formed set (upstream rejects anything else)."""
    if not isinstance(node, dict) or depth > 64:
        return False
    for k, v in node.items():
        if k == MEMBER:
            if v != {}:
                return False
            continue
        prefix = k[:2]
        if prefix == "k:" or prefix == "v:":
            try:
                parsed = orjson.loads(k[2:])
            except orjson.JSONDecodeError:
                return False
            if prefix == "k:" and not (isinstance(parsed, dict) and parsed):
                return False
        elif prefix == "i:":
            if not k[2:].isdigit():
                return False
        elif prefix != "f:" or len(k) == 2:
            return False
        if not valid_set(v, depth + 1):
            return False
    return True
