"""Argo's limit semantics over a run (every phase transition), cross-cluster judgement and the status record."""

from __future__ import annotations

from typing import Any

from tmc.controllers.canary.analysis import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    RUNNING,
    SUCCESSFUL,
    AnalysisRun,
    Measurement,
    Reading,
    Series,
    parse_analysis,
)
from tmc.controllers.canary.analysis.measure import assess
from tmc.controllers.canary.analysis.run import ERROR_RETRY

T0 = 1_800_000_000.0
PROM = {"prometheus": {"query": "q"}}


def run_of(*metrics: dict[str, Any]) -> AnalysisRun:
    spec = parse_analysis({"metrics": [{"provider": PROM, **m} for m in metrics]})
    return AnalysisRun(spec, T0)


def m(phase: str, at: float = T0, message: str = "", value: str = "") -> Measurement:
    return Measurement(phase, at, at + 1, value=value, message=message)


def feed(run: AnalysisRun, name: str, phases: str) -> list[str]:
    """Record one measurement per letter (S, F, I, E) and return the run phase after each."""
    codes = {"S": SUCCESSFUL, "F": FAILED, "I": INCONCLUSIVE, "E": ERROR}
    return [run.record(name, m(codes[c], message=f"{name}: {c}")) for c in phases]


def test_one_measurement_without_interval() -> None:
    assert feed(run_of({"name": "a"}), "a", "S") == [SUCCESSFUL]
    assert feed(run_of({"name": "a"}), "a", "F") == [FAILED]


def test_failure_limit_tolerates_that_many_failures() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 5, "failureLimit": 2})
    assert feed(run, "a", "FSFF") == [RUNNING, RUNNING, RUNNING, FAILED]
    assert run.message == "analysis failed: metric a: F (3 failed > failureLimit 2)"
    run = run_of({"name": "a", "interval": "1m", "count": 5, "failureLimit": 2})
    assert feed(run, "a", "FSFSS") == [RUNNING] * 4 + [SUCCESSFUL]
    # -1: failures never fail the metric, but a metric with no success is never Successful.
    run = run_of({"name": "a", "interval": "1m", "count": 3, "failureLimit": -1})
    assert feed(run, "a", "FFF") == [RUNNING, RUNNING, INCONCLUSIVE]
    assert run.message == "analysis inconclusive: metric a: none of 3 measurements succeeded"


def test_inconclusive_limit() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 4, "inconclusiveLimit": 1})
    assert feed(run, "a", "ISI") == [RUNNING, RUNNING, INCONCLUSIVE]
    assert feed(run_of({"name": "a"}), "a", "I") == [INCONCLUSIVE]


def test_errors_are_retried_and_only_consecutive_ones_count() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 2, "consecutiveErrorLimit": 2})
    assert feed(run, "a", "EESEES") == [RUNNING] * 5 + [SUCCESSFUL]
    state = run.metrics["a"]
    assert (state.count, state.error, state.consecutive_error, state.successful) == (2, 4, 0, 2)
    run = run_of({"name": "a", "interval": "1m", "count": 2, "consecutiveErrorLimit": 2})
    assert feed(run, "a", "EEE") == [RUNNING, RUNNING, ERROR]
    assert run.message == "analysis error: metric a: E (3 consecutive errors > consecutiveErrorLimit 2)"


def test_a_run_of_only_errors_is_never_successful() -> None:
    run = run_of({"name": "a", "interval": "1m", "consecutiveErrorLimit": 10})
    feed(run, "a", "EEE")
    assert run.terminate() == ERROR
    assert run.message == "analysis error: metric a: all 3 measurements were errors"


def test_background_metrics_run_until_terminated() -> None:
    run = run_of({"name": "a", "interval": "30s"})
    assert feed(run, "a", "SSSS") == [RUNNING] * 4
    assert run.terminate() == SUCCESSFUL and run.message == "analysis successful: a 4/4"
    untouched = run_of({"name": "a", "interval": "30s"})
    assert untouched.terminate() == INCONCLUSIVE  # stopped before any evidence: not a silent success
    assert run.record("a", m(FAILED)) == SUCCESSFUL  # nothing counts after termination


def test_the_first_bad_metric_decides_and_stops_the_others() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 3}, {"name": "b", "interval": "1m", "count": 3})
    feed(run, "b", "E")
    assert feed(run, "a", "F") == [FAILED]
    assert run.metrics["b"].phase == ERROR and run.phase == FAILED  # b's own stop does not change the verdict
    assert run.due(T0 + 3600) == [] and run.next_wakeup() is None
    assert run.to_status()["decidedBy"] == "a"


