"""`{{ args.NAME }}` placeholders in queries, URLs, headers and bodies, filled from the controller's arguments.

Values are escaped for where they land: inside a PromQL string literal (`namespace="{{ args.namespace }}"`) a
quote or backslash in a value cannot end the literal and change the query, and outside one only plain tokens are
accepted; in a URL they are percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

# `{{args.x}}` (Argo) and `{{ args.x }}`; anything else between braces is reported, not passed through.
_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_TOKEN = re.compile(r"[A-Za-z0-9_:.-]+")
_ARG = re.compile(r"args\.([A-Za-z_][A-Za-z0-9_-]*)")


class TemplateError(ValueError):
    """A placeholder that is malformed or names an argument the controller did not give."""


def placeholders(text: str) -> list[str]:
    """The argument names `text` uses, in order; TemplateError for a placeholder that is not `args.NAME`."""
    names: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        arg = _ARG.fullmatch(m.group(1))
        if arg is None:
            raise TemplateError(f"placeholder {m.group(0)!r} is not of the form {{{{ args.NAME }}}}")
        names.append(arg.group(1))
    return names


def check(text: str, known: Iterable[str]) -> None:
    """TemplateError naming the unknown arguments `text` uses."""
    allowed = set(known)
    unknown = sorted({n for n in placeholders(text) if n not in allowed})
    if unknown:
        raise TemplateError(
            f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed)) or 'none'})"
        )


def promql_string(value: str, quote_char: str = '"') -> str:
    """`value` escaped for the inside of a PromQL string quoted with `quote_char` (PromQL unquotes like Go, and
    rejects an escaped quote of the other kind). A raw (backquoted) string has no escapes: a backquote in the value
    is a TemplateError."""
    if quote_char == "`":
        if "`" in value:
            raise TemplateError(f"{value!r} contains a backquote and cannot be placed in a raw string")
        return value
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return out.replace(quote_char, "\\" + quote_char)


def _promql_quotes(text: str) -> list[str]:
    """For each placeholder of a PromQL template, the quote of the string literal it sits in ("" for none)."""
    found: list[str] = []
    quote_char, pos = "", 0
    while pos < len(text):
        m = _PLACEHOLDER.match(text, pos)
        if m is not None:
            found.append(quote_char)
            pos = m.end()
            continue
        c = text[pos]
        if quote_char and c == "\\" and quote_char != "`":
            pos += 2
            continue
        if c == quote_char:
            quote_char = ""
        elif not quote_char and c in "\"'`":
            quote_char = c
        pos += 1
    return found


def url_component(value: str) -> str:
    return quote(value, safe="")


def _verbatim(value: str) -> str:
    return value


def render(text: str, args: Mapping[str, str], escape: Callable[[str], str] = _verbatim) -> str:
    """`text` with each placeholder replaced by its escaped argument; TemplateError for unknown ones."""
    check(text, args)

    def fill(m: re.Match[str]) -> str:
        return escape(str(args[m.group(1).removeprefix("args.")]))

    return _PLACEHOLDER.sub(fill, text)


def render_promql(query: str, args: Mapping[str, str]) -> str:
    """Inside a string literal a value is escaped for that literal; outside one (`[{{ args.interval }}]`) it must
    be a plain token (letters, digits, `_ : . -`), so no value can change the query's structure."""
    check(query, args)
    quotes = iter(_promql_quotes(query))

    def fill(m: re.Match[str]) -> str:
        name = m.group(1).removeprefix("args.")
        value = str(args[name])
        quote_char = next(quotes)
        if quote_char:
            return promql_string(value, quote_char)
        if not _TOKEN.fullmatch(value):
            raise TemplateError(f"argument {name} = {value!r} is outside a string literal and is not a plain token")
        return value

    return _PLACEHOLDER.sub(fill, query)


def render_url(url: str, args: Mapping[str, str]) -> str:
    return render(url, args, url_component)
