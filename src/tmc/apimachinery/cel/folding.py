"""Kubernetes library calls fixed by the object, worked out in Python before CEL runs.

Each call of a Python library function from cel-cpp costs 2 to 4 µs and, with cel-expr-python 0.1.3, keeps its
arguments (callbacks.py). A call whose receiver and arguments are constants, fields of `self` or other such calls
(`quantity(self.memory).isLessThan(quantity('64Gi'))`, `url(self.endpoint).getScheme()`) has a value that only the
object decides: the validator computes it with the same Python functions and hands it to CEL as a variable
(`__tmc_fnN`), as regex.py does for `matches`. The rewritten source must compile to the original tree with those
calls replaced by the variables, or the rule is left as written. When a value cannot be worked out for the object
at hand (a missing field, a value of another type, the function's own error), the original program runs, so
errors and short-circuits read exactly as before.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery.cel.ast import CALL, COMPREHENSION, CONST, IDENT, LIST, SELECT, Checked, Expr, Uint, walk
from tmc.apimachinery.cel.libraries import Overload, library_overloads
from tmc.apimachinery.cel.regex import RESERVED, string_end

VARIABLE_PREFIX = "__tmc_fn"
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.]")


class Unknown(Exception):
    """The value cannot be worked out for this object: the original program must run."""


# The Python types a parameter of each kind accepts (by exact type: a bool is not an int to CEL).
_STRING = frozenset({str})
_TYPES: dict[str, frozenset[type]] = {
    "l": frozenset({list}),
    "s": _STRING,
    "q": _STRING,
    "u": _STRING,
    "i": frozenset({int}),
    "d": frozenset({str, int, float, bool, type(None)}),
}

Compute = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Fold:
    """One precomputed call: the variable CEL reads, a key equal for equal calls, and how to work it out from
    `self`'s value (raises Unknown when it cannot)."""

    name: str
    key: str
    compute: Compute


@dataclass(frozen=True, slots=True)
class _Part:
    compute: Compute
    key: str
    constant: bool  # the same for every object: worked out once, when the rule is compiled


def _constant(value: Any) -> Compute:
    return lambda _self: value


def _field(path: tuple[str, ...]) -> Compute:
    def read(value: Any) -> Any:
        for key in path:
            if type(value) is not dict or key not in value:
                raise Unknown(key)
            value = value[key]
        return value

    return read


def _apply(impl: Callable[..., Any], *values: Any) -> Any:
    try:
        return impl(*values)
    except Exception as exc:  # the function's own error: CEL must report it as it does
        raise Unknown(str(exc)) from exc


def _call(overloads: tuple[Overload, ...], operands: list[Compute]) -> Compute:
    """The call's computation; the commonest shapes (one overload, one or two operands) without loops."""
    if len(overloads) == 1 and len(operands) in (1, 2):
        impl = overloads[0].impl
        types = [_TYPES[k] for k in overloads[0].params]
        if len(operands) == 1:
            (op,), (t,) = operands, types

            def call1(self_value: Any) -> Any:
                v = op(self_value)
                if type(v) not in t:
                    raise Unknown("no matching overload")
                return _apply(impl, v)

            return call1
        (op1, op2), (t1, t2) = operands, types

        def call2(self_value: Any) -> Any:
            a, b = op1(self_value), op2(self_value)
            if type(a) not in t1 or type(b) not in t2:
                raise Unknown("no matching overload")
            return _apply(impl, a, b)

        return call2

    def call(self_value: Any) -> Any:
        values = [op(self_value) for op in operands]
        for ov in overloads:
            if all(type(v) in _TYPES[k] for k, v in zip(ov.params, values, strict=True)):
                return _apply(ov.impl, *values)
        raise Unknown("no matching overload")

    return call


