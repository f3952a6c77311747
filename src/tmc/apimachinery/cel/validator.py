"""Running a CRD's compiled rules against a custom resource on create and update, as apiextensions-apiserver does.

The walk follows the object through the schema nodes that hold rules. On an update every value is paired with
its old value where one corresponds: the same property, the same map key, the list item with the same
`x-kubernetes-list-map-keys` (items of other lists have none). Transition rules (those using `oldSelf`) run only
where an old value exists, unless `optionalOldSelf` lets them run with an empty optional. Rules without `oldSelf`
on a value that did not change are skipped (upstream's validation ratcheting), so a rule added later does not
block updates of objects stored before it.

Each rule's cost is charged against a per-object budget before it runs. A rule whose static bound is small is
charged that bound, and a node's cheap rules without `oldSelf` run as one program (one trip into cel-cpp); a dear
rule runs alone, charged its estimate for the size of the actual value, so one evaluation can neither run away nor
stall the event loop for long. A non-bool result counts as a failure, as upstream reports it.
"""

from __future__ import annotations

from typing import Any

import orjson

from tmc.apimachinery.cel.compiler import activation
from tmc.apimachinery.cel.cost import PER_CALL_LIMIT, RUNTIME_BUDGET, Estimator
from tmc.apimachinery.cel.decide import Decider
from tmc.apimachinery.cel.folding import values as fold_values
from tmc.apimachinery.cel.regex import values
from tmc.apimachinery.cel.rules import CHEAP, Node, Problem, Rule, compile_node
from tmc.apimachinery.validation_common import Cause, duplicate, forbidden, invalid, join, required

_MISSING: Any = object()
_OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
_BLOCKING = ("FieldValueTypeInvalid", "FieldValueNotSupported")
_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


_COMPILED: dict[bytes, tuple[CelValidator | None, dict[tuple[str, ...], list[Problem]]]] = {}


class _Budget:
    __slots__ = ("exhausted", "remaining")

    def __init__(self) -> None:
        self.remaining = RUNTIME_BUDGET
        self.exhausted = False


