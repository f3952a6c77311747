"""kcp's cluster-api style conditions (type, status, severity, reason, message, lastTransitionTime).

Writers build the wanted condition and merge it with `set_condition`, which keeps the old lastTransitionTime while
the status stays the same, so rewriting an unchanged condition is a no-op and causes no write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tmc.apimachinery import meta

SEVERITY_ERROR = "Error"
SEVERITY_WARNING = "Warning"
SEVERITY_INFO = "Info"
_SEVERITY_RANK = {SEVERITY_ERROR: 0, SEVERITY_WARNING: 1, SEVERITY_INFO: 2, "": 3}

Condition = dict[str, Any]


def condition(type_: str, status: bool | str, reason: str = "", message: str = "", severity: str = "") -> Condition:
    """A condition; True conditions carry no severity (kcp's convention)."""
    value = ("True" if status else "False") if isinstance(status, bool) else status
    out: Condition = {"type": type_, "status": value}
    if value != "True" and severity:
        out["severity"] = severity
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def find(conditions: Iterable[Condition] | None, type_: str) -> Condition | None:
    for cond in conditions or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_true(conditions: Iterable[Condition] | None, type_: str) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.get("status") == "True"


def set_condition(conditions: Sequence[Condition] | None, new: Condition, now: str | None = None) -> list[Condition]:
    """`conditions` with `new` replacing the same type (or appended); lastTransitionTime moves only on a status
    change. Returns a new list; the input is not modified."""
    out: list[Condition] = []
    placed = False
    for cond in conditions or ():
        if isinstance(cond, dict) and cond.get("type") == new["type"]:
            merged = dict(new)
            same = cond.get("status") == new["status"] and cond.get("lastTransitionTime")
            merged["lastTransitionTime"] = cond["lastTransitionTime"] if same else (now or meta.now_rfc3339())
            out.append(merged)
            placed = True
        else:
            out.append(cond)
    if not placed:
        out.append({**new, "lastTransitionTime": now or meta.now_rfc3339()})
    return out


def summarize(type_: str, conditions: Sequence[Condition] | None, of: Sequence[str]) -> Condition | None:
    """kcp's Ready summary over the listed condition types that are present: False if any is False (copying the
    reason, severity and message of the most severe, earliest-listed one), else Unknown if any is Unknown, else
    True. None when none of them is present."""
    present = [c for t in of if (c := find(conditions, t)) is not None]
    if not present:
        return None
    false = [c for c in present if c.get("status") == "False"]
    if false:
        worst = min(false, key=lambda c: _SEVERITY_RANK.get(str(c.get("severity", "")), 3))
        return condition(
            type_, False, str(worst.get("reason", "")), str(worst.get("message", "")), str(worst.get("severity", ""))
        )
    unknown = [c for c in present if c.get("status") != "True"]
    if unknown:
        first = unknown[0]
        return condition(type_, "Unknown", str(first.get("reason", "")), str(first.get("message", "")))
    return condition(type_, True)
