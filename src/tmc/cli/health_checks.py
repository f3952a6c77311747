"""Reading kube-style health endpoints (`/readyz?verbose`) and Prometheus text, for `health` and `debug syncer`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHECK = re.compile(r"^\[([+-])\](\S+)\s+(.*)$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def parse_verbose(body: str) -> list[Check]:
    """`[+]ping ok` / `[-]storage failed: reason withheld` lines of a verbose health answer."""
    out = []
    for line in body.splitlines():
        m = _CHECK.match(line.strip())
        if m:
            out.append(Check(m.group(2), m.group(1) == "+", m.group(3)))
    return out


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(body: str, names: frozenset[str] | None = None) -> list[Sample]:
    """Samples of the Prometheus text format (only `names` when given)."""
    out = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m or (names is not None and m.group(1) not in names):
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append(Sample(m.group(1), dict(_LABEL.findall(m.group(3) or "")), value))
    return out


def total(samples: list[Sample], name: str, **labels: str) -> float | None:
    """Sum of a family's samples matching `labels`; None when there is none."""
    values = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(values) if values else None
