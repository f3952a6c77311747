"""The state of one analysis run and Argo's limit semantics: after each measurement, the phase of its metric and
of the run.

Per metric: Failed when failed > failureLimit (unless it is -1), Inconclusive when inconclusive >
inconclusiveLimit, Error when consecutive errors > consecutiveErrorLimit; Successful once the planned number of
decisive (non-Error) measurements is reached and at least one of them succeeded. Errors do not count towards
`count`: an errored measurement is retried after ERROR_RETRY seconds, and a metric whose every measurement errored
is never Successful (Argo #4479). The run takes the worst metric phase (Successful < Running < Pending <
Inconclusive < Error < Failed); once one metric is bad the others stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tmc.controllers.canary.analysis.measurement import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    PENDING,
    RUNNING,
    SUCCESSFUL,
    Measurement,
    from_timestamp,
    is_bad,
    timestamp,
    worst,
)
from tmc.controllers.canary.analysis.spec import COMPARISON, AnalysisSpec, Limits

ERROR_RETRY = 10.0  # seconds before an errored measurement is retried (Argo's DefaultErrorRetryInterval)
RETAINED = 10  # measurements kept per metric in status (Argo's default measurementRetention)


@dataclass
class MetricState:
    name: str
    phase: str = PENDING
    count: int = 0  # decisive measurements
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    message: str = ""
    next_at: float | None = None
    measurements: list[Measurement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "phase": self.phase,
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.error,
            "consecutiveError": self.consecutive_error,
            "measurements": [m.to_dict() for m in self.measurements],
        }
        if self.message:
            out["message"] = self.message
        if self.next_at is not None:
            out["nextMeasurementAt"] = timestamp(self.next_at)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MetricState:
        return cls(
            name=raw["name"],
            phase=raw.get("phase", PENDING),
            count=raw.get("count", 0),
            successful=raw.get("successful", 0),
            failed=raw.get("failed", 0),
            inconclusive=raw.get("inconclusive", 0),
            error=raw.get("error", 0),
            consecutive_error=raw.get("consecutiveError", 0),
            message=raw.get("message", ""),
            next_at=from_timestamp(raw["nextMeasurementAt"]) if raw.get("nextMeasurementAt") else None,
            measurements=[Measurement.from_dict(m) for m in raw.get("measurements") or []],
        )

    @property
    def done(self) -> bool:
        return self.phase not in (PENDING, RUNNING)

    def last(self, phase: str) -> Measurement | None:
        return next((m for m in reversed(self.measurements) if m.phase == phase), None)


def _limit_text(name: str, count: int, limit: int, what: str) -> str:
    return f"{count} {what} > {name} {limit}"


def assess(state: MetricState, limits: Limits) -> tuple[str, str]:
    """The metric's phase after its counts changed, with the one-line reason when it ended."""
    if limits.failure_limit >= 0 and state.failed > limits.failure_limit:
        last = state.last(FAILED)
        why = _limit_text("failureLimit", state.failed, limits.failure_limit, "failed")
        return FAILED, f"{last.message if last else state.name} ({why})"
    if state.inconclusive > limits.inconclusive_limit:
        last = state.last(INCONCLUSIVE)
        why = _limit_text("inconclusiveLimit", state.inconclusive, limits.inconclusive_limit, "inconclusive")
        return INCONCLUSIVE, f"{last.message if last else state.name} ({why})"
    if state.consecutive_error > limits.consecutive_error_limit:
        last = state.last(ERROR)
        why = _limit_text(
            "consecutiveErrorLimit", state.consecutive_error, limits.consecutive_error_limit, "consecutive errors"
        )
        return ERROR, f"{last.message if last else state.name} ({why})"
    planned = limits.planned
    if planned is not None and state.count >= planned:
        return _finished(state)
    return RUNNING, ""


def _finished(state: MetricState) -> tuple[str, str]:
    """The phase of a metric that measured all it will, within its limits."""
    if state.successful > 0:
        return SUCCESSFUL, f"{state.name}: {state.successful} of {state.count} measurements successful"
    if state.count == 0 and state.error > 0:
        return ERROR, f"{state.name}: all {state.error} measurements were errors"
    if state.count == 0:
        return INCONCLUSIVE, f"{state.name}: stopped before its first measurement"
    return INCONCLUSIVE, f"{state.name}: none of {state.count} measurements succeeded"


