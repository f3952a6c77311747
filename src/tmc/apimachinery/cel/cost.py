"""Worst-case cost of a rule, from its checked tree and the schema of the value it runs on.

After cel-go's static estimator as apiextensions-apiserver configures it: a size for every string, list and map
comes from `maxLength`, `maxItems` and `maxProperties`, and where the schema sets none, from how many of the smallest
such values fit in the largest request the hub accepts (3 MiB). Comprehensions (the `all`, `exists`, `map`, `filter`
macros) cost their range's size times their body, so nested loops over unbounded lists multiply. Units follow
cel-go's loosely: one per call, select and identifier, one tenth per character traversed.

The same estimate with the size of the actual value in place of 3 MiB is the runtime charge (`validator.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery.cel.ast import CALL, COMPREHENSION, CONST, IDENT, LIST, MAP, SELECT, Expr

MAX_REQUEST_BYTES = 3 * 1024 * 1024
# apiextensions-apiserver's limits (k8s.io/apiserver/pkg/apis/cel/config.go).
PER_RULE_LIMIT = 10_000_000  # StaticEstimatedCostLimit
PER_CRD_LIMIT = 100_000_000  # StaticEstimatedCRDCostLimit
RUNTIME_BUDGET = 10_000_000  # RuntimeCELCostBudget, per object validation
PER_CALL_LIMIT = 1_000_000  # PerCallLimit
_TRAVERSAL = 0.1  # common.StringTraversalCostFactor
_REGEX = 0.25  # common.RegexStringLengthCostFactor
_STRING_FUNCS = frozenset(
    {
        "contains",
        "startsWith",
        "endsWith",
        "charAt",
        "indexOf",
        "lastIndexOf",
        "lowerAscii",
        "upperAscii",
        "replace",
        "split",
        "substring",
        "trim",
        "format",
        "strings.quote",
        "url",
        "isURL",
        "quantity",
        "isQuantity",
        "string",
        "bytes",
        "int",
        "uint",
        "double",
    }
)
_REGEX_FUNCS = frozenset({"matches", "find", "findAll"})
_LIST_FUNCS = frozenset({"isSorted", "sum", "min", "max", "indexOf", "lastIndexOf", "join"})


@dataclass(slots=True)
class _Value:
    schema: dict[str, Any] | None  # the raw schema node of the value, when it is known
    size: int  # the largest length of a string, list or map value
    resource: bool = False  # a resource root or embedded resource: apiVersion, kind and metadata are implicit


def _min_json_size(raw: dict[str, Any]) -> int:
    """The smallest serialized value of a schema (upstream's estimateMinSizeJSON)."""
    stype = raw.get("type")
    if stype == "boolean":
        return 4
    if stype in ("number", "integer") or raw.get("x-kubernetes-int-or-string"):
        return 1
    if stype in ("string", "array"):
        return 2
    if stype == "object":
        size = 2
        props = raw.get("properties") or {}
        for key in raw.get("required") or ():
            sub = props.get(key)
            size += len(key) + 4 + (_min_json_size(sub) if isinstance(sub, dict) else 1)
        return size
    return 1


def max_size(raw: dict[str, Any] | None, limit: int, cap: bool = False) -> int:
    """The largest length a value of this schema can have in a request of `limit` bytes. Explicit maxima win as
    upstream's estimator has it; `cap` also bounds them by `limit` (for the runtime charge of an actual value)."""
    if raw is None:
        return limit
    stype = raw.get("type")
    declared: Any = None
    derived = limit
    if stype == "array":
        declared = raw.get("maxItems")
        items = raw.get("items")
        derived = (limit - 2) // (_min_json_size(items if isinstance(items, dict) else {}) + 1)
    elif stype == "object":
        extra = raw.get("additionalProperties")
        if isinstance(extra, dict) or raw.get("x-kubernetes-preserve-unknown-fields"):
            declared = raw.get("maxProperties")
            derived = (limit - 2) // (_min_json_size(extra if isinstance(extra, dict) else {}) + 6)
        else:
            return len(raw.get("properties") or {})
    elif stype == "string" or raw.get("x-kubernetes-int-or-string"):
        declared = raw.get("maxLength")
        enum = raw.get("enum")
        if declared is None and isinstance(enum, list) and enum:
            declared = max(len(str(e)) for e in enum)
        derived = max(limit - 2, 0)
    else:
        return 1
    if isinstance(declared, int) and declared >= 0:
        return min(declared, derived) if cap else declared
    return max(derived, 0)


# What `self.metadata` and friends are on a resource root or an embedded resource, whatever the schema declares.
_IMPLICIT: dict[str, dict[str, Any]] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object", "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}}},
}


def _resource(raw: dict[str, Any] | None, root: bool) -> bool:
    return raw is not None and (root or bool(raw.get("x-kubernetes-embedded-resource")))


def _child(raw: dict[str, Any] | None, name: str, resource: bool = False) -> dict[str, Any] | None:
    if raw is None:
        return None
    if resource and name in _IMPLICIT:
        return _IMPLICIT[name]
    props = raw.get("properties")
    if isinstance(props, dict) and isinstance(props.get(name), dict):
        return props[name]
    extra = raw.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _closed(raw: dict[str, Any] | None) -> bool:
    """An object schema whose fields are exactly its properties: selecting another one is a compile error."""
    if raw is None or raw.get("type") != "object" or raw.get("x-kubernetes-preserve-unknown-fields"):
        return False
    return "additionalProperties" not in raw


