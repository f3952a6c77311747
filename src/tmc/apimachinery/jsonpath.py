"""The JSONPath subset CRD printer columns use: `.a.b`, `.*`, `[*]`, `[2]`, `[-1]`, `[1:3]`, `['a.b']`, filters."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

_Step = tuple[str, Any]
# One JSONPath step: `.name`, `.*`, `[*]`, `[2]`, `[-1]`, `[1:3]`, `['a.b']`, `[?(@.type=="Ready")]`.
_TOKEN = re.compile(r"""\.(\*|[^.\[]+)|\[\s*(\*|-?\d+|-?\d*:-?\d*|'[^']*'|"[^"]*"|\?\(.*?\))\s*\]""")
_FILTER = re.compile(r"\s*@(.*?)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _literal(text: str) -> Any:
    try:
        return orjson.loads(text)  # "Ready", 3, 1.5, true
    except orjson.JSONDecodeError:
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


@functools.lru_cache(maxsize=512)
def _parse(path: str) -> tuple[_Step, ...]:
    text = path.strip().removeprefix("{").removesuffix("}").strip().removeprefix("$")
    if text and text[0] not in ".[":
        text = "." + text
    steps: list[_Step] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        pos, name, inner = m.end(), m.group(1), m.group(2)
        if name is not None or inner == "*":
            steps.append(("*", None) if (name or inner) == "*" else ("key", name))
        elif inner[0] in "'\"":
            steps.append(("key", inner[1:-1]))
        elif inner[0] == "?":
            f = _FILTER.fullmatch(inner[2:-1])
            if f is None:
                raise ValueError(f"unsupported JSONPath filter {inner!r}")
            steps.append(("filter", (_parse(f.group(1)), f.group(2) or "", _literal(f.group(3) or ""))))
        elif ":" in inner:
            steps.append(("slice", slice(*(int(b) if b else None for b in inner.split(":")))))
        else:
            steps.append(("index", int(inner)))
    return tuple(steps)


def _matches(item: Any, test: tuple[tuple[_Step, ...], str, Any]) -> bool:
    steps, op, literal = test
    found = _run(steps, item)
    if not op or not found:
        return bool(found) and not op
    value = found[0]
    if op in ("==", "!="):
        # Like Go's template comparison: values of different kinds are never equal (true is not 1).
        equal = value == literal and isinstance(value, bool) == isinstance(literal, bool)
        return equal == (op == "==")
    try:
        return _ORDER[op](value, literal)
    except TypeError:
        return False


def _run(steps: Sequence[_Step], data: Any) -> list[Any]:
    current = [data]
    for kind, arg in steps:
        found: list[Any] = []
        for value in current:
            if isinstance(value, dict):
                if kind == "key" and arg in value:
                    found.append(value[arg])
                elif kind == "*":
                    found.extend(value[k] for k in sorted(value))
            elif isinstance(value, list):
                if kind == "index" and -len(value) <= arg < len(value):
                    found.append(value[arg])
                elif kind in ("*", "slice"):
                    found.extend(value if kind == "*" else value[arg])
                elif kind == "filter":
                    found.extend(item for item in value if _matches(item, arg))
        current = found
    return current


def jsonpath(path: str, data: Any) -> list[Any]:
    """Values a CRD column's JSONPath selects (missing keys select nothing); ValueError for unsupported syntax."""
    return _run(_parse(path), data)
