"""Output as kubectl prints it: `-o table|wide|json|yaml|name|jsonpath=...|custom-columns=...`, `--no-headers`,
`--sort-by`, tables aligned like kubectl's tabwriter (3 spaces between columns), colour only on a terminal.

Commands describe a kind once (its `Column`s and how to name an object) and hand objects to a `Printer`; JSON and
YAML are the objects themselves (a `List` for several), so they round-trip through `kubectl apply`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from tmc.apimachinery.jsonpath import jsonpath

FORMATS = ("table", "wide", "json", "yaml", "name", "jsonpath=...", "custom-columns=...")
_TEMPLATE_PART = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class OutputFormat:
    kind: str  # table, wide, json, yaml, name, jsonpath, custom-columns
    arg: str = ""

    @property
    def structured(self) -> bool:
        return self.kind in ("json", "yaml")


TABLE = OutputFormat("table")


def _strip_braces(expr: str) -> str:
    expr = expr.strip()
    return expr[1:-1].strip() if expr.startswith("{") and expr.endswith("}") else expr


def _check_path(expr: str) -> str:
    path = _strip_braces(expr)
    if not path.startswith((".", "[")):
        path = "." + path
    jsonpath(path, {})  # ValueError on syntax the evaluator does not support
    return path


def parse_custom_columns(spec: str) -> list[tuple[str, str]]:
    """`NAME:.metadata.name,READY:.status...` -> [(header, path)]."""
    out: list[tuple[str, str]] = []
    for part in spec.split(","):
        header, colon, expr = part.partition(":")
        if not colon or not header.strip() or not expr.strip():
            raise ValueError(f"{part!r} is not HEADER:JSONPATH")
        out.append((header.strip(), _check_path(expr)))
    return out


def parse_template(template: str) -> list[tuple[bool, str]]:
    """A kubectl JSONPath template as (is_path, text) parts; `{"\\n"}` style literals become text."""
    import json

    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _TEMPLATE_PART.finditer(template):
        if m.start() > pos:
            parts.append((False, template[pos : m.start()]))
        inner = m.group(1).strip()
        if inner.startswith('"'):
            parts.append((False, str(json.loads(inner))))
        elif inner.split(" ", 1)[0] in ("range", "end"):
            raise ValueError("{range} is not supported; select with [*] instead")
        else:
            parts.append((True, _check_path(inner)))
        pos = m.end()
    if pos < len(template):
        parts.append((False, template[pos:]))
    if not any(is_path for is_path, _ in parts):
        raise ValueError(f"{template!r} has no {{...}} expression")
    return parts


class OutputType(click.ParamType):
    """The `-o` value, checked when parsed (a bad one is a usage error, as kubectl's)."""

    name = "format"

    def __init__(self, allowed: Sequence[str] = FORMATS) -> None:
        self.allowed = tuple(allowed)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> OutputFormat:
        if isinstance(value, OutputFormat):
            return value
        text = str(value)
        kind, eq, arg = text.partition("=")
        known = {a.split("=")[0] for a in self.allowed}
        if kind not in known or (eq and kind not in ("jsonpath", "custom-columns")):
            self.fail(
                f'unable to match a printer suitable for the output format "{text}", '
                f"allowed formats are: {','.join(self.allowed)}",
                param,
                ctx,
            )
        try:
            if kind == "jsonpath":
                parse_template(arg)
            elif kind == "custom-columns":
                parse_custom_columns(arg)
        except ValueError as e:
            self.fail(f"bad {kind} expression: {e}", param, ctx)
        return OutputFormat(kind, arg)


class SortBy(click.ParamType):
    name = "jsonpath"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return _check_path(str(value))
        except ValueError as e:
            self.fail(f"{value!r} is not a JSONPath such as .metadata.name: {e}", param, ctx)


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]
    wide: bool = False


def first(path: str, obj: Any) -> Any:
    try:
        values = jsonpath(path, obj)
    except (ValueError, TypeError):
        return None
    return values[0] if values else None


