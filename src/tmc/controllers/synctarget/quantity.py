"""Kubernetes resource quantities ("2500m", "64Gi", "1e3") as floats, for capacity arithmetic.

Exactness does not matter here: the values only rank targets, weigh replica division and feed metrics, so a float
(cores for cpu, bytes for memory, a count for pods) is enough and far cheaper than decimal arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")


def parse_quantity(value: Any) -> float | None:
    """The numeric value of a quantity, or None when it is not one (so bad input never breaks scheduling)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if not m:
        return None
    number = float(m.group(1))
    if m.group(2):
        return number * 10.0 ** int(m.group(2)[1:])
    return number * _SUFFIX[m.group(3) or ""]


def parse_resource_list(resources: Mapping[str, Any] | None) -> dict[str, float]:
    """A ResourceList with the unparseable entries left out."""
    out: dict[str, float] = {}
    for name, raw in (resources or {}).items():
        value = parse_quantity(raw)
        if value is not None:
            out[str(name)] = value
    return out
