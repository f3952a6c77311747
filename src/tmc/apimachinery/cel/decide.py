"""Deciding that a rule passes in Python, without a trip into cel-cpp, for the common shapes of rules.

Handing an object to cel-cpp costs more than most rules do: every value `self` holds is converted into a CEL value
(the activation), and the evaluation crosses into C++ and back. A rule built from field reads, comparisons, logic,
arithmetic, `in`, `size`, the string prefix tests, the comprehension macros (`all`, `exists`, `exists_one`, `map`,
`filter`, `cel.bind`) and the values regex.py and folding.py precompute is compiled here into one Python function
over the Python value. Only a pass is decided: whenever the answer is not a plain `true` (a false, a missing field,
an operand of another type, an overflow, anything not modelled) the rule runs in cel-cpp as before, so failures,
their messages and every error read exactly as they did. Where this module gives an answer it is cel-cpp's answer;
tests/unit/test_cel_decide.py runs both on the same rules and values.

Conservative on purpose: operands must have the same type (no heterogeneous numeric comparisons), integer arithmetic
stays within int64, and an error anywhere gives up on the whole rule even where CEL's commutative `&&`/`||` would
absorb it. The values read must be ones cel-cpp can take: the caller gives deciders only to nodes whose schema types
every value (rules.py), so no integer beyond int64 (a uint or an error to cel-cpp) can be among them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tmc.apimachinery.cel.ast import CALL, COMPREHENSION, CONST, IDENT, LIST, SELECT, Expr
from tmc.apimachinery.cel.folding import Unknown

Env = dict[str, Any]
Decider = Callable[[Env], bool]

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})  # compared with `==` as CEL compares them
_ORDERED: frozenset[type] = frozenset({str, int, float})
_NUMBERS: frozenset[type] = frozenset({int, float})
_ABSENT: Any = object()


class _Unsupported(Exception):
    """A part of a rule this module does not model: the rule gets no decider."""


def decider(tree: Expr, variables: frozenset[str]) -> Decider | None:
    """A function telling whether the rule `tree` evaluates to `true` for the variables in its argument (`self`,
    and the precomputed values named in `variables`); it raises Unknown when only cel-cpp can say. None when the
    rule uses something not modelled here."""
    writer = _Writer(variables)
    try:
        expression = writer.expression(tree, {"self": "S"})
    except _Unsupported:
        return None
    # A missing key, or a field read from something that is not a map, is CEL's "no such key" error.
    source = (
        "def rule(env):\n"
        "    S = env['self']\n"
        "    try:\n"
        f"        return ({expression}) is True\n"
        "    except (KeyError, TypeError):\n"
        "        raise Unknown('a field is missing or not a map') from None\n"
    )
    namespace: dict[str, Any] = {**_HELPERS, **writer.constants, "Unknown": Unknown}
    exec(compile(source, "<cel rule>", "exec"), namespace)
    made: Decider = namespace["rule"]
    return made


def every(deciders: list[Decider]) -> Decider:
    """One decider for several rules (a node's batch): true when every one of them passes."""

    def decide(env: Env) -> bool:
        return all(run(env) for run in deciders)

    return decide


class _Writer:
    """Writes a checked tree as one Python expression; constants go to a table (`K0`, `K1`, ...) so no value is
    ever written into source text."""

    def __init__(self, variables: frozenset[str]) -> None:
        self.variables = variables
        self.constants: dict[str, Any] = {}
        self.locals = 0

    def constant(self, value: Any) -> str:
        name = f"K{len(self.constants)}"
        self.constants[name] = value
        return name

    def expression(self, node: Expr, scope: dict[str, str]) -> str:
        kind = node.kind
        if kind == CONST:
            if type(node.value) not in _PLAIN:  # bytes, and uint (ast.Uint): not modelled
                raise _Unsupported("constant")
            return self.constant(node.value)
        if kind == IDENT:
            if node.name in scope:
                return scope[node.name]
            if node.name in self.variables:
                return f"_var(env, {self.constant(node.name)})"
            raise _Unsupported(node.name)
        if kind == SELECT:
            assert node.target is not None
            target = self.expression(node.target, scope)
            key = self.constant(node.name)
            return f"_has({target}, {key})" if node.test_only else f"{target}[{key}]"
        if kind == LIST:
            return "[" + "".join(f"{self.expression(a, scope)}, " for a in node.args) + "]"
        if kind == CALL:
            return self.call(node, scope)
        if kind == COMPREHENSION:
            return self.comprehension(node, scope)
        raise _Unsupported(kind)  # map literals

    def call(self, node: Expr, scope: dict[str, str]) -> str:
        name = node.name
        operands = [self.expression(a, scope) for a in ([node.target] if node.target else []) + node.args]
        if name in ("_&&_", "_||_") and len(operands) >= 2:
            joiner = " and " if name == "_&&_" else " or "
            return "(" + joiner.join(f"_b({o})" for o in operands) + ")"
        if name == "!_" and len(operands) == 1:
            return f"(not _b({operands[0]}))"
        if name == "_?_:_" and len(operands) == 3:
            return f"({operands[1]} if _b({operands[0]}) else {operands[2]})"
        helper = _CALLS.get((name, len(operands)))
        if helper is None:
            raise _Unsupported(name)
        return f"{helper}({', '.join(operands)})"

    def comprehension(self, node: Expr, scope: dict[str, str]) -> str:
        """The macros, recognised by the shape cel-cpp expands them to."""
        assert node.target is not None
        init, condition, step, result = node.parts
        accu = node.accu_var
        local = f"v{self.locals}"
        self.locals += 1
        if _is_empty_list(node.target) and _is_const(condition, False) and _is_ident(step, accu):  # cel.bind
            bound = self.expression(result, {**scope, accu: local})
            return f"(lambda {local}: {bound})({self.expression(init, scope)})"
        over = f"_iter({self.expression(node.target, scope)})"
        inner = {**scope, node.iter_var: local}
        shape = _macro(node)
        if shape is None:
            raise _Unsupported("comprehension")
        macro, parts = shape
        made = [self.expression(p, inner) for p in parts]
        if macro == "all":
            return f"all(_b({made[0]}) for {local} in {over})"
        if macro == "exists":
            return f"any(_b({made[0]}) for {local} in {over})"
        if macro == "exists_one":
            return f"(sum(1 for {local} in {over} if _b({made[0]})) == 1)"
        if macro == "map":
            return f"[{made[0]} for {local} in {over}]"
        return f"[{made[1]} for {local} in {over} if _b({made[0]})]"  # filter, or map with a filter


def _is_const(node: Expr, value: Any) -> bool:
    return node.kind == CONST and type(node.value) is type(value) and node.value == value


def _is_ident(node: Expr, name: str) -> bool:
    return node.kind == IDENT and node.name == name


def _is_empty_list(node: Expr) -> bool:
    return node.kind == LIST and not node.args


def _is_call(node: Expr, name: str, count: int) -> bool:
    return node.kind == CALL and node.name == name and node.target is None and len(node.args) == count


def _macro(node: Expr) -> tuple[str, list[Expr]] | None:
    """Which macro a comprehension is, and the parts written by the user (predicate, transform)."""
    init, condition, step, result = node.parts
    accu = node.accu_var
    if _is_ident(result, accu) and _is_call(condition, "@not_strictly_false", 1):
        test = condition.args[0]
        both = _is_call(step, "_&&_", 2) and _is_ident(step.args[0], accu)
        if _is_const(init, True) and _is_ident(test, accu) and both:
            return "all", [step.args[1]]
        negated = _is_call(test, "!_", 1) and _is_ident(test.args[0], accu)
        if _is_const(init, False) and negated and _is_call(step, "_||_", 2) and _is_ident(step.args[0], accu):
            return "exists", [step.args[1]]
        return None
    if not _is_const(condition, True):
        return None
    if _is_const(init, 0) and _is_call(step, "_?_:_", 3) and _is_call(result, "_==_", 2):
        predicate, counted, kept = step.args
        one = _is_const(result.args[1], 1) and _is_ident(result.args[0], accu) and _is_ident(kept, accu)
        if one and _is_call(counted, "_+_", 2) and _is_ident(counted.args[0], accu) and _is_const(counted.args[1], 1):
            return "exists_one", [predicate]
        return None
    if not (_is_empty_list(init) and _is_ident(result, accu)):
        return None
    if _appends(step, accu):
        return "map", [step.args[1].args[0]]
    if _is_call(step, "_?_:_", 3) and _appends(step.args[1], accu) and _is_ident(step.args[2], accu):
        return "filter", [step.args[0], step.args[1].args[1].args[0]]
    return None


def _appends(step: Expr, accu: str) -> bool:
    """`accu + [x]`: one element added to the accumulated list."""
    if not (_is_call(step, "_+_", 2) and _is_ident(step.args[0], accu)):
        return False
    added = step.args[1]
    return added.kind == LIST and len(added.args) == 1


# ---------------------------------------------------------------- what the written functions call


def _b(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Unknown("not a bool")


def _var(env: Env, name: str) -> Any:
    value = env.get(name, _ABSENT)
    if value is _ABSENT:
        raise Unknown(name)  # a precomputed value that could not be worked out for this object
    if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        raise Unknown("integer out of range")
    return value


def _has(value: Any, key: str) -> bool:
    if type(value) is not dict:
        raise Unknown("has() of a non-map")
    return key in value


def _iter(value: Any) -> Any:
    if type(value) is list or type(value) is dict:
        return value  # a map's keys, as CEL iterates a map
    raise Unknown("cannot iterate")


def _int(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise Unknown("integer overflow")
    return value


def _same(a: Any, b: Any, allowed: frozenset[type]) -> type:
    """The one type of two operands, when both have it and it is allowed."""
    t = type(a)
    if t is not type(b) or t not in allowed:
        raise Unknown("no matching overload")
    return t


def _eq(a: Any, b: Any) -> bool:
    _same(a, b, _PLAIN)
    return bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    _same(a, b, _PLAIN)
    return bool(a != b)


def _lt(a: Any, b: Any) -> bool:
    _same(a, b, _ORDERED)
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    _same(a, b, _ORDERED)
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    _same(a, b, _ORDERED)
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    _same(a, b, _ORDERED)
    return bool(a >= b)


def _add(a: Any, b: Any) -> Any:
    if type(a) is list and type(b) is list:
        return a + b
    t = _same(a, b, _ORDERED)
    return _int(a + b) if t is int else a + b


def _sub(a: Any, b: Any) -> Any:
    t = _same(a, b, _NUMBERS)
    return _int(a - b) if t is int else a - b


def _mul(a: Any, b: Any) -> Any:
    t = _same(a, b, _NUMBERS)
    return _int(a * b) if t is int else a * b


def _div(a: Any, b: Any) -> Any:
    t = _same(a, b, _NUMBERS)
    if not b:
        raise Unknown("division by zero")
    if t is float:
        return a / b
    quotient = abs(a) // abs(b)  # CEL truncates toward zero
    return _int(quotient if (a < 0) == (b < 0) else -quotient)


def _mod(a: Any, b: Any) -> Any:
    if type(a) is not int or type(b) is not int:
        raise Unknown("no matching overload")
    if not b or (a == _INT_MIN and b == -1):
        raise Unknown("modulus by zero or overflow")
    remainder = abs(a) % abs(b)  # the sign of the dividend, as in C and Go
    return remainder if a >= 0 else -remainder


def _neg(a: Any) -> Any:
    t = type(a)
    if t is int:
        return _int(-a)
    if t is float:
        return -a
    raise Unknown("no matching overload")


def _in(a: Any, b: Any) -> bool:
    t = type(b)
    if t is list:
        compared = [_eq(a, item) for item in b]  # every item compared: one of another type gives up
        return any(compared)
    if t is dict and type(a) is str:
        return a in b
    raise Unknown("no matching overload")


def _index(a: Any, b: Any) -> Any:
    if type(a) is list and type(b) is int:
        if not 0 <= b < len(a):
            raise Unknown("index out of range")
        return a[b]
    if type(a) is dict and type(b) is str:
        if b not in a:
            raise Unknown(f"no such key: {b}")
        return a[b]
    raise Unknown("no matching overload")


def _size(a: Any) -> int:
    if type(a) is str or type(a) is list or type(a) is dict:
        return len(a)
    raise Unknown("no matching overload")


def _strings(a: Any, b: Any) -> None:
    if type(a) is not str or type(b) is not str:
        raise Unknown("no matching overload")


def _starts(a: Any, b: Any) -> bool:
    _strings(a, b)
    return bool(a.startswith(b))


def _ends(a: Any, b: Any) -> bool:
    _strings(a, b)
    return bool(a.endswith(b))


def _contains(a: Any, b: Any) -> bool:
    _strings(a, b)
    return b in a


# CEL function (name, operand count, receiver included) -> the helper a written function calls.
_CALLS = {
    ("_==_", 2): "_eq",
    ("_!=_", 2): "_ne",
    ("_<_", 2): "_lt",
    ("_<=_", 2): "_le",
    ("_>_", 2): "_gt",
    ("_>=_", 2): "_ge",
    ("_+_", 2): "_add",
    ("_-_", 2): "_sub",
    ("_*_", 2): "_mul",
    ("_/_", 2): "_div",
    ("_%_", 2): "_mod",
    ("-_", 1): "_neg",
    ("@in", 2): "_in",
    ("_[_]", 2): "_index",
    ("size", 1): "_size",
    ("startsWith", 2): "_starts",
    ("endsWith", 2): "_ends",
    ("contains", 2): "_contains",
}
_HELPERS: dict[str, Any] = {name: globals()[name] for name in {*_CALLS.values(), "_b", "_var", "_has", "_iter"}}