class AnalysisRun:
    """One run of an analysis: record measurements as they come, ask what is due, read the phase."""

    def __init__(self, spec: AnalysisSpec, started_at: float, status: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.started_at = started_at
        self.terminated = False
        self.decided_by = ""  # the metric whose own limits ended the run
        known = {m["name"]: MetricState.from_dict(m) for m in (status or {}).get("metrics") or []}
        self.metrics: dict[str, MetricState] = {}
        for name in spec.names:
            state = known.get(name) or MetricState(name)
            if state.next_at is None and not state.done and not state.measurements:
                state.next_at = started_at + spec.limits(name).initial_delay
            self.metrics[name] = state
        if status is not None:
            self.terminated = bool(status.get("terminated", False))
            self.decided_by = status.get("decidedBy", "")

    @classmethod
    def from_status(cls, spec: AnalysisSpec, status: dict[str, Any]) -> AnalysisRun:
        return cls(spec, from_timestamp(status["startedAt"]), status)

    def due(self, now: float) -> list[str]:
        """Metrics to measure now, in spec order."""
        if self.terminated or is_bad(self.phase):
            return []
        return [s.name for s in self.metrics.values() if not s.done and s.next_at is not None and s.next_at <= now]

    def next_wakeup(self) -> float | None:
        """When the next measurement is due (None when nothing is left to measure)."""
        if self.terminated or self.phase != RUNNING:
            return None
        times = [s.next_at for s in self.metrics.values() if not s.done and s.next_at is not None]
        return min(times) if times else None

    def record(self, name: str, measurement: Measurement) -> str:
        """Count one measurement of metric `name`; the run's phase afterwards."""
        state = self.metrics[name]
        if state.done or self.terminated:
            return self.phase
        limits = self.spec.limits(name)
        phase = measurement.phase
        if phase == ERROR:
            state.error += 1
            state.consecutive_error += 1
        else:
            state.count += 1
            state.consecutive_error = 0
            if phase == SUCCESSFUL:
                state.successful += 1
            elif phase == FAILED:
                state.failed += 1
            elif phase == INCONCLUSIVE:
                state.inconclusive += 1
        state.measurements = [*state.measurements, measurement][-RETAINED:]
        state.phase, state.message = assess(state, limits)
        if state.done:
            state.next_at = None
        elif phase == ERROR:
            state.next_at = measurement.finished_at + ERROR_RETRY
        else:
            state.next_at = measurement.finished_at + (limits.interval or 0.0)
        if is_bad(state.phase) and not self.decided_by:
            self.decided_by = name
            self._stop_others(name)
        return self.phase

    def _stop_others(self, decided: str) -> None:
        """The other metrics end by what they measured; the run's phase stays the deciding metric's."""
        for state in self.metrics.values():
            if state.name != decided and not state.done:
                state.phase, state.message = _finished(state)
                state.next_at = None

    def terminate(self) -> str:
        """Stop measuring (the canary finished its steps, or was aborted); metrics still running end by what
        they measured so far, never as Successful without a successful measurement (Argo #2158)."""
        self.terminated = True
        for state in self.metrics.values():
            if not state.done:
                state.phase, state.message = _finished(state)
                state.next_at = None
        return self.phase

    @property
    def phase(self) -> str:
        if self.decided_by:
            return self.metrics[self.decided_by].phase
        phases = [s.phase for s in self.metrics.values()]
        bad = [p for p in phases if is_bad(p)]
        if bad:
            return worst(bad)
        if all(p == SUCCESSFUL for p in phases):
            return SUCCESSFUL
        return RUNNING

    @property
    def message(self) -> str:
        """One line for an Event: why the run ended, or how far it is."""
        phase = self.phase
        if is_bad(phase):
            state = self.metrics.get(self.decided_by) or next(
                s for s in self.metrics.values() if s.phase == phase and s.message
            )
            kind = "metric " if state.name != COMPARISON else ""
            return f"analysis {phase.lower()}: {kind}{state.message}"
        done = [s for s in self.metrics.values() if s.phase == SUCCESSFUL]
        summary = ", ".join(f"{s.name} {s.successful}/{s.count}" for s in self.metrics.values())
        if phase == SUCCESSFUL:
            return f"analysis successful: {summary}"
        return f"analysis running: {len(done)} of {len(self.metrics)} metrics done ({summary})"

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": self.phase,
            "message": self.message,
            "startedAt": timestamp(self.started_at),
            "metrics": [s.to_dict() for s in self.metrics.values()],
        }
        if self.terminated:
            out["terminated"] = True
        if self.decided_by:
            out["decidedBy"] = self.decided_by
        return out