def text(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def use_color(no_color: bool, stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return not no_color and "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, no_headers: bool, color: bool) -> str:
    """kubectl's tabwriter layout: each column padded to its widest cell + 3 (at least 6), the last unpadded."""
    body = [list(r) for r in rows]
    all_rows = body if no_headers else [list(headers), *body]
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    lines: list[str] = []
    for n, r in enumerate(all_rows):
        cells = [cell.ljust(max(widths[i] + 3, 6)) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        line = "".join(cells).rstrip()
        if color and n == 0 and not no_headers:
            line = f"\x1b[1m{line}\x1b[0m"
        lines.append(line)
    return "\n".join(lines) + "\n"


def default_name(obj: dict[str, Any]) -> str:
    """`-o name`: `<kind>.<group>/<name>` (core kinds without the group)."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    kind = str(obj.get("kind") or "").lower()
    name = str((obj.get("metadata") or {}).get("name") or "")
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def as_list(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}}


def dump(value: Any, kind: str) -> str:
    if kind == "json":
        import json

        return json.dumps(value, indent=4, ensure_ascii=False) + "\n"
    import yaml

    return str(yaml.safe_dump(value, default_flow_style=False, sort_keys=True, allow_unicode=True))


@dataclass
class Printer:
    """Prints objects of one kind in the chosen format."""

    format: OutputFormat = TABLE
    no_headers: bool = False
    sort_by: str | None = None
    no_color: bool = False
    columns: Sequence[Column] = ()
    name: Callable[[dict[str, Any]], str] = default_name
    out: Any = field(default=None)
    _widths: list[int] = field(default_factory=list)

    def sorted(self, objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.sort_by:
            return list(objects)
        path = self.sort_by

        def key(obj: dict[str, Any]) -> tuple[int, Any]:
            v = first(path, obj)
            if v is None:
                return (2, "")
            if isinstance(v, int | float) and not isinstance(v, bool):
                return (0, v)
            return (1, str(v))

        return sorted(objects, key=key)

    def render(self, objects: Sequence[dict[str, Any]], single: bool = False) -> str:
        """Everything `print` writes, as one string (`single`: one object asked for by name, not a List)."""
        objects = self.sorted(objects)
        kind = self.format.kind
        if kind in ("json", "yaml"):
            return dump(objects[0] if single and objects else as_list(objects), kind)
        if kind == "name":
            return "".join(self.name(o) + "\n" for o in objects)
        if kind == "jsonpath":
            data: Any = objects[0] if single and objects else as_list(objects)
            pieces: list[str] = []
            for is_path, part in parse_template(self.format.arg):
                if is_path:
                    try:
                        values = jsonpath(part, data)
                    except (ValueError, TypeError):
                        values = []
                    pieces.append(" ".join(text(v) if not isinstance(v, str) else v for v in values))
                else:
                    pieces.append(part)
            return "".join(pieces)
        if kind == "custom-columns":
            cols = parse_custom_columns(self.format.arg)
            rows = [[text(first(p, o)) for _, p in cols] for o in objects]
            return render_table([h for h, _ in cols], rows, no_headers=self.no_headers, color=self.color)
        columns = [c for c in self.columns if kind == "wide" or not c.wide]
        rows = [[text(c.value(o)) for c in columns] for o in objects]
        return render_table([c.header for c in columns], rows, no_headers=self.no_headers, color=self.color)

    @property
    def color(self) -> bool:
        return use_color(self.no_color, self.out)

    def print(self, objects: Sequence[dict[str, Any]], single: bool = False) -> None:
        rendered = self.render(objects, single)
        if rendered:
            click.echo(rendered, nl=False, file=self.out)

    def row(self, obj: dict[str, Any], header: bool) -> str:
        """One object as a table line for `-w`; with `header` the header line comes first. Column widths only grow
        from line to line, so a stream of lines stays aligned as far as it can (as kubectl's)."""
        if self.format.kind not in ("table", "wide"):
            return self.render([obj])
        columns = [c for c in self.columns if self.format.kind == "wide" or not c.wide]
        lines = [[text(c.value(obj)) for c in columns]]
        if header and not self.no_headers:
            lines.insert(0, [c.header for c in columns])
        widths = self._widths or [0] * len(columns)
        for cells in lines:
            widths = [max(w, len(cell)) for w, cell in zip(widths, cells, strict=True)]
        self._widths = widths
        out = []
        for n, cells in enumerate(lines):
            padded = [cell.ljust(max(widths[i] + 3, 6)) for i, cell in enumerate(cells[:-1])] + [cells[-1]]
            line = "".join(padded).rstrip()
            if self.color and header and n == 0 and not self.no_headers:
                line = f"\x1b[1m{line}\x1b[0m"
            out.append(line)
        return "\n".join(out) + "\n"


def output_option(allowed: Sequence[str] = FORMATS, default: str = "table") -> Callable[[Any], Any]:
    return click.option(
        "-o",
        "--output",
        "output",
        type=OutputType(allowed),
        default=default,
        show_default=True,
        help=f"Output format: {'|'.join(allowed)}.",
    )


def printer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """-o, --no-headers, --sort-by, --no-color: the arguments `printer_from` takes."""
    for option in reversed(
        [
            output_option(),
            click.option("--no-headers", is_flag=True, help="Print tables without the header line."),
            click.option("--sort-by", type=SortBy(), default=None, help="Sort by a JSONPath, e.g. .metadata.name."),
            click.option("--no-color", is_flag=True, help="Never colour the output (off anyway when not a terminal)."),
        ]
    ):
        command = option(command)
    return command
