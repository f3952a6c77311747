"""Compiling rules with cel-expr-python (CEL's C++ implementation): the environment a CRD rule sees, and errors
worded as apiextensions-apiserver words them.

`self` and `oldSelf` are declared `dyn`: cel-cpp cannot declare map types from an OpenAPI schema, so schema-driven
type errors surface when a rule runs rather than when it compiles. A rule with `optionalOldSelf` is checked as
written (with `oldSelf` dyn, so `hasValue()` and friends type-check), then run as
`cel.bind(oldSelf, <old>[?'v'], <rule>)`, which gives it a real CEL optional that is empty on create.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

from tmc.apimachinery.cel.ast import Checked, Expr, decode_checked, references
from tmc.apimachinery.cel.callbacks import settle
from tmc.apimachinery.cel.folding import VARIABLE_PREFIX as FOLD_PREFIX
from tmc.apimachinery.cel.libraries import kubernetes_functions
from tmc.apimachinery.cel.regex import VARIABLE_PREFIX as MATCH_PREFIX

OLD_WRAPPER = "__tmc_old_self"
_STATUS = re.compile(r"^[A-Z_]+: ")
_STATUS_TAIL = re.compile(r"\s*\[[A-Z_]+\]\s*$")


class CompileError(ValueError):
    """A rule that does not compile; the message is upstream's (`compilation failed: ERROR: <input>:1:5: ...`)."""


def _extensions() -> list[Any]:
    # The Kubernetes libraries come last: declared as an extension after `strings`, their list overloads of
    # indexOf/lastIndexOf join the string ones instead of clashing with them.
    return [
        ext_optional.ExtOptional(),
        ext_strings.ExtStrings(),
        ext_bindings.ExtBindings(),
        cel.CelExtension("kubernetes", kubernetes_functions()),
    ]


@functools.cache
def _rule_env(matches: int = 0, folds: int = 0) -> Any:
    """`self` and `oldSelf`, and the precomputed `matches` results (regex.py) and library calls (folding.py) a
    node's rewritten rules read."""
    variables = {"self": cel.Type.DYN, "oldSelf": cel.Type.DYN}
    variables |= {f"{MATCH_PREFIX}{i}": cel.Type.BOOL for i in range(matches)}
    variables |= {f"{FOLD_PREFIX}{i}": cel.Type.DYN for i in range(folds)}
    return cel.NewEnv(variables=variables, extensions=_extensions())


@functools.cache
def _optional_env() -> Any:
    return cel.NewEnv(variables={"self": cel.Type.DYN, OLD_WRAPPER: cel.Type.DYN}, extensions=_extensions())


# cel-cpp's wording of the commonest evaluation errors, and cel-go's (what kube-apiserver answers).
_GO_WORDING = (
    (re.compile(r'^Key not found in map : "(.*)"$'), r"no such key: \1"),
    (re.compile(r"^divide by zero$"), "division by zero"),
)


def clean_error(exc: Exception) -> str:
    """cel-cpp's status text without its code (`INVALID_ARGUMENT: ... [INVALID_ARGUMENT]`)."""
    text = _STATUS_TAIL.sub("", str(exc))
    text = _STATUS.sub("", text, count=1).strip()
    for pattern, replacement in _GO_WORDING:
        text = pattern.sub(replacement, text)
    return text


@dataclass(slots=True)
class Program:
    """One compiled expression: the runnable program and its checked tree."""

    source: str
    expression: Any
    checked: Checked
    uses_old: bool
    optional_old: bool
    # The same rule with its constant `matches` calls and library calls on `self`'s fields read from precomputed
    # variables (regex.py, folding.py), and those variables: it runs instead when every one of them could be
    # worked out for the value at hand.
    fast: Any = None
    fast_reads: frozenset[str] = frozenset()

    @property
    def tree(self) -> Expr:
        return self.checked.root

    def run(self, activation: Any, matched: dict[str, bool] | None = None) -> tuple[Any, str | None]:
        """The result as a plain Python value, or the evaluation error's text. `matched`: the precomputed
        values the activation carries."""
        expression = self.expression
        if self.fast is not None and matched is not None and self.fast_reads <= matched.keys():
            expression = self.fast
        try:
            value = expression.eval(activation)
            if value.type() == cel.Type.ERROR:
                return None, clean_error(Exception(str(value.value())))
            return value.plain_value(), None
        finally:
            settle()  # after the value is read: it may still refer to what a library function returned


