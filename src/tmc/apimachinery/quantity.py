"""Kubernetes resource quantities ("2500m", "64Gi", "1e3"): one parser, two precisions.

`parse_quantity` is exact (a Fraction) and strict, for the simulated scheduler's arithmetic and for validating flags;
`quantity_value` is a float that answers None for anything unparseable, for ranking targets, weighing replica
division and feeding metrics, where bad input must never break scheduling and a float is far cheaper.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_FLOAT_SUFFIXES = {suffix: float(factor) for suffix, factor in _SUFFIXES.items()}
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)

# The shape the API server's JSON decoder checks before parsing, and the message it gives when a value does not have
# it (resource.ErrFormatWrong in k8s.io/apimachinery): strict field validation reports the same words.
QUANTITY_SHAPE = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
QUANTITY_SHAPE_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity; ValueError for anything the API server would reject."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        return Fraction(value)
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(f"invalid quantity {value!r}")
    number, exponent, suffix = m.groups()
    amount = Fraction(number)
    if exponent:
        return amount * Fraction(10) ** int(exponent[1:])
    return amount * _SUFFIXES[suffix or ""]


def quantity_value(value: Any) -> float | None:
    """The numeric value of a quantity as a float (cores for cpu, bytes for memory), or None when it is not one."""
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
    return number * _FLOAT_SUFFIXES[m.group(3) or ""]


def parse_resource_list(resources: Mapping[str, Any] | None) -> dict[str, float]:
    """A ResourceList as floats, with the unparseable entries left out."""
    out: dict[str, float] = {}
    for name, raw in (resources or {}).items():
        value = quantity_value(raw)
        if value is not None:
            out[str(name)] = value
    return out


def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up like the scheduler does (a request of 0.1m still takes 1m)."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value))


def format_quantity(resource: str, value: float) -> str:
    """A quantity string: cpu in millicores when fractional, everything else as a whole number (bytes, counts)."""
    if resource == "cpu" or resource.endswith(".cpu"):
        millis = round(value * 1000)
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    whole = round(value)
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if whole >= factor and whole % factor == 0:
            return f"{whole // factor}{suffix}"
    return str(whole)
