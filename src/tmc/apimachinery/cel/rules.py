"""A CRD schema's `x-kubernetes-validations`, compiled once into a tree of the schema nodes that carry rules.

`compile_schema` is what both callers share: CRD validation (`check.py`) turns its problems into causes on the
CRD, and the validator (`validator.py`) runs what compiled. Only subtrees that hold rules are kept, so an object is
walked no deeper than its rules reach.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tmc.apimachinery.cel import folding, regex
from tmc.apimachinery.cel.ast import decode_checked, self_fields
from tmc.apimachinery.cel.compiler import (
    CompileError,
    Program,
    add_fast,
    as_list,
    check_rewrite,
    compile_combined,
    compile_expression,
    literal_pattern,
)
from tmc.apimachinery.cel.cost import MAX_REQUEST_BYTES, PER_RULE_LIMIT, Estimator, cost_factor_message, max_size
from tmc.apimachinery.cel.decide import Decider, decider, every

# Rules whose static bound is at most this are charged it as it is, and may share one evaluation with the node's
# other such rules; dearer ones run alone, charged for the size of the actual value (validator.py).
CHEAP = 10_000
REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate")
_FIELD_PATH_TOKEN = re.compile(r"\.([A-Za-z_$][A-Za-z0-9_$-]*)|\['((?:[^'\\]|\\.)*)'\]")


@dataclass(slots=True)
class Problem:
    """Something CRD validation reports about a rule: the key under `x-kubernetes-validations[i]`, the value, the
    detail, and the cause type."""

    index: int
    key: str
    value: Any
    detail: str
    kind: str = "invalid"


@dataclass(slots=True)
class Rule:
    source: str
    program: Program | None  # None: it did not compile (a CRD stored before rules were checked)
    error: str
    message: str
    message_program: Program | None
    field_path: tuple[str, ...]  # where the error points, below the node
    reason: str
    cost: int  # the static estimate for a request of the largest size
    schema: dict[str, Any]
    where: tuple[str, ...]  # schema location: ("properties", "spec", "items")
    index: int
    cardinality: int  # how many times it can run in one object of the largest size
    correlatable: bool  # no atomic or set list above it: an old value can be found for it
    decide: Decider | None = None  # whether it passes, worked out in Python where it can be (decide.py)

    @property
    def default_message(self) -> str:
        return self.message or f"failed rule: {self.source}"


@dataclass(slots=True)
class Node:
    type: str
    rules: tuple[Rule, ...] = ()
    props: dict[str, Node] = field(default_factory=dict)
    values: Node | None = None  # additionalProperties
    items: Node | None = None
    list_type: str = ""
    map_keys: tuple[str, ...] = ()
    embedded: bool = False
    # The cheap rules without oldSelf, run as one program, and what they cost together.
    batch: Program | None = None
    batched: tuple[Rule, ...] = ()
    batch_cost: int = 0
    rest: tuple[Rule, ...] = ()  # the rules not in the batch
    # The fields of an object value that its rules and messages read through `self`/`oldSelf`, or None for the
    # whole value: only those are handed to CEL (converting a whole resource for `self.metadata.name` is waste).
    fields: frozenset[str] | None = None
    # Makes the JSON integers the schema declares `number` doubles, as upstream's CEL sees them (None: no such field).
    numbers: Callable[[Any], Any] | None = None
    # Constant `matches` patterns and library calls on fields of `self` in the node's rules, worked out before CEL
    # runs (regex.py, folding.py).
    matches: tuple[regex.Binding, ...] = ()
    folds: tuple[folding.Fold, ...] = ()
    decide: Decider | None = None  # whether every batched rule passes, when each has a decider


def parse_field_path(path: str, schema: dict[str, Any]) -> tuple[str, ...] | None:
    """The keys of a rule's `fieldPath` (`.spec.a`, `['a.b']`), or None where it does not name a schema field."""
    keys: list[str] = []
    pos = 0
    node: dict[str, Any] | None = schema
    while pos < len(path):
        m = _FIELD_PATH_TOKEN.match(path, pos)
        if m is None:
            return None
        key = m.group(1) if m.group(1) is not None else re.sub(r"\\(.)", r"\1", m.group(2))
        props = (node or {}).get("properties") or {}
        extra = (node or {}).get("additionalProperties")
        if key in props:
            node = props[key]
        elif isinstance(extra, dict):
            node = extra
        elif not (node or {}).get("x-kubernetes-preserve-unknown-fields"):
            return None
        else:
            node = None
        keys.append(key)
        pos = m.end()
    return tuple(keys) if keys else None


