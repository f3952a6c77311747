"""The checked syntax tree of a compiled rule, read from cel-cpp's serialized `cel.expr.CheckedExpr`.

cel-expr-python exposes no tree objects, but `Expression.serialize()` gives the checked expression as a
`google.protobuf.Any` in CEL's stable wire format (cel/expr/checked.proto, syntax.proto). Reading the protobuf wire
format directly needs no generated classes; the cost estimator and the schema checks walk the result. Macros (`all`,
`exists`, `map`, ...) arrive expanded into comprehensions, as cel-go's estimator sees them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

# Expr node kinds.
CONST, IDENT, SELECT, CALL, LIST, MAP, COMPREHENSION = "const", "ident", "select", "call", "list", "map", "compr"


@dataclass(slots=True)
class Expr:
    kind: str
    id: int = 0
    name: str = ""  # identifier, selected field or function
    value: Any = None  # constant value
    target: Expr | None = None  # select operand, call receiver, comprehension range
    args: list[Expr] = field(default_factory=list)  # call arguments, list elements, map keys and values alternately
    test_only: bool = False  # has()
    iter_var: str = ""
    accu_var: str = ""
    # comprehension parts: accu_init, loop_condition, loop_step, result
    parts: tuple[Expr, ...] = ()


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((num, value))
    return out


class Uint(int):
    """A `uint` constant (`1u`): the same Python number as an int, told apart for code that must not mix them."""

    __slots__ = ()


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _constant(buf: bytes) -> Any:
    for num, value in _fields(buf):
        if num == 1:
            return None
        if num == 2:
            return bool(value)
        if num in (3, 4):
            return _signed(value) if num == 3 else Uint(value)
        if num == 5:
            return struct.unpack("<d", value)[0]
        if num == 6:
            return bytes(value).decode("utf-8", "replace")
        if num == 7:
            return bytes(value)
    return None


def _expr(buf: bytes) -> Expr:
    node = Expr(CONST)
    for num, value in _fields(buf):
        if num == 2:
            node.id = value
        elif num == 3:
            node.kind, node.value = CONST, _constant(value)
        elif num == 4:
            node.kind = IDENT
            node.name = next((bytes(v).decode() for n, v in _fields(value) if n == 1), "")
        elif num == 5:
            node.kind = SELECT
            for n, v in _fields(value):
                if n == 1:
                    node.target = _expr(v)
                elif n == 2:
                    node.name = bytes(v).decode()
                elif n == 3:
                    node.test_only = bool(v)
        elif num == 6:
            node.kind = CALL
            for n, v in _fields(value):
                if n == 1:
                    node.target = _expr(v)
                elif n == 2:
                    node.name = bytes(v).decode()
                elif n == 3:
                    node.args.append(_expr(v))
        elif num == 7:
            node.kind = LIST
            node.args = [_expr(v) for n, v in _fields(value) if n == 1]
        elif num == 8:
            node.kind = MAP
            for n, entry in _fields(value):
                if n != 2:
                    continue
                parts = dict(_fields(entry))
                key = _expr(parts[3]) if 3 in parts else Expr(CONST, value=bytes(parts.get(2, b"")).decode())
                node.args += [key, _expr(parts[4]) if 4 in parts else Expr(CONST)]
        elif num == 9:
            node.kind = COMPREHENSION
            parts = {n: v for n, v in _fields(value)}
            node.iter_var = bytes(parts.get(1, b"")).decode()
            node.accu_var = bytes(parts.get(3, b"")).decode()
            node.target = _expr(parts.get(2, b""))
            node.parts = tuple(_expr(parts.get(k, b"")) for k in (4, 5, 6, 7))
    return node


@dataclass(slots=True)
class Checked:
    """A checked expression: its tree, and where each node starts in the source (for error messages)."""

    root: Expr
    positions: dict[int, int]  # node id -> offset in the source
    line_offsets: list[int]  # offsets where the second, third, ... line start

    def location(self, node_id: int) -> tuple[int, int]:
        """1-based line and column of a node, as cel-go reports them."""
        offset = self.positions.get(node_id, 0)
        line, start = 1, 0
        for line_start in self.line_offsets:
            if line_start > offset:
                break
            line, start = line + 1, line_start
        return line, offset - start + 1


def _packed(buf: bytes) -> list[int]:
    out: list[int] = []
    i = 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def _source_info(buf: bytes) -> tuple[dict[int, int], list[int]]:
    positions: dict[int, int] = {}
    lines: list[int] = []
    for num, value in _fields(buf):
        if num == 3:
            if isinstance(value, int):
                lines.append(value)
            else:
                lines.extend(_packed(bytes(value)))
        elif num == 4:
            entry = dict(_fields(bytes(value)))
            positions[int(entry.get(1, 0))] = int(entry.get(2, 0))
    return positions, lines


def decode_checked(serialized: bytes) -> Checked:
    """A serialized CheckedExpr (possibly wrapped in an Any, as cel-cpp writes it)."""
    fields = dict(_fields(serialized))
    if isinstance(fields.get(1), bytes | memoryview) and bytes(fields[1]).startswith(b"type.googleapis.com/"):
        fields = dict(_fields(bytes(fields[2])))
    expr = fields.get(4)
    if expr is None:
        raise ValueError("serialized expression has no root")
    positions, lines = _source_info(bytes(fields.get(5, b"")))
    return Checked(_expr(bytes(expr)), positions, lines)


def walk(node: Expr) -> list[Expr]:
    """Every node of the tree, parents first."""
    out: list[Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.parts)
        stack.extend(n.args)
        if n.target is not None:
            stack.append(n.target)
    return out


def references(node: Expr, name: str) -> bool:
    return any(n.kind == IDENT and n.name == name for n in walk(node))


def self_fields(node: Expr, name: str = "self") -> set[str] | None:
    """The fields of `name` an expression reads (`name.f`, `has(name.f)`), or None when it uses `name` any other
    way (compares it whole, iterates it, `name.?f`): then the whole value is needed."""
    fields: set[str] = set()
    stack: list[Expr] = [node]
    while stack:
        n = stack.pop()
        if n.kind == SELECT and n.target is not None and n.target.kind == IDENT and n.target.name == name:
            fields.add(n.name)
            continue
        if n.kind == IDENT and n.name == name:
            return None
        stack.extend(n.parts)
        stack.extend(n.args)
        if n.target is not None:
            stack.append(n.target)
    return fields