def compile_expression(source: str, result: str, optional_old: bool = False) -> Program:
    """Compile a rule (`result` "bool") or a messageExpression ("string"); raises CompileError."""
    try:
        checked = _rule_env().compile(source)
    except RuntimeError as exc:
        raise CompileError(f"compilation failed: {clean_error(exc)}") from exc
    returned = checked.return_type().name()
    if returned not in (result.upper(), "DYN"):
        what = "cel expression" if result == "bool" else "messageExpression"
        raise CompileError(f"{what} must evaluate to a {result}")
    tree = decode_checked(checked.serialize())
    uses_old = references(tree.root, "oldSelf")
    expression = checked
    if optional_old and uses_old:
        wrapped = f"cel.bind(oldSelf, {OLD_WRAPPER}[?'v'], ({source}))"
        try:
            expression = _optional_env().compile(wrapped)
        except RuntimeError as exc:
            raise CompileError(f"compilation failed: {clean_error(exc)}") from exc
    return Program(source, expression, tree, uses_old, optional_old and uses_old)


def compile_combined(sources: list[str]) -> Program | None:
    """The rules of one node as one program answering a list of their results: one evaluation (one trip into
    cel-cpp) instead of one per rule. None if the list does not compile (the rules are then run one by one)."""
    source = as_list(sources)
    try:
        checked = _rule_env().compile(source)
    except RuntimeError:
        return None
    return Program(source, checked, decode_checked(checked.serialize()), False, False)


def as_list(sources: list[str]) -> str:
    return "[" + ", ".join(f"({s})" for s in sources) + "]"


def add_fast(program: Program, source: str, reads: frozenset[str], matches: int, folds: int) -> None:
    """Give `program` its rewrite reading precomputed values, from a node with `matches` regex.py and `folds`
    folding.py variables; a rewrite that does not compile is dropped (the rule then runs as written)."""
    try:
        program.fast = _rule_env(matches, folds).compile(source)
    except RuntimeError:
        return
    program.fast_reads = reads


def check_rewrite(source: str, folds: int) -> Checked | None:
    """The checked tree of a rewritten rule reading `folds` folding.py variables, or None if it does not compile."""
    try:
        return decode_checked(_rule_env(0, folds).compile(source).serialize())
    except RuntimeError:
        return None


def literal_pattern(text: str) -> str | None:
    """The value of a CEL string literal used as a `matches` pattern, or None when RE2 refuses the pattern."""
    try:
        pattern = _rule_env().compile(text).eval().plain_value()
        if not isinstance(pattern, str):
            return None
        probe = _rule_env().compile(f"''.matches({text})").eval()
        if probe.type() == cel.Type.ERROR:
            return None
    except RuntimeError:
        return None
    return pattern


def activation(
    self_value: Any, old: Any, optional_old: bool, has_old: bool, matched: dict[str, bool] | None = None
) -> Any:
    """The variables of one evaluation: `oldSelf` plain, or wrapped for `cel.bind` to make an optional of, and the
    precomputed values."""
    env = _optional_env() if optional_old else _rule_env()
    if optional_old:
        data = {"self": self_value, OLD_WRAPPER: {"v": old} if has_old else {}}
    elif has_old:
        data = {"self": self_value, "oldSelf": old}
    else:
        data = {"self": self_value}
    if matched:
        data |= matched
    return env.Activation(data=data)
