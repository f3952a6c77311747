"""A measurement as the CanaryDeployment status carries it: JSON-ready, readable back, one line per Event.

Numbers that are data (values, p-values, effect sizes, scores) travel as strings, as Argo's `value` does, because
Kubernetes API conventions keep floats out of objects; counts are integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from tmc.controllers.canary.analysis.statistics import Judgement

PENDING, RUNNING, SUCCESSFUL, FAILED, ERROR, INCONCLUSIVE = (
    "Pending",
    "Running",
    "Successful",
    "Failed",
    "Error",
    "Inconclusive",
)
# Worst last: a run, a fleet of clusters or a set of metrics takes the worst phase among its parts (Argo's order).
_SEVERITY = {SUCCESSFUL: 0, RUNNING: 1, PENDING: 2, INCONCLUSIVE: 3, ERROR: 4, FAILED: 5}
FLEET = ""  # the cluster name of a value whose series carry no cluster label


def worst(phases: list[str]) -> str:
    return max(phases, key=_SEVERITY.__getitem__) if phases else SUCCESSFUL


def is_bad(phase: str) -> bool:
    return phase in (INCONCLUSIVE, ERROR, FAILED)


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def show(value: Any) -> str:
    """A value as one short string: numbers in %g form, anything else as compact JSON."""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:g}"
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True)
class ClusterValue:
    cluster: str
    phase: str
    value: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"cluster": self.cluster, "phase": self.phase, "value": self.value}
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ClusterValue:
        return cls(raw.get("cluster", ""), raw.get("phase", ""), raw.get("value", ""), raw.get("message", ""))


def _num(value: float | None) -> str | None:
    return None if value is None else show(float(value))


def judgement_dict(j: Judgement) -> dict[str, Any]:
    out: dict[str, Any] = {"name": j.name} if j.name else {}
    out |= {
        "classification": j.classification,
        "canarySamples": j.canary_samples,
        "baselineSamples": j.baseline_samples,
    }
    for key, value in (
        ("statistic", j.statistic),
        ("pValue", j.p_value),
        ("effectSize", j.relative_effect),
        ("shift", j.shift),
        ("canaryMedian", j.canary_median),
        ("baselineMedian", j.baseline_median),
    ):
        if value is not None:
            out[key] = _num(value)
    if j.message:
        out["message"] = j.message
    if j.cluster:
        out["cluster"] = j.cluster
    if j.clusters:
        out["clusters"] = [judgement_dict(replace(c, name="")) for c in j.clusters]
    return out


@dataclass(frozen=True)
class Measurement:
    """One measurement of one metric (or of the comparison). `cluster` and `value` are those that decided: the
    worst cluster's, or the fleet's when the series carry no cluster label."""

    phase: str
    started_at: float
    finished_at: float
    value: str = ""
    message: str = ""
    cluster: str = FLEET
    clusters: tuple[ClusterValue, ...] = ()
    comparison: tuple[dict[str, Any], ...] = field(default=())  # judgement_dict()s
    score: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": self.phase,
            "startedAt": timestamp(self.started_at),
            "finishedAt": timestamp(self.finished_at),
        }
        if self.value:
            out["value"] = self.value
        if self.message:
            out["message"] = self.message
        if self.cluster:
            out["cluster"] = self.cluster
        if self.clusters:
            out["clusters"] = [c.to_dict() for c in self.clusters]
        if self.comparison:
            out["comparison"] = {"score": self.score, "metrics": list(self.comparison)}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Measurement:
        comparison = raw.get("comparison") or {}
        return cls(
            phase=raw["phase"],
            started_at=from_timestamp(raw["startedAt"]),
            finished_at=from_timestamp(raw["finishedAt"]),
            value=raw.get("value", ""),
            message=raw.get("message", ""),
            cluster=raw.get("cluster", FLEET),
            clusters=tuple(ClusterValue.from_dict(c) for c in raw.get("clusters") or []),
            comparison=tuple(comparison.get("metrics") or []),
            score=comparison.get("score", ""),
        )
