"""`{{ args.NAME }}` placeholders in queries, URLs, headers and bodies, filled from the controller's arguments.

Values are escaped for where they land: inside a PromQL string literal (`namespace="{{ args.namespace }}"`) a
quote or backslash in a value cannot end the literal and change the query; in a URL they are percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

# `{{args.x}}` (Argo) and `{{ args.x }}`; anything else between braces is reported, not passed through.
_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
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


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a double-quoted PromQL string (Go escaping, which PromQL uses)."""
    return (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


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
    return render(query, args, promql_string)


def render_url(url: str, args: Mapping[str, str]) -> str:
    return render(url, args, url_component)
