"""Constant `matches` patterns, compiled once instead of on every evaluation.

cel-cpp (through cel-expr-python, which exposes no runtime options) compiles the RE2 pattern of `x.matches('...')`
each time the rule runs: 10 µs for a short pattern, 400 µs for an image-reference pattern with bounded repeats. For
the common shape `self.a.b.matches('<constant>')` the validator works the match out itself with a pattern compiled
when the CRD is stored, and hands the result to CEL as a variable, so the rule reads `__tmc_re0` instead.

The match must be the one RE2 would answer, so only patterns whose meaning Python's `re` shares are taken
(`translate`): literals, escapes, character classes without POSIX names, groups, alternation and counted repeats;
`$` becomes `\\Z` (Python's `$` also matches before a final newline) and `\\s` RE2's ASCII set. Anything else (flags,
`\\p{..}`, `[[:alpha:]]`, `{,n}`, ...) keeps cel-cpp's own `matches`. When the field is missing or not a string when
the rule runs, the original program runs, so errors and short-circuits read exactly as before.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery.cel.ast import CALL, COMPREHENSION, CONST, IDENT, SELECT, Expr, walk

VARIABLE_PREFIX = "__tmc_re"
_MAX_REPEAT = 1000  # RE2's limit; a pattern over it fails in cel-cpp and must keep failing
_ESCAPED_LITERALS = frozenset(".-\\/[](){}*+?|^$ #&~=!<>,:;'\"%@")
_CLASS_ESCAPES = {"d": r"\d", "D": r"\D", "w": r"\w", "W": r"\W", "t": r"\t", "n": r"\n", "r": r"\r", "f": r"\f"}
_RE2_SPACE = r"\t\n\f\r "
_CALL = re.compile(r"self((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*\.\s*matches\s*\(\s*")
_CLOSE = re.compile(r"\s*\)")
_STRING_START = re.compile(r"(?i:[rb]{0,2})('''|\"\"\"|'|\")")
# CEL's reserved words: a field of that name is written escaped (`__namespace__`), so never rewritten
_RESERVED_WORDS = (
    "true false null in as break const continue else for function if import let loop package namespace return var "
    "void while"
)
RESERVED = frozenset(_RESERVED_WORDS.split())


@dataclass(frozen=True, slots=True)
class Binding:
    """One precomputed match: the variable CEL reads, the field path below `self`, and the compiled pattern."""

    name: str
    path: tuple[str, ...]
    pattern: re.Pattern[str]


def translate(pattern: str) -> str | None:
    """An equivalent Python pattern (compile with re.ASCII), or None when the meanings might differ."""
    out: list[str] = []
    i, n = 0, len(pattern)
    quantified = False  # the previous token was a quantifier: a following `+` would be possessive
    while i < n:
        c = pattern[i]
        if c == "\\":
            piece = _escape(pattern, i, in_class=False)
            if piece is None:
                return None
            out.append(piece)
            i += 2
            quantified = False
        elif c == "[":
            end, piece = _char_class(pattern, i)
            if piece is None:
                return None
            out.append(piece)
            i = end
            quantified = False
        elif c == "{":
            m = re.compile(r"\{(\d+)(,(\d*))?\}").match(pattern, i)
            if m is None or int(m.group(1)) > _MAX_REPEAT or (m.group(3) and int(m.group(3)) > _MAX_REPEAT):
                return None
            out.append(m.group(0))
            i = m.end()
            quantified = True
            continue
        elif c == "(":
            if pattern.startswith("(?", i):
                m = re.compile(r"\(\?(:|P<[A-Za-z_][A-Za-z0-9_]*>)").match(pattern, i)
                if m is None:
                    return None
                out.append(m.group(0))
                i = m.end()
            else:
                out.append(c)
                i += 1
            quantified = False
            continue
        elif c == "$":
            out.append(r"\Z")
            i += 1
            quantified = False
        elif c in "*+?":
            if quantified and c == "+":
                return None  # possessive: Python knows it, RE2 refuses it
            if c == "?" and quantified:
                out.append(c)  # lazy
                i += 1
                quantified = False
                continue
            out.append(c)
            i += 1
            quantified = True
            continue
        else:
            out.append(c)
            i += 1
            quantified = False
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> str | None:
    if i + 1 >= len(pattern):
        return None
    d = pattern[i + 1]
    if d in _ESCAPED_LITERALS:
        return "\\" + d
    if d in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[d]
    if d == "s":
        return _RE2_SPACE if in_class else f"[{_RE2_SPACE}]"
    if d in "bB" and not in_class:
        return "\\" + d
    if d == "S" and not in_class:
        return f"[^{_RE2_SPACE}]"
    return None


def _char_class(pattern: str, start: int) -> tuple[int, str | None]:
    i = start + 1
    out = ["["]
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):
        return i, None  # a leading `]`: legal in both, but rare enough not to get right twice
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            out.append("]")
            return i + 1, "".join(out)
        if c == "[":
            return i, None  # `[[:alpha:]]` is a POSIX class for RE2 and a plain `[` for Python
        if c == "\\":
            piece = _escape(pattern, i, in_class=True)
            if piece is None:
                return i, None
            out.append(piece)
            i += 2
            continue
        out.append(c)
        i += 1
    return i, None


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    text = translate(pattern)
    if text is None:
        return None
    try:
        return re.compile(text, re.ASCII)
    except re.error:
        return None


def string_end(source: str, i: int) -> int | None:
    """The end of the CEL string literal starting at `i`, or None when none starts there."""
    m = _STRING_START.match(source, i)
    if m is None:
        return None
    quote = m.group(1)
    raw = "r" in source[i : m.start(1)].lower()
    j = m.end()
    while j < len(source):
        if not raw and source[j] == "\\":
            j += 2
            continue
        if source.startswith(quote, j):
            return j + len(quote)
        j += 1
    return None


def _member_calls(tree: Expr) -> Counter[tuple[tuple[str, ...], str]] | None:
    """(path below self, pattern) of every `self.<path>.matches('<constant>')` in the checked tree; None when the
    tree rebinds `self` (a comprehension variable of that name)."""
    found: Counter[tuple[tuple[str, ...], str]] = Counter()
    for node in walk(tree):
        if node.kind == COMPREHENSION and "self" in (node.iter_var, node.accu_var):
            return None
        if node.kind != CALL or node.name != "matches" or node.target is None or len(node.args) != 1:
            continue
        arg = node.args[0]
        if arg.kind != CONST or not isinstance(arg.value, str):
            continue
        path: list[str] = []
        target: Expr | None = node.target
        while target is not None and target.kind == SELECT and not target.test_only:
            path.append(target.name)
            target = target.target
        if target is not None and target.kind == IDENT and target.name == "self":
            found[(tuple(reversed(path)), arg.value)] += 1
    return found


def rewrite(
    source: str, tree: Expr, bindings: list[Binding], pattern_of: Callable[[str], str | None]
) -> tuple[str, frozenset[str]] | None:
    """`source` with each `self.<path>.matches('<constant>')` whose pattern translates replaced by a binding's
    variable, and the variables it reads; None when nothing was replaced. New bindings are appended to `bindings`,
    shared by the rules of one schema node. `pattern_of` turns a CEL string literal's text into its value, or None
    when RE2 refuses the pattern (the rule must go on failing as it does)."""
    expected = _member_calls(tree)
    if not expected:
        return None
    pieces: list[str] = []
    seen: Counter[tuple[tuple[str, ...], str]] = Counter()
    names: set[str] = set()
    i = last = 0
    while i < len(source):
        end = string_end(source, i)
        if end is not None:
            i = end
            continue
        m = _CALL.match(source, i) if source.startswith("self", i) else None
        if m is None or (i and (source[i - 1].isalnum() or source[i - 1] in "._")):
            i += 1
            continue
        literal_end = string_end(source, m.end())
        close = _CLOSE.match(source, literal_end) if literal_end is not None else None
        if literal_end is None or close is None:
            i = m.end()
            continue
        path = tuple(p.strip(" .\t\n") for p in m.group(1).split(".") if p.strip())
        pattern = pattern_of(source[m.end() : literal_end])
        seen[(path, pattern or "")] += 1
        compiled = compile_pattern(pattern) if pattern is not None else None
        if compiled is not None and not any(p.startswith("__") or p in RESERVED for p in path):
            name = next((b.name for b in bindings if b.path == path and b.pattern.pattern == compiled.pattern), None)
            if name is None:
                name = f"{VARIABLE_PREFIX}{len(bindings)}"
                bindings.append(Binding(name, path, compiled))
            pieces += [source[last:i], f"({name})"]
            names.add(name)
            last = close.end()
        i = close.end()
    if not names or seen != expected:
        return None  # the text and the tree disagree on what the calls are: leave the rule as written
    return "".join(pieces) + source[last:], frozenset(names)


def values(bindings: tuple[Binding, ...], self_value: Any) -> dict[str, bool]:
    """The match of every binding whose field is a string in `self_value` (the others are left out)."""
    out: dict[str, bool] = {}
    for binding in bindings:
        value = self_value
        for key in binding.path:
            if type(value) is not dict:
                value = None
                break
            value = value.get(key)
        if type(value) is str:
            out[binding.name] = binding.pattern.search(value) is not None
    return out