def _undefined_fields(program: Program, undefined: list[tuple[int, str]]) -> str:
    """cel-go's check error for fields the schema does not declare, with cel-cpp's source excerpt."""
    lines = program.source.split("\n")
    parts = []
    for node_id, name in undefined:
        line, column = program.checked.location(node_id)
        text = lines[line - 1] if line - 1 < len(lines) else ""
        parts.append(f"ERROR: <input>:{line}:{column}: undefined field '{name}'\n | {text}\n | {'.' * (column - 1)}^")
    return "compilation failed: " + "\n".join(parts)


def compile_rule(
    raw: Any,
    index: int,
    schema: dict[str, Any],
    problems: list[Problem],
    place: tuple[tuple[str, ...], int, bool],
    root: bool = False,
) -> Rule | None:
    """One entry of `x-kubernetes-validations`; problems are appended for CRD validation. `place` is the schema
    location, the cardinality and whether it is correlatable."""
    if not isinstance(raw, dict):
        problems.append(Problem(index, "", raw, "must be an object"))
        return None
    source = raw.get("rule")
    if not isinstance(source, str) or not source.strip():
        problems.append(Problem(index, "rule", source, "", "required"))
        return None
    message = raw.get("message")
    message = message if isinstance(message, str) else ""
    if "message" in raw and message and not message.strip():
        problems.append(Problem(index, "message", message, "message must be non-empty if specified"))
    if "\n" in message:
        problems.append(Problem(index, "message", message, "message must not contain line breaks"))
    reason = raw.get("reason") or "FieldValueInvalid"
    if reason not in REASONS:
        problems.append(Problem(index, "reason", reason, "", "not_supported"))
    optional_old = bool(raw.get("optionalOldSelf"))
    program: Program | None = None
    error = ""
    try:
        program = compile_expression(source, "bool", optional_old)
    except CompileError as exc:
        error = str(exc)
        problems.append(Problem(index, "rule", source, error))
    if program is not None and optional_old and not program.uses_old:
        problems.append(Problem(index, "optionalOldSelf", True, "may not be set if rule does not use oldSelf"))
    message_program = None
    expr = raw.get("messageExpression")
    if isinstance(expr, str) and expr:
        if not expr.strip():
            problems.append(Problem(index, "messageExpression", expr, "must be non-empty if specified"))
        else:
            try:
                message_program = compile_expression(expr, "string")
            except CompileError as exc:
                problems.append(Problem(index, "messageExpression", expr, f"messageExpression {exc}"))
    field_path: tuple[str, ...] = ()
    raw_path = raw.get("fieldPath")
    if isinstance(raw_path, str) and raw_path:
        parsed = parse_field_path(raw_path, schema)
        if parsed is None:
            problems.append(Problem(index, "fieldPath", raw_path, "fieldPath must be a valid path"))
        else:
            field_path = parsed
    cost = 0
    if program is not None:
        estimator = Estimator(schema, root=root)
        cost = estimator.cost(program.tree)
        if estimator.undefined:
            error = _undefined_fields(program, estimator.undefined)
            problems.append(Problem(index, "rule", source, error))
            program = None
    if message_program is not None:
        message_estimator = Estimator(schema, root=root)
        message_cost = message_estimator.cost(message_program.tree)
        if message_estimator.undefined:
            detail = "messageExpression " + _undefined_fields(message_program, message_estimator.undefined)
            problems.append(Problem(index, "messageExpression", message_program.source, detail))
            message_program = None
        if message_cost > PER_RULE_LIMIT:
            detail = cost_factor_message("estimated messageExpression cost", message_cost, PER_RULE_LIMIT)
            problems.append(Problem(index, "messageExpression", None, detail, "forbidden"))
    where, cardinality, correlatable = place
    return Rule(
        source,
        program,
        error,
        message,
        message_program,
        field_path,
        str(reason),
        cost,
        schema,
        where,
        index,
        cardinality,
        correlatable,
    )


