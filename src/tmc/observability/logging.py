"""JSON-lines logging on stderr for every tmc process (hub, syncers, controllers)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from tmc.observability import tracing

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

# Attributes every LogRecord carries; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_CORE_FIELDS = ("ts", "level", "logger", "msg", "component", "trace_id", "span_id", "exception", "stack")
# Per-request access lines would drown everything else; the hub logs slow and failed requests itself.
_QUIET_LOGGERS = ("aiohttp.access",)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, component, trace_id and span_id (while a span is
    active), then the caller's extra keys."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        entry: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "component": self.component,
        }
        if tracing.enabled and (ids := tracing.current_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            # Never let an extra key overwrite a core field; keep it under a suffixed name instead.
            entry[f"{key}_" if key in _CORE_FIELDS else key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time, so redirection after setup (tests, daemons) still works."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        # StreamHandler assigns the stream in __init__ and setStream; the live sys.stderr always wins.
        return


def parse_level(level: str) -> int:
    """Map a case-insensitive level name to a logging level; ValueError for anything else."""
    value = LEVELS.get(level.strip().lower())
    if value is None:
        raise ValueError(f"invalid log level {level!r}: expected one of debug, info, warning, error")
    return value


def configure_logging(level: str = "info", component: str = "tmc") -> None:
    """Route all logging to stderr as JSON lines. Calling it again replaces the previous configuration."""
    numeric = parse_level(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JSONFormatter(component))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