def _self_path(node: Expr) -> tuple[str, ...] | None:
    path: list[str] = []
    while node.kind == SELECT and not node.test_only and node.target is not None:
        path.append(node.name)
        node = node.target
    if node.kind != IDENT or node.name != "self" or not path:
        return None
    if any(p.startswith("__") or p in RESERVED for p in path):
        return None  # written escaped in the source (`__namespace__`): the text would not read as the field
    return tuple(reversed(path))


def _projection(node: Expr) -> _Part | None:
    """`self.<path>.map(x, x.<fields>)`, the macro's expansion, as a computation; None for any other loop."""
    source = _self_path(node.target) if node.target is not None else None
    init, condition, step, result = node.parts
    if source is None or init.kind != LIST or init.args or condition.kind != CONST or condition.value is not True:
        return None
    if result.kind != IDENT or result.name != node.accu_var or step.kind != CALL or step.name != "_+_":
        return None
    accu, added = step.args
    if accu.kind != IDENT or accu.name != node.accu_var or added.kind != LIST or len(added.args) != 1:
        return None
    fields: list[str] = []
    element = added.args[0]
    while element.kind == SELECT and not element.test_only and element.target is not None:
        fields.append(element.name)
        element = element.target
    if element.kind != IDENT or element.name != node.iter_var or not fields:
        return None
    read_list, read_item = _field(source), _field(tuple(reversed(fields)))

    def project(self_value: Any) -> list[Any]:
        items = read_list(self_value)
        if type(items) is not list:
            raise Unknown("not a list")
        return [read_item(item) for item in items]

    key = f"map(self.{'.'.join(source)},{'.'.join(reversed(fields))})"
    return _Part(project, key, False)


