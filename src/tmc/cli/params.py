"""Option types shared by the `tmc` commands, so durations, labels and log levels read the same everywhere."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

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


class Ratio(click.ParamType):
    """A number in [0, 1], such as a sampling ratio."""

    name = "ratio"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            return value
        try:
            number = float(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a number between 0 and 1", param, ctx)
        if not 0.0 <= number <= 1.0:  # also rejects nan
            self.fail(f"{value!r} is outside [0, 1]", param, ctx)
        return number


def tracing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--tracing-endpoint and --tracing-sample-ratio (the OTEL_* variables apply when they are not given)."""
    command = click.option(
        "--tracing-sample-ratio",
        type=Ratio(),
        default=None,
        help="Fraction of new traces to record, 0 to 1 (default: OTEL_TRACES_SAMPLER_ARG, else 1). "
        "A request that carries a sampled traceparent is always recorded.",
    )(command)
    return click.option(
        "--tracing-endpoint",
        default=None,
        help="OTLP endpoint to send traces to, e.g. http://localhost:4318 (default: OTEL_EXPORTER_OTLP_ENDPOINT; "
        "unset: tracing off). OTEL_EXPORTER_OTLP_PROTOCOL=grpc for a gRPC collector (port 4317).",
    )(command)


def check_tracing(endpoint: str | None, sample_ratio: float | None) -> None:
    """Fail now, as a usage error, on tracing settings (flags or OTEL_*) that every process would refuse."""
    from tmc.observability import tracing

    try:
        tracing.settings(endpoint, sample_ratio, os.environ)
    except tracing.TracingConfigError as e:
        raise click.UsageError(str(e)) from None


def start_tracing(
    service_name: str,
    endpoint: str | None,
    sample_ratio: float | None,
    *,
    hub: bool = False,
    attributes: dict[str, str] | None = None,
    sync_metrics: bool = False,
    member: bool = False,
) -> None:
    """Configure tracing for this process; a setting that can never work is a usage error. Only the `hub` records
    trace context on the objects it writes and traces reconciles that continue no trace. With `sync_metrics` (the
    syncer) the OpenTelemetry sync instruments are exported to the same endpoint. A `member` cluster records only
    the requests that continue a sampled trace (a syncer's traced writes), never traces of its own."""
    from tmc.observability import otel_metrics, tracing

    try:
        on = tracing.configure(
            service_name,
            endpoint=endpoint,
            sample_ratio=sample_ratio,
            attributes=attributes,
            annotate=hub,
            root_reconciles=hub,
            roots=not member,
            commits=not member,
        )
        chosen = tracing.settings(endpoint, sample_ratio, os.environ) if on and sync_metrics else None
    except tracing.TracingConfigError as e:
        raise click.UsageError(str(e)) from None
    if chosen is not None:
        otel_metrics.configure(chosen, service_name, attributes)