def _visible(value: Any, fields: frozenset[str] | None, resource: bool) -> Any:
    """What CEL gets as `self`: only the fields the node's rules read, and for a resource (the root, an embedded
    resource) metadata with only name and generateName, as upstream."""
    if type(value) is not dict:
        return value
    if fields is not None:
        value = {k: value[k] for k in fields if k in value}
    elif resource:
        value = dict(value)
    if resource:
        meta = value.get("metadata")
        if isinstance(meta, dict):
            value["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return value


def _decider_env(self_value: Any, matched: dict[str, Any] | None) -> dict[str, Any]:
    env = dict(matched) if matched else {}
    env["self"] = self_value
    return env


def _passes(decide: Decider, env: dict[str, Any]) -> bool:
    """Whether a decider says the rules pass; any doubt (Unknown, or an error of its own) leaves it to cel-cpp."""
    try:
        return decide(env)
    except Exception:
        return False


def _size_bucket(value: Any) -> int:
    size = len(orjson.dumps(value))
    return 1 << max(size, 64).bit_length()


class CelValidator:
    """The rules of one CRD version's schema, compiled once."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self._runtime_costs: dict[tuple[int, int], int] = {}

    @classmethod
    def build(cls, schema: dict[str, Any]) -> tuple[CelValidator | None, dict[tuple[str, ...], list[Problem]]]:
        """The validator of a schema (None without rules) and what CRD validation reports. Compiled once per
        schema content: the CRD's validation compiles, the served resource's StructuralSchema reuses it."""
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        hit = _COMPILED.get(key)
        if hit is None:
            problems: dict[tuple[str, ...], list[Problem]] = {}
            root = compile_node(schema, problems)
            hit = ((cls(root) if root is not None else None), problems)
            if len(_COMPILED) >= 256:
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = hit
        return hit

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None, prior: list[Cause]) -> list[Cause]:
        """Causes for `obj` (old: the stored object on update). `prior`: the schema's own causes; a type error
        among them stops the rules from running, as upstream."""
        if any(c.get("type") in _BLOCKING for c in prior):
            return [invalid("<nil>", None, _NOT_CHECKED)] if self.root is not None else []
        out: list[Cause] = []
        self._walk(self.root, obj, old if old is not None else _MISSING, "", out, _Budget(), True)
        return out

    def _walk(self, node: Node, value: Any, old: Any, path: str, out: list[Cause], budget: _Budget, root: bool) -> None:
        if budget.exhausted or value is None:
            return
        if node.rules:
            self._run(node, value, old, path, out, budget, root)
        t = type(value)
        old_t = type(old)
        if t is dict:
            for key, child in node.props.items():
                if key in value:
                    sub_old = old.get(key, _MISSING) if old_t is dict else _MISSING
                    self._walk(child, value[key], sub_old, join(path, key), out, budget, False)
            values = node.values
            if values is not None:
                for key, v in value.items():
                    if root and key in ("apiVersion", "kind", "metadata"):
                        continue
                    sub_old = old.get(key, _MISSING) if old_t is dict else _MISSING
                    self._walk(values, v, sub_old, f"{path}[{key}]", out, budget, False)
        elif t is list and node.items is not None:
            olds = self._correlate(node, value, old if old_t is list else None)
            for i, item in enumerate(value):
                self._walk(node.items, item, olds[i], f"{path}[{i}]", out, budget, False)

    @staticmethod
    def _correlate(node: Node, items: list[Any], old: list[Any] | None) -> list[Any]:
        """The old item for each new item: by map keys for list-type map lists, none otherwise."""
        if old is None or node.list_type != "map" or not node.map_keys:
            return [_MISSING] * len(items)
        keys = node.map_keys
        by_key: dict[bytes, Any] = {}
        for item in old:
            if isinstance(item, dict):
                by_key[orjson.dumps([item.get(k) for k in keys])] = item
        return [
            by_key.get(orjson.dumps([item.get(k) for k in keys]), _MISSING) if isinstance(item, dict) else _MISSING
            for item in items
        ]

    def _run(self, node: Node, value: Any, old: Any, path: str, out: list[Cause], budget: _Budget, root: bool) -> None:
        has_old = old is not _MISSING
        resource = root or node.embedded
        self_value = _visible(value, node.fields, resource)
        old_value = _visible(old, node.fields, resource) if has_old else old
        if node.numbers is not None:
            self_value = node.numbers(self_value)
            old_value = node.numbers(old_value) if has_old else old_value
        unchanged = has_old and value == old
        matched = None
        if node.matches or node.folds:
            matched = values(node.matches, self_value)
            fold_values(node.folds, self_value, matched)
        activations: dict[bool, Any] = {}
        shown = node.type
        where = path or "<nil>"
        batched: dict[int, Any] = {}
        rules = node.rules
        env: dict[str, Any] | None = None  # what the rules' Python deciders read
        if node.batch is not None and not unchanged:
            budget.remaining -= node.batch_cost
            if budget.remaining < 0:
                out.append(invalid(where, shown, _OUT_OF_BUDGET))
                budget.exhausted = True
                return
            if node.decide is not None and _passes(node.decide, env := _decider_env(self_value, matched)):
                rules = node.rest  # every batched rule passed, decided in Python: nothing for cel-cpp
            else:
                act = activations[False] = activation(self_value, old_value, False, has_old, matched)
                results, error = node.batch.run(act, matched)
                if error is None and isinstance(results, list):
                    if all(r is True for r in results):
                        rules = node.rest  # the common case: every batched rule passed
                    else:
                        batched = {id(r): res for r, res in zip(node.batched, results, strict=True)}
                else:  # some rule failed to evaluate: run them one by one below, already paid for
                    batched = {id(r): _MISSING for r in node.batched}
        for rule in rules:
            program = rule.program
            if program is None:
                out.append(invalid(where, shown, f"rule compile error: {rule.error}"))
                continue
            if program.uses_old and not has_old and not program.optional_old:
                continue
            if unchanged and not program.uses_old:
                continue  # ratcheting: a value that did not change is not checked again
            result = batched.get(id(rule), _MISSING) if batched else _MISSING
            if result is True:
                continue
            if id(rule) not in batched:
                charge = rule.cost if rule.cost <= CHEAP else self._runtime_cost(rule, self_value, old_value)
                if charge > PER_CALL_LIMIT:
                    out.append(invalid(where, shown, f"call cost exceeds limit for rule: {rule.default_message}"))
                    continue
                budget.remaining -= charge
                if budget.remaining < 0:
                    out.append(invalid(where, shown, _OUT_OF_BUDGET))
                    budget.exhausted = True
                    return
            if result is _MISSING and rule.decide is not None:
                if env is None:
                    env = _decider_env(self_value, matched)
                if _passes(rule.decide, env):
                    continue
            optional = program.optional_old
            act = activations.get(optional)
            if act is None:
                act = activations[optional] = activation(self_value, old_value, optional, has_old, matched)
            error = None
            if result is _MISSING:
                result, error = program.run(act, matched)
            if error is not None:
                out.append(invalid(where, shown, error))
            elif result is not True:
                out.append(self._failure(rule, path, shown, act, has_old, self_value, old_value))

    def _runtime_cost(self, rule: Rule, value: Any, old: Any) -> int:
        bucket = _size_bucket(value) if old is _MISSING else max(_size_bucket(value), _size_bucket(old))
        key = (id(rule), bucket)
        cost = self._runtime_costs.get(key)
        if cost is None:
            assert rule.program is not None
            cost = Estimator(rule.schema, bucket, cap=True).cost(rule.program.tree)
            cost = min(cost, rule.cost)
            if len(self._runtime_costs) > 4096:
                self._runtime_costs.clear()
            self._runtime_costs[key] = cost
        return cost

    @staticmethod
    def _failure(rule: Rule, path: str, shown: str, act: Any, has_old: bool, value: Any, old: Any) -> Cause:
        message = rule.default_message
        if rule.message_program is not None:
            plain = act if not (rule.program and rule.program.optional_old) else activation(value, old, False, has_old)
            text, error = rule.message_program.run(plain)
            if error is None and isinstance(text, str) and text.strip() and "\n" not in text:
                message = text
        field = path
        for key in rule.field_path:
            field = join(field, key) if key.replace("-", "_").isidentifier() else f"{field}[{key}]"
        field = field or "<nil>"
        if rule.reason == "FieldValueForbidden":
            return forbidden(field, message)
        if rule.reason == "FieldValueRequired":
            return required(field, message)
        if rule.reason == "FieldValueDuplicate":
            return duplicate(field, shown)
        return invalid(field, shown, message)