def test_scheduling_follows_interval_initial_delay_and_error_retry() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 3, "initialDelay": "30s"}, {"name": "b"})
    assert run.due(T0) == ["b"] and run.next_wakeup() == T0
    assert run.due(T0 + 30) == ["a", "b"]
    run.record("a", m(SUCCESSFUL, T0 + 30))  # finished at T0 + 31
    assert run.metrics["a"].next_at == T0 + 91
    run.record("a", m(ERROR, T0 + 91))
    assert run.metrics["a"].next_at == T0 + 92 + ERROR_RETRY
    run.record("b", m(SUCCESSFUL, T0 + 1))
    assert run.due(T0 + 100) == [] and run.due(T0 + 102) == ["a"] and run.phase == RUNNING


def test_status_round_trips_and_keeps_the_last_ten_measurements() -> None:
    run = run_of({"name": "a", "interval": "10s", "count": 20, "failureLimit": 30})
    for i in range(12):
        run.record("a", m(SUCCESSFUL if i % 2 else FAILED, T0 + 10 * i, value=f"{i}"))
    status = run.to_status()
    state = status["metrics"][0]
    assert len(state["measurements"]) == 10 and state["measurements"][0]["value"] == "2"
    assert state["measurements"][0]["startedAt"] == "2027-01-15T08:00:20Z"
    assert (state["count"], state["failed"], state["successful"]) == (12, 6, 6)
    again = AnalysisRun.from_status(run.spec, status)
    assert again.to_status() == status
    assert again.metrics["a"].next_at == run.metrics["a"].next_at


def metric(condition: str = "result < 0.05", **kw: Any) -> Any:
    return parse_analysis({"metrics": [{"name": "errors", "provider": PROM, "successCondition": condition, **kw}]})


def vector(**values: float) -> Reading:
    return Reading(tuple(Series({"cluster": c, "job": "x"}, v) for c, v in values.items()), query="q")


def test_the_worst_cluster_decides_and_is_named() -> None:
    spec = metric().metrics[0]
    phase, cluster, value, per = assess(spec, vector(eu=0.01, us=0.2, ap=0.02))
    assert (phase, cluster, value) == (FAILED, "us", "0.2")
    assert [(c.cluster, c.phase, c.value) for c in per] == [
        ("eu", SUCCESSFUL, "0.01"),
        ("us", FAILED, "0.2"),
        ("ap", SUCCESSFUL, "0.02"),
    ]
    assert assess(spec, vector(eu=0.01, us=0.02))[:2] == (SUCCESSFUL, "eu")
    # A cluster the canary runs in but the answer lacks is an error there; a failure elsewhere still wins.
    phase, cluster, _, per = assess(spec, vector(eu=0.01), clusters=["eu", "us"])
    assert (phase, cluster) == (ERROR, "us") and per[1].message == "no data from this cluster"
    assert assess(spec, vector(eu=0.5), clusters=["eu", "us"])[:2] == (FAILED, "eu")


def test_unlabelled_answers_are_judged_as_one_fleet_value() -> None:
    spec = metric().metrics[0]
    assert assess(spec, Reading((Series({}, 0.01),), scalar=True))[:3] == (SUCCESSFUL, "", "0.01")
    phase, _, _, per = assess(spec, Reading(query="sum(rate(x[1m]))"))
    assert phase == ERROR and per[0].message == "no data for sum(rate(x[1m]))"
    # An expression that handles the empty vector itself is evaluated on it.
    listy = metric("len(result) == 0 || result[0] < 0.05").metrics[0]
    assert assess(listy, Reading())[0] == SUCCESSFUL
    two = Reading((Series({"job": "a"}, 0.01), Series({"job": "b"}, 0.02)))
    assert assess(spec, two)[0] == ERROR
    assert assess(metric("result.all(x, x < 0.05)").metrics[0], two)[0] == SUCCESSFUL


def test_measurement_record_is_json_ready_with_clusters_and_comparison() -> None:
    record = Measurement(
        FAILED,
        T0,
        T0 + 2,
        value="0.2",
        message="errors in cluster us: value 0.2 does not meet successCondition 'result < 0.05'",
        cluster="us",
        clusters=(),
        comparison=({"name": "latency", "classification": "High", "pValue": "0.001"},),
        score="0",
    )
    as_dict = record.to_dict()
    assert as_dict["startedAt"] == "2027-01-15T08:00:00Z" and as_dict["cluster"] == "us"
    assert as_dict["comparison"] == {"score": "0", "metrics": [dict(record.comparison[0])]}
    assert Measurement.from_dict(as_dict) == record
