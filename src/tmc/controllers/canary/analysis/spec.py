"""The analysis spec as typed dataclasses, parsed from the plain dicts a CanaryDeployment carries.

`parse_analysis` collects every problem as a Kubernetes field cause naming its path
(`spec.analysis.metrics[1].provider.prometheus.query: Required value`) and raises them together as a SpecError,
so the API can answer 422 with all of them. Field names and defaults are Argo Rollouts' (AnalysisTemplate metrics)
and Kayenta's (comparison), as docs/canary.md lists.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from tmc.apimachinery.validation_common import Cause, duplicate, invalid, not_supported, required
from tmc.controllers.canary.analysis import template
from tmc.controllers.canary.analysis.conditions import Condition, ConditionError, compile_condition
from tmc.controllers.canary.analysis.fields import Fields, SpecError

COMPARISON = "comparison"  # the comparison's name among the metrics of a run
DIRECTIONS = ("increase", "decrease", "either")
OPERATORS = ("<", "<=", ">", ">=", "==")
METHODS = ("GET", "POST", "PUT")
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Limits:
    """When and how often a metric is measured, and how many bad measurements it tolerates (Argo's fields)."""

    interval: float | None = None
    initial_delay: float = 0.0
    count: int | None = None
    failure_limit: int = 0  # -1: failures never fail the metric
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT

    @property
    def planned(self) -> int | None:
        """Decisive measurements to take: `count`; one without an interval; None (until stopped) otherwise."""
        if self.count is not None:
            return self.count
        return 1 if self.interval is None else None


@dataclass(frozen=True)
class PrometheusSource:
    query: str
    address: str = ""  # "" = the caller's default
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class WebSource:
    url: str
    json_path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class MetricSpec:
    name: str
    limits: Limits
    source: PrometheusSource | WebSource
    success: tuple[Condition, ...] = ()  # all must hold
    failure: tuple[Condition, ...] = ()  # any one fails the measurement

    def with_thresholds(self, thresholds: Iterable[Threshold]) -> MetricSpec:
        """This metric with a step's thresholds on it added to its success conditions."""
        extra = tuple(t.condition for t in thresholds if t.metric == self.name)
        return replace(self, success=self.success + extra) if extra else self


@dataclass(frozen=True)
class Threshold:
    """A step's `{metric, operator, value}`: the measurement succeeds only while `result <operator> value`."""

    metric: str
    operator: str
    value: float

    @property
    def condition(self) -> Condition:
        return compile_condition(f"result {self.operator} {self.value!r}")


@dataclass(frozen=True)
class ComparedMetric:
    """One metric judged canary against baseline with a Mann-Whitney U test."""

    name: str
    canary_query: str
    baseline_query: str
    direction: str = "either"  # which change is bad
    confidence: float = 0.95
    effect_size: float = 0.1  # smallest relative change (of the baseline median) that counts
    weight: float = 1.0
    min_samples: int = 5
    critical: bool = False  # not Pass -> score 0


@dataclass(frozen=True)
class ComparisonSpec:
    metrics: tuple[ComparedMetric, ...]
    limits: Limits
    address: str = ""
    timeout: float = DEFAULT_TIMEOUT
    lookback: float = 300.0  # seconds of samples per judgement
    step: float = 15.0  # their resolution
    pass_score: float = 90.0
    marginal_score: float = 75.0


@dataclass(frozen=True)
class AnalysisSpec:
    metrics: tuple[MetricSpec, ...] = ()
    comparison: ComparisonSpec | None = None

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.metrics] + ([COMPARISON] if self.comparison is not None else [])

    def limits(self, name: str) -> Limits:
        if name == COMPARISON and self.comparison is not None:
            return self.comparison.limits
        return next(m.limits for m in self.metrics if m.name == name)


# --- parsing ---------------------------------------------------------------------------------------------------


