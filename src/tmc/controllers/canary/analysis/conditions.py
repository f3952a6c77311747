"""`successCondition` / `failureCondition`: CEL expressions over `result`, compiled with cel-expr-python.

Argo writes conditions in expr-lang; its common forms are CEL already (`result < 0.01`, `result[0] >= 0.95`,
`result > 0 && result < 5`), and its functions are mapped before compiling: `len(x)` -> `size(x)`,
`isNaN(x)` -> `math.isNaN(x)`, `isInf(x)` -> `math.isInf(x)`.

What `result` is depends on how the expression uses it: an expression that indexes it, takes its size, iterates it
or tests membership in it sees the list of values the query returned (Argo's vector form, possibly empty); any other
expression sees the one value, and a query that returned none or several is an error, not a verdict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery.cel.ast import CALL, COMPREHENSION, IDENT, Expr, decode_checked, walk

VARIABLE = "result"
_ARGO_HELPERS = {"len": "size", "isNaN": "math.isNaN", "isInf": "math.isInf"}
# A call of one of them outside string literals, not a method or part of a longer name.
_TOKENS = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?<![\w.])(len|isNaN|isInf)(?=\s*\()""")
_LIST_CALLS = {"_[_]": 0, "size": 0, "@in": 1}


class ConditionError(ValueError):
    """A condition that does not compile, or that cannot be evaluated on a result."""


def to_cel(source: str) -> str:
    """Argo's function names rewritten to CEL's."""
    return _TOKENS.sub(lambda m: m.group(1) or _ARGO_HELPERS[m.group(2)], source)


@functools.cache
def _env() -> Any:
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_math, ext_strings

    return cel.NewEnv(variables={VARIABLE: cel.Type.DYN}, extensions=[ext_math.ExtMath(), ext_strings.ExtStrings()])


def _clean(exc: Exception) -> str:
    text = re.sub(r"\s*\[[A-Z_]+\]\s*$", "", str(exc))
    return re.sub(r"^[A-Z_]+: ", "", text, count=1).strip()


def _is_result(node: Expr | None) -> bool:
    return node is not None and node.kind == IDENT and node.name == VARIABLE


def uses_as_list(root: Expr) -> bool:
    for node in walk(root):
        if node.kind == COMPREHENSION and _is_result(node.target):
            return True
        if node.kind == CALL:
            if node.name == "size" and _is_result(node.target):
                return True
            position = _LIST_CALLS.get(node.name)
            if position is not None and len(node.args) > position and _is_result(node.args[position]):
                return True
    return False


@dataclass(frozen=True)
class Condition:
    """One compiled condition; `source` is what the user wrote."""

    source: str
    program: Any
    as_list: bool

    def bind(self, values: Sequence[Any]) -> Any:
        """The value `result` holds for a reading of `values` (one per series or JSONPath match)."""
        if self.as_list:
            if len(values) == 1 and isinstance(values[0], list):
                return list(values[0])
            return list(values)
        if len(values) == 1:
            return values[0]
        if not values:
            raise ConditionError("the query returned no value")
        raise ConditionError(
            f"the query returned {len(values)} values and {self.source!r} compares one; "
            "aggregate them in the query or use result[0]"
        )

    def evaluate(self, values: Sequence[Any]) -> bool:
        from cel_expr_python import cel

        env = _env()
        outcome = self.program.eval(env.Activation(data={VARIABLE: self.bind(values)}))
        if outcome.type() == cel.Type.ERROR:
            raise ConditionError(f"evaluating {self.source!r}: {_clean(Exception(str(outcome.value())))}")
        value = outcome.plain_value()
        if not isinstance(value, bool):
            raise ConditionError(f"{self.source!r} evaluated to {value!r}, not a bool")
        return value


@functools.lru_cache(maxsize=256)
def compile_condition(source: str) -> Condition:
    """ConditionError with CEL's message for an expression that does not compile or is not a bool."""
    try:
        checked = _env().compile(to_cel(source))
    except RuntimeError as exc:
        raise ConditionError(_clean(exc)) from exc
    returned = checked.return_type().name()
    if returned not in ("BOOL", "DYN"):
        raise ConditionError(f"must evaluate to a bool, not {returned.lower()}")
    return Condition(source, checked, uses_as_list(decode_checked(checked.serialize()).root))