def _to_double(value: Any) -> Any:
    return float(value) if type(value) is int else value


def number_converter(raw: dict[str, Any]) -> Callable[[Any], Any] | None:
    """A function copying a value with its `number` fields as doubles, or None when the schema has none."""
    stype = raw.get("type")
    if stype == "number":
        return _to_double
    if stype == "array" and isinstance(raw.get("items"), dict):
        item = number_converter(raw["items"])
        if item is None:
            return None
        return lambda v: [item(x) for x in v] if type(v) is list else v
    declared = raw.get("properties")
    props: dict[str, Any] = declared if isinstance(declared, dict) else {}
    subs = {k: c for k, sub in props.items() if isinstance(sub, dict) and (c := number_converter(sub)) is not None}
    extra = raw.get("additionalProperties")
    values = number_converter(extra) if isinstance(extra, dict) else None
    if not subs and values is None:
        return None

    def convert(v: Any) -> Any:
        if type(v) is not dict:
            return v
        out = dict(v)
        for key, c in subs.items():
            if key in out:
                out[key] = c(out[key])
        if values is not None:
            for key in out:
                if key not in props:
                    out[key] = values(out[key])
        return out

    return convert


def _read_fields(rules: list[Rule]) -> frozenset[str] | None:
    fields: set[str] = set()
    for rule in rules:
        for program in (rule.program, rule.message_program):
            if program is None:
                continue
            for name in ("self", "oldSelf"):
                used = self_fields(program.tree, name)
                if used is None:
                    return None
                fields |= used
    return frozenset(fields)


def _precompute(node: Node, rules: list[Rule]) -> dict[int, tuple[str, frozenset[str]]]:
    """Rewrite the rules' library calls on `self`'s fields (folding.py) and constant `matches` calls (regex.py) to
    read values worked out in Python; returns the rewritten source and the variables it reads, by rule."""
    bindings: list[regex.Binding] = []
    folds: list[folding.Fold] = []
    rewrites: dict[int, tuple[str, frozenset[str]]] = {}
    for rule in rules:
        program = rule.program
        if program is None or program.optional_old:
            continue
        source, checked, reads = rule.source, program.checked, frozenset[str]()
        folded = folding.rewrite(source, checked, folds, check_rewrite)
        if folded is not None:
            source, checked, reads = folded
        matched = regex.rewrite(source, checked.root, bindings, literal_pattern)
        if matched is not None:
            source, reads = matched[0], reads | matched[1]
        if reads:
            rewrites[id(rule)] = (source, reads)
    node.matches, node.folds = tuple(bindings), tuple(folds)
    for rule in rules:
        if id(rule) in rewrites and rule.program is not None:
            add_fast(rule.program, *rewrites[id(rule)], len(bindings), len(folds))
    return rewrites


_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")  # strings, and metadata cut to its names (validator.py)


def typed(raw: dict[str, Any], fields: frozenset[str] | None = None, resource: bool = False) -> bool:
    """Whether the schema declares a scalar type for every value below it (`fields`: only those properties), so
    that a value that passed it holds nothing outside JSON's types and no integer beyond int64 (which cel-cpp takes
    as a uint or refuses, depending on where it is): what the Python deciders assume."""
    if raw.get("x-kubernetes-preserve-unknown-fields") or raw.get("x-kubernetes-int-or-string"):
        return False
    kind = raw.get("type")
    if kind in ("string", "integer", "number", "boolean"):
        return True
    if kind == "array":
        items = raw.get("items")
        return isinstance(items, dict) and typed(items)
    if kind != "object":
        return False
    extra = raw.get("additionalProperties")
    if extra is True or (isinstance(extra, dict) and not typed(extra)):
        return False
    declared = raw.get("properties")
    props: dict[str, Any] = declared if isinstance(declared, dict) else {}
    for key, sub in props.items():
        if (fields is not None and key not in fields) or (resource and key in _RESOURCE_FIELDS):
            continue
        if not isinstance(sub, dict) or not typed(sub):
            return False
    return True