def _limits(f: Fields) -> Limits:
    interval = f.duration("interval")
    if interval is not None and interval <= 0:
        f.add(invalid(f.at("interval"), f.raw["interval"], "must be greater than 0"))
        interval = None
    count = f.integer("count", 0, minimum=1) if f.has("count") else None
    if count is not None and count > 1 and interval is None and not f.has("interval"):
        f.add(invalid(f.at("count"), count, "a count above 1 needs an interval"))
    return Limits(
        interval=interval,
        initial_delay=f.duration("initialDelay", 0.0) or 0.0,
        count=count,
        failure_limit=f.integer("failureLimit", 0, minimum=-1),
        inconclusive_limit=f.integer("inconclusiveLimit", 0, minimum=0),
        consecutive_error_limit=f.integer("consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT, minimum=0),
    )


def _template(f: Fields, name: str, text: str, known: Collection[str] | None) -> None:
    try:
        if known is None:
            template.placeholders(text)
        else:
            template.check(text, known)
    except template.TemplateError as exc:
        f.add(invalid(f.at(name), text, str(exc)))


def _condition(f: Fields, name: str) -> tuple[Condition, ...]:
    source = f.string(name)
    if not source:
        return ()
    try:
        return (compile_condition(source),)
    except ConditionError as exc:
        f.add(invalid(f.at(name), source, str(exc)))
        return ()


def _timeout(f: Fields, name: str) -> float:
    value = f.duration(name, DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _prometheus(f: Fields, known: Collection[str] | None) -> PrometheusSource:
    query = f.string("query", needed=True)
    _template(f, "query", query, known)
    return PrometheusSource(query=query, address=f.url("address", needed=False), timeout=_timeout(f, "timeout"))


def _web(f: Fields, known: Collection[str] | None) -> WebSource:
    url = f.url("url", needed=True)
    _template(f, "url", url, known)
    headers: list[tuple[str, str]] = []
    for i, raw in enumerate(f.items("headers")):
        h = Fields(raw, f"{f.at('headers')}[{i}]", f.causes)
        key, value = h.string("key", needed=True), h.string("value")
        _template(h, "value", value, known)
        headers.append((key, value))
    body = f.string("body")
    _template(f, "body", body, known)
    json_path = f.string("jsonPath", needed=True)
    if json_path:
        from tmc.apimachinery.jsonpath import jsonpath

        try:
            jsonpath(json_path, {})
        except ValueError as exc:
            f.add(invalid(f.at("jsonPath"), json_path, str(exc)))
    return WebSource(
        url=url,
        json_path=json_path,
        method=f.choice("method", "GET", METHODS),
        headers=tuple(headers),
        body=body,
        timeout=_timeout(f, "timeoutSeconds"),
    )


def _source(f: Fields, known: Collection[str] | None) -> PrometheusSource | WebSource:
    kinds = [k for k in ("prometheus", "web") if f.has(k)]
    if len(kinds) != 1:
        detail = "must set exactly one of prometheus, web"
        f.add(invalid(f.path, sorted(kinds), detail) if kinds else required(f.path, detail))
        return PrometheusSource(query="")
    inner = Fields(f.raw[kinds[0]], f.at(kinds[0]), f.causes)
    return _prometheus(inner, known) if kinds[0] == "prometheus" else _web(inner, known)


def _metric(f: Fields, known: Collection[str] | None) -> MetricSpec:
    return MetricSpec(
        name=f.string("name", needed=True),
        limits=_limits(f),
        source=_source(Fields(f.raw.get("provider"), f.at("provider"), f.causes), known),
        success=_condition(f, "successCondition"),
        failure=_condition(f, "failureCondition"),
    )


def _compared(f: Fields, known: Collection[str] | None) -> ComparedMetric:
    queries = {}
    for key in ("canaryQuery", "baselineQuery"):
        queries[key] = f.string(key, needed=True)
        _template(f, key, queries[key], known)
    return ComparedMetric(
        name=f.string("name", needed=True),
        canary_query=queries["canaryQuery"],
        baseline_query=queries["baselineQuery"],
        direction=f.choice("direction", "either", DIRECTIONS),
        confidence=f.number("confidence", 0.95, 0.5, 0.9999),
        effect_size=f.number("effectSize", 0.1, 0.0, 100.0),
        weight=f.number("weight", 1.0, 0.0, 1e6),
        min_samples=f.integer("minSamples", 5, minimum=2),
        critical=f.boolean("critical"),
    )


def _comparison(f: Fields, known: Collection[str] | None) -> ComparisonSpec:
    metrics = []
    seen: set[str] = set()
    entries = f.items("metrics")
    if not entries:
        f.add(required(f.at("metrics"), "a comparison needs at least one metric"))
    for i, raw in enumerate(entries):
        m = _compared(Fields(raw, f"{f.at('metrics')}[{i}]", f.causes), known)
        if m.name in seen:
            f.add(duplicate(f"{f.at('metrics')}[{i}].name", m.name))
        seen.add(m.name)
        metrics.append(m)
    pass_score = f.number("passScore", 90.0, 0.0, 100.0)
    marginal = f.number("marginalScore", 75.0, 0.0, 100.0)
    if marginal > pass_score:
        f.add(invalid(f.at("marginalScore"), f.raw.get("marginalScore", marginal), "must not exceed passScore"))
    step = f.duration("step", 15.0) or 15.0
    lookback = f.duration("lookback", 300.0) or 300.0
    if lookback < step:
        f.add(invalid(f.at("lookback"), f.raw.get("lookback"), "must be at least one step"))
    return ComparisonSpec(
        metrics=tuple(metrics),
        limits=_limits(f),
        address=f.url("address", needed=False),
        timeout=_timeout(f, "timeout"),
        lookback=lookback,
        step=step,
        pass_score=pass_score,
        marginal_score=marginal,
    )


def parse_analysis(raw: Any, path: str = "spec.analysis", known_args: Collection[str] | None = None) -> AnalysisSpec:
    """The spec at `path`; SpecError with every cause. With `known_args`, placeholders must name one of them."""
    causes: list[Cause] = []
    f = Fields(raw, path, causes)
    metrics: list[MetricSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(f.items("metrics")):
        metric = _metric(Fields(item, f"{f.at('metrics')}[{i}]", causes), known_args)
        if metric.name and (metric.name in seen or (metric.name == COMPARISON and f.has("comparison"))):
            causes.append(duplicate(f"{f.at('metrics')}[{i}].name", metric.name))
        seen.add(metric.name)
        metrics.append(metric)
    comparison = (
        _comparison(Fields(f.raw["comparison"], f.at("comparison"), causes), known_args)
        if f.has("comparison")
        else None
    )
    if not metrics and comparison is None:
        causes.append(required(f.at("metrics"), "an analysis needs metrics or a comparison"))
    if causes:
        raise SpecError(causes)
    return AnalysisSpec(tuple(metrics), comparison)


def parse_thresholds(raw: Any, path: str, analysis: AnalysisSpec) -> tuple[Threshold, ...]:
    """A step's `thresholds` at `path`; each must name a metric of `analysis` (not the comparison)."""
    causes: list[Cause] = []
    names = [m.name for m in analysis.metrics]
    if raw is not None and not isinstance(raw, list):
        raise SpecError([invalid(path, raw, "must be a list")])
    out: list[Threshold] = []
    for i, item in enumerate(raw or []):
        f = Fields(item, f"{path}[{i}]", causes)
        metric = f.string("metric", needed=True)
        if metric and metric not in names:
            causes.append(not_supported(f.at("metric"), metric, names))
        if not f.has("operator"):
            f.add(required(f.at("operator")))
        operator = f.choice("operator", "<", OPERATORS)
        if not f.has("value"):
            f.add(required(f.at("value")))
        value = f.number("value", 0.0, -1e300, 1e300)
        out.append(Threshold(metric, operator, value))
    if causes:
        raise SpecError(causes)
    return tuple(out)