class _Builder:
    """Turns foldable subtrees into computations, and finds their text in the source."""

    def __init__(self, source: str, checked: Checked) -> None:
        self.source = source
        self.positions = checked.positions

    def compute(self, node: Expr) -> _Part | None:
        """How to work `node` out; None when it depends on more than `self`'s fields."""
        if node.kind == CONST:
            if node.id not in self.positions or isinstance(node.value, Uint):
                return None  # a uint literal: a Python int would reach the library as a CEL int
            return _Part(_constant(node.value), repr(node.value), True)
        if node.kind == SELECT:
            path = _self_path(node)
            return _Part(_field(path), "self." + ".".join(path), False) if path is not None else None
        if node.kind == COMPREHENSION:
            return _projection(node)
        if node.kind != CALL:
            return None
        overloads = library_overloads().get(node.name)
        if not overloads:
            return None
        member = node.target is not None
        operands = ([node.target] if node.target is not None else []) + node.args
        fitting = tuple(ov for ov in overloads if ov.member == member and len(ov.params) == len(operands))
        if not fitting:
            return None
        parts = [self.compute(op) for op in operands]
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        compute = _call(fitting, [p.compute for p in known])
        key = f"{node.name}{'@' if member else ''}({','.join(p.key for p in known)})"
        if not all(p.constant for p in known):
            return _Part(compute, key, False)
        try:
            return _Part(_constant(compute(None)), key, True)
        except Unknown:
            return None  # a constant call that fails (`quantity('x')`): CEL reports it, as written

    def start(self, node: Expr) -> int | None:
        if node.kind in (SELECT, CALL, COMPREHENSION) and node.target is not None:
            return self.start(node.target)
        pos = self.positions.get(node.id)
        if pos is None or node.kind != CALL:
            return pos
        i = pos  # a global call's position is its `(`: step back over spaces and the function's name
        while i > 0 and self.source[i - 1].isspace():
            i -= 1
        while i > 0 and _NAME_CHAR.match(self.source[i - 1]):
            i -= 1
        return i

    def end(self, node: Expr) -> int | None:
        """Just past the `)` closing a call."""
        pos = self.positions.get(node.id)
        if pos is None or not self.source.startswith("(", pos):
            return None
        depth, i = 0, pos
        while i < len(self.source):
            closed = string_end(self.source, i)
            if closed is not None:
                i = closed
                continue
            c = self.source[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None


def _foldable_roots(root: Expr) -> list[Expr] | None:
    """The outermost library calls in the tree; None when the tree rebinds `self` (a comprehension variable)."""
    nodes = walk(root)
    if any(n.kind == COMPREHENSION and "self" in (n.iter_var, n.accu_var) for n in nodes):
        return None
    out: list[Expr] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.kind == CALL and node.name in library_overloads():
            out.append(node)
            continue  # the outermost candidate; if it does not fold, its operands are tried below
        stack.extend(node.parts)
        stack.extend(node.args)
        if node.target is not None:
            stack.append(node.target)
    return out


def rewrite(
    source: str, checked: Checked, folds: list[Fold], recompile: Callable[[str, int], Checked | None]
) -> tuple[str, Checked, frozenset[str]] | None:
    """`source` with its outermost foldable library calls replaced by variables, the rewritten tree and the
    variables it reads; None when nothing folds. New folds are appended to `folds` (shared by a schema node's
    rules). `recompile(text, count)` checks a text with `count` fold variables declared (None if it fails)."""
    candidates = _foldable_roots(checked.root)
    if not candidates:
        return None
    builder = _Builder(source, checked)
    chosen: list[tuple[int, int, Expr, str]] = []
    pending = list(candidates)
    while pending:
        node = pending.pop()
        found = builder.compute(node)
        start, end = builder.start(node), builder.end(node)
        if found is None or start is None or end is None:
            # not foldable whole: its operands may be (the calls among them)
            for op in [*([node.target] if node.target is not None else []), *node.args]:
                roots = _foldable_roots(op)
                pending.extend(roots or [])
            continue
        if found.constant:
            continue  # nothing of the object in it: cel-cpp's constant folding is as good
        name = next((f.name for f in folds if f.key == found.key), None)
        if name is None:
            name = f"{VARIABLE_PREFIX}{len(folds)}"
            folds.append(Fold(name, found.key, found.compute))
        chosen.append((start, end, node, name))
    if not chosen:
        return None
    chosen.sort(key=lambda c: c[0])
    if any(a[1] > b[0] for a, b in itertools.pairwise(chosen)):
        return None
    pieces: list[str] = []
    last = 0
    for start, end, _, name in chosen:
        pieces += [source[last:start], f"({name})"]
        last = end
    text = "".join(pieces) + source[last:]
    rewritten = recompile(text, len(folds))
    replaced = {id(node): name for _, _, node, name in chosen}
    if rewritten is None or not same_shape(checked.root, rewritten.root, replaced):
        return None  # the text and the tree disagree on where the calls are: leave the rule as written
    return text, rewritten, frozenset(replaced.values())


def same_shape(original: Expr, rewritten: Expr, replaced: dict[int, str]) -> bool:
    """Whether `rewritten` is `original` with the nodes in `replaced` (by identity) read from those variables."""
    stack = [(original, rewritten)]
    while stack:
        a, b = stack.pop()
        if id(a) in replaced:
            if b.kind != IDENT or b.name != replaced[id(a)]:
                return False
            continue
        head = (a.kind, a.name, a.test_only, a.iter_var, a.accu_var)
        if head != (b.kind, b.name, b.test_only, b.iter_var, b.accu_var):
            return False
        if a.kind == CONST and (type(a.value) is not type(b.value) or a.value != b.value):
            return False
        if len(a.args) != len(b.args) or len(a.parts) != len(b.parts) or (a.target is None) != (b.target is None):
            return False
        stack.extend(zip(a.args, b.args, strict=True))
        stack.extend(zip(a.parts, b.parts, strict=True))
        if a.target is not None and b.target is not None:
            stack.append((a.target, b.target))
    return True


def values(folds: tuple[Fold, ...], self_value: Any, out: dict[str, Any]) -> None:
    """Add to `out` the value of every fold that can be worked out for `self_value` (the others are left out)."""
    for fold in folds:
        try:
            out[fold.name] = fold.compute(self_value)
        except Unknown:
            continue
