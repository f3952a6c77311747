"""Option types shared by the `tmc` commands, so durations, labels and log levels read the same everywhere."""

from __future__ import annotations

import re

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Duration(click.ParamType):
    """`10s`, `500ms`, `5m`, `1h`, or plain seconds; positive unless `allow_zero`."""

    name = "duration"

    def __init__(self, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        m = _DURATION.match(str(value))
        if not m or (float(m.group(1)) == 0 and not self.allow_zero):
            kind = "duration" if self.allow_zero else "positive duration"
            self.fail(f"{value!r} is not a {kind} such as 10s, 500ms, 5m or 1h", param, ctx)
        return float(m.group(1)) * _UNITS[m.group(2)]


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k2=v2` -> {"k": "v", "k2": "v2"}; BadParameter on an entry without `=`."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{part!r} is not key=value", param_hint="--labels")
        out[key.strip()] = value.strip()
    return out


log_level_option = click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