def _element(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    if raw.get("type") == "array":
        items = raw.get("items")
        return items if isinstance(items, dict) else None
    if raw.get("type") == "object":
        return {"type": "string"}  # a comprehension over a map ranges over its keys
    return None


class Estimator:
    """Costs of one rule's tree with `self` (and `oldSelf`) of a given schema, for requests of `limit` bytes."""

    def __init__(
        self, schema: dict[str, Any], limit: int = MAX_REQUEST_BYTES, cap: bool = False, root: bool = False
    ) -> None:
        self._limit = limit
        self._cap = cap
        self._vars: dict[str, _Value] = {}
        # (node id, field) of selects of fields the schema does not have
        self.undefined: list[tuple[int, str]] = []
        value = _Value(schema, max_size(schema, limit, cap), _resource(schema, root))
        self._vars["self"] = value
        self._vars["oldSelf"] = value

    def cost(self, expr: Expr) -> int:
        return self._visit(expr)[0]

    def _size(self, raw: dict[str, Any] | None) -> int:
        return max_size(raw, self._limit, self._cap)

    def _visit(self, e: Expr) -> tuple[int, _Value]:
        kind = e.kind
        if kind == CONST:
            size = len(e.value) if isinstance(e.value, str | bytes) else 1
            return 0, _Value(None, size)
        if kind == IDENT:
            return 1, self._vars.get(e.name) or _Value(None, self._limit)
        if kind == SELECT:
            assert e.target is not None
            cost, operand = self._visit(e.target)
            schema = operand.schema
            implicit = operand.resource and e.name in _IMPLICIT
            if _closed(schema) and not implicit and e.name not in (schema or {}).get("properties", {}):
                self.undefined.append((e.id, e.name))
            if e.test_only:
                return cost + 1, _Value(None, 1)
            child = _child(schema, e.name, operand.resource)
            size = self._size(child) if child is not None else self._limit
            return cost + 1, _Value(child, size, _resource(child, False))
        if kind in (LIST, MAP):
            total = sum(self._visit(a)[0] for a in e.args)
            return total + (10 if kind == LIST else 30), _Value(None, len(e.args) // (1 if kind == LIST else 2))
        if kind == COMPREHENSION:
            return self._comprehension(e)
        if kind == CALL:
            return self._call(e)
        return 1, _Value(None, self._limit)

    def _comprehension(self, e: Expr) -> tuple[int, _Value]:
        assert e.target is not None
        range_cost, rng = self._visit(e.target)
        init, cond, step, result = e.parts
        saved = {name: self._vars.get(name) for name in (e.iter_var, e.accu_var)}
        element = _element(rng.schema)
        self._vars[e.iter_var] = _Value(element, self._size(element) if element is not None else self._limit)
        self._vars[e.accu_var] = _Value(None, rng.size)
        init_cost = self._visit(init)[0]
        body = self._visit(cond)[0] + self._visit(step)[0]
        result_cost = self._visit(result)[0]
        for name, old in saved.items():
            if old is None:
                self._vars.pop(name, None)
            else:
                self._vars[name] = old
        return range_cost + init_cost + rng.size * body + result_cost, _Value(None, rng.size)

    def _call(self, e: Expr) -> tuple[int, _Value]:
        name = e.name
        if name == "_?_:_" and len(e.args) == 3:
            # the condition and the dearer branch
            cond = self._visit(e.args[0])[0]
            (yes, value), (no, _) = self._visit(e.args[1]), self._visit(e.args[2])
            return cond + max(yes, no), value
        cost = 0
        values: list[_Value] = []
        if e.target is not None:
            c, v = self._visit(e.target)
            cost += c
            values.append(v)
        for arg in e.args:
            c, v = self._visit(arg)
            cost += c
            values.append(v)
        if name in ("_&&_", "_||_", "@not_strictly_false", "!_"):
            return cost, _Value(None, 1)
        first = values[0].size if values else 1
        if name in ("_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"):
            return cost + 1 + math.ceil(min(v.size for v in values) * _TRAVERSAL), _Value(None, 1)
        if name == "_+_":
            size = sum(v.size for v in values)
            return cost + 1 + math.ceil(size * _TRAVERSAL), _Value(None, size)
        if name in _REGEX_FUNCS:
            pattern = values[1].size if len(values) > 1 else 1
            traverse = math.ceil((1 + first) * _TRAVERSAL)
            return cost + 1 + traverse * math.ceil(pattern * _REGEX), _Value(None, first)
        if name == "join" and values:
            element = _element(values[0].schema)
            per = self._size(element) if element is not None else self._limit
            return cost + 1 + math.ceil(first * per * _TRAVERSAL), _Value(None, first * per)
        if name == "@in":  # `x in list`: a traversal of the list, the second operand
            return cost + 1 + values[-1].size, _Value(None, 1)
        if name in _LIST_FUNCS:
            return cost + 1 + first, _Value(None, first)
        if name in _STRING_FUNCS:
            return cost + 1 + math.ceil(sum(v.size for v in values) * _TRAVERSAL), _Value(None, first)
        if name == "size":
            return cost + 1, _Value(None, 1)
        return cost + 1, _Value(values[0].schema if values else None, first)


def cost_factor_message(what: str, cost: int, limit: int) -> str:
    """Upstream's getCostErrorMessage."""
    factor = cost / limit
    shown = "more than 100x" if factor > 100 else f"{factor:.1f}x"
    return (
        f"{what} exceeds budget by factor of {shown} (try simplifying the rule, or adding maxItems, maxProperties, "
        "and maxLength where arrays, maps, and strings are declared)"
    )
