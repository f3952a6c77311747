"""Reading typed fields out of plain dicts, collecting Kubernetes field causes that name each field's path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tmc.apimachinery.validation_common import Cause, invalid, not_supported, required, type_invalid

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class SpecError(ValueError):
    """An analysis spec that does not validate; `causes` are Status causes (`field`, `message`, `type`)."""

    def __init__(self, causes: list[Cause]) -> None:
        self.causes = causes
        super().__init__("; ".join(f"{c['field']}: {c['message']}" for c in causes))


def parse_duration(value: Any) -> float:
    """Seconds from `30`, `"30"`, `"30s"`, `"5m"`, `"1h30m"`, `"250ms"` (Argo's and Go's forms); ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError("must be a duration such as 30s, 5m or 1h")
    if value.isdigit():
        return float(value)
    pos, total = 0, 0.0
    while pos < len(value):
        m = _DURATION.match(value, pos)
        if m is None:
            raise ValueError("must be a duration such as 30s, 5m or 1h")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


class Fields:
    """One object at `path`: typed getters that add a cause and return a default when a field is wrong."""

    def __init__(self, raw: Any, path: str, causes: list[Cause]) -> None:
        self.path = path
        self.causes = causes
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            causes.append(type_invalid(path, raw, "must be an object"))
            raw = {}
        self.raw: dict[str, Any] = raw

    def at(self, name: str) -> str:
        return f"{self.path}.{name}"

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def add(self, cause: Cause) -> None:
        self.causes.append(cause)

    def string(self, name: str, default: str = "", *, needed: bool = False) -> str:
        value = self.raw.get(name)
        if value is None or value == "":
            if needed:
                self.causes.append(required(self.at(name)))
            return default
        if not isinstance(value, str):
            self.causes.append(type_invalid(self.at(name), value, "must be a string"))
            return default
        return value

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.causes.append(type_invalid(self.at(name), value, "must be an integer"))
            return default
        if minimum is not None and value < minimum:
            self.causes.append(invalid(self.at(name), value, f"must be greater than or equal to {minimum}"))
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value)  # resource.Quantity-like strings ("0.95") are how floats travel in APIs
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.causes.append(type_invalid(self.at(name), self.raw.get(name), "must be a number"))
            return default
        if not low <= value <= high:
            self.causes.append(invalid(self.at(name), self.raw.get(name), f"must be between {low:g} and {high:g}"))
            return default
        return float(value)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.raw.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.causes.append(type_invalid(self.at(name), value, "must be a boolean"))
            return default
        return value

    def duration(self, name: str, default: float | None = None) -> float | None:
        value = self.raw.get(name)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.causes.append(invalid(self.at(name), value, str(exc)))
            return default

    def choice(self, name: str, default: str, allowed: Iterable[str]) -> str:
        options = list(allowed)
        value = self.string(name, default)
        if value not in options:
            self.causes.append(not_supported(self.at(name), value, options))
            return default
        return value

    def items(self, name: str) -> list[Any]:
        value = self.raw.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.causes.append(type_invalid(self.at(name), value, "must be a list"))
            return []
        return value

    def url(self, name: str, *, needed: bool) -> str:
        value = self.string(name, needed=needed)
        if value and not value.startswith(("http://", "https://")):
            self.causes.append(invalid(self.at(name), value, "must be an http:// or https:// URL"))
        return value