def _add_deciders(node: Node, rules: list[Rule], raw: dict[str, Any], resource: bool) -> None:
    """Give the rules without `oldSelf` their Python deciders, on the rewritten tree where there is one (it reads
    the precomputed values instead of calling libraries), and the batch one when every batched rule has one; none
    where the schema leaves some value's type open."""
    if not typed(raw, node.fields, resource):
        return
    variables = frozenset(b.name for b in node.matches) | frozenset(f.name for f in node.folds)
    for rule in rules:
        program = rule.program
        if program is None or program.uses_old:
            continue
        tree = decode_checked(program.fast.serialize()).root if program.fast is not None else program.tree
        rule.decide = decider(tree, variables)
    found = [r.decide for r in node.batched if r.decide is not None]
    if node.batched and len(found) == len(node.batched):
        node.decide = every(found)


def compile_node(
    raw: dict[str, Any],
    problems: dict[tuple[str, ...], list[Problem]],
    where: tuple[str, ...] = (),
    cardinality: int = 1,
    correlatable: bool = True,
) -> Node | None:
    """The rule tree under `raw`, or None when no rule is at or below it. `problems` collects, per schema location
    (`("properties", "spec", "items")`), what CRD validation reports. Items of a list and values of a map run
    their rules once per element: `cardinality` multiplies by the largest count (for the per-CRD cost limit), and
    below a list that is not `x-kubernetes-list-type: map` no old element corresponds to a new one."""
    rules: list[Rule] = []
    entries = raw.get("x-kubernetes-validations")
    if isinstance(entries, list) and entries:
        found: list[Problem] = []
        for i, entry in enumerate(entries):
            rule = compile_rule(entry, i, raw, found, (where, cardinality, correlatable), root=not where)
            if rule is not None:
                rules.append(rule)
        if found:
            problems[where] = found
    node = Node(
        type=str(raw.get("type") or ""),
        rules=tuple(rules),
        list_type=str(raw.get("x-kubernetes-list-type") or ""),
        map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
        embedded=bool(raw.get("x-kubernetes-embedded-resource")),
    )
    rewrites = _precompute(node, rules)
    cheap = [r for r in rules if r.program is not None and not r.program.uses_old and r.cost <= CHEAP]
    if len(cheap) > 1:
        node.batch = compile_combined([r.source for r in cheap])
        if node.batch is not None:
            node.batched = tuple(cheap)
            node.batch_cost = sum(r.cost for r in cheap)
            if any(id(r) in rewrites for r in cheap):
                texts = [rewrites[id(r)][0] if id(r) in rewrites else r.source for r in cheap]
                reads = frozenset().union(*(rewrites[id(r)][1] for r in cheap if id(r) in rewrites))
                add_fast(node.batch, as_list(texts), reads, len(node.matches), len(node.folds))
    node.rest = tuple(r for r in rules if r not in node.batched)
    node.fields = _read_fields(rules) if node.type == "object" else None
    _add_deciders(node, rules, raw, resource=not where or node.embedded)
    if rules:
        node.numbers = number_converter(raw)
    props = raw.get("properties")
    if isinstance(props, dict):
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            child = compile_node(sub, problems, (*where, "properties", key), cardinality, correlatable)
            if child is not None:
                node.props[key] = child
    times = cardinality * max(max_size(raw, MAX_REQUEST_BYTES), 1)
    extra = raw.get("additionalProperties")
    if isinstance(extra, dict):
        node.values = compile_node(extra, problems, (*where, "additionalProperties"), times, correlatable)
    items = raw.get("items")
    if isinstance(items, dict):
        keyed = node.list_type == "map"
        node.items = compile_node(items, problems, (*where, "items"), times, correlatable and keyed)
    if not node.rules and not node.props and node.values is None and node.items is None:
        return None
    return node
