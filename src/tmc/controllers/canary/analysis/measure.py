"""Taking one measurement: fill the query's placeholders, ask the provider, judge the answer per cluster.

A query whose series carry a `cluster` label is judged once per cluster and the worst cluster decides, so a canary
that is bad in one cluster fails everywhere. Errors are not failures: a provider that does not answer, a PromQL
error, an empty answer or a condition that cannot be evaluated make an Error measurement with the reason.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tmc.controllers.canary.analysis import template
from tmc.controllers.canary.analysis.conditions import ConditionError
from tmc.controllers.canary.analysis.measurement import (
    ERROR,
    FAILED,
    FLEET,
    INCONCLUSIVE,
    SUCCESSFUL,
    ClusterValue,
    Measurement,
    judgement_dict,
    show,
    worst,
)
from tmc.controllers.canary.analysis.prometheus import PrometheusProvider
from tmc.controllers.canary.analysis.readings import ProviderError, Reading
from tmc.controllers.canary.analysis.spec import (
    ComparedMetric,
    ComparisonSpec,
    MetricSpec,
    PrometheusSource,
    WebSource,
)
from tmc.controllers.canary.analysis.statistics import Judgement, classify, classify_clusters, score
from tmc.controllers.canary.analysis.web import WebProvider

Clock = Callable[[], float]


@dataclass
class Providers:
    """The clients a run measures with; the controller keeps one set and closes it on shutdown."""

    prometheus: PrometheusProvider = field(default_factory=PrometheusProvider)
    web: WebProvider = field(default_factory=WebProvider)

    async def close(self) -> None:
        await self.prometheus.close()
        await self.web.close()


async def read(source: PrometheusSource | WebSource, args: Mapping[str, str], providers: Providers) -> Reading:
    """ProviderError or TemplateError when there is no reading."""
    if isinstance(source, PrometheusSource):
        query = template.render_promql(source.query, args)
        return await providers.prometheus.query(query, address=source.address, timeout=source.timeout)
    headers = {key: template.render(value, args) for key, value in source.headers}
    return await providers.web.fetch(
        template.render_url(source.url, args),
        json_path=source.json_path,
        method=source.method,
        headers=headers,
        body=template.render(source.body, args),
        timeout=source.timeout,
    )


def judge(metric: MetricSpec, values: Sequence[Any]) -> tuple[str, str]:
    """The phase of one cluster's (or the fleet's) values and why, by Argo's rules: a failureCondition that holds
    fails; with both conditions set and neither holding the measurement is Inconclusive; a successCondition alone
    that does not hold fails; no condition at all succeeds."""
    try:
        for condition in metric.failure:
            if condition.evaluate(values):
                return FAILED, f"meets failureCondition {condition.source!r}"
        for condition in metric.success:
            if not condition.evaluate(values):
                if metric.failure:
                    return INCONCLUSIVE, f"meets neither successCondition {condition.source!r} nor failureCondition"
                return FAILED, f"does not meet successCondition {condition.source!r}"
    except ConditionError as exc:
        return ERROR, str(exc)
    return SUCCESSFUL, ""


def _uses_list(metric: MetricSpec) -> bool:
    return any(c.as_list for c in (*metric.success, *metric.failure))


def _shown(values: Sequence[Any]) -> str:
    return show(values[0]) if len(values) == 1 else show(list(values))


def assess(
    metric: MetricSpec, reading: Reading, clusters: Collection[str] = ()
) -> tuple[str, str, str, list[ClusterValue]]:
    """(phase, deciding cluster, its value, per-cluster values) of one reading."""
    groups = reading.by_cluster()
    labelled = any(name != FLEET for name in groups)
    if not labelled:
        groups = {FLEET: reading.values}
    else:
        for name in clusters:
            groups.setdefault(name, [])
    if not reading.series and not _uses_list(metric):
        return ERROR, FLEET, "", [ClusterValue(FLEET, ERROR, "", f"no data for {reading.query or 'the query'}")]
    out: list[ClusterValue] = []
    for name, values in groups.items():
        if labelled and not values:
            out.append(ClusterValue(name, ERROR, "", "no data from this cluster"))
            continue
        phase, why = judge(metric, values)
        out.append(ClusterValue(name, phase, _shown(values), why))
    decided = worst([c.phase for c in out])
    decider = next(c for c in out if c.phase == decided)
    return decided, decider.cluster, decider.value, out


def _message(metric: MetricSpec, phase: str, decider: ClusterValue, labelled: bool) -> str:
    where = f" in cluster {decider.cluster}" if labelled and decider.cluster else ""
    if phase == SUCCESSFUL:
        return ""
    if phase == ERROR:
        return f"{metric.name}{where}: {decider.message}"
    return f"{metric.name}{where}: value {decider.value} {decider.message}"


async def measure_metric(
    metric: MetricSpec,
    args: Mapping[str, str],
    providers: Providers,
    clusters: Collection[str] = (),
    clock: Clock = time.time,
) -> Measurement:
    """One measurement of `metric`; `clusters` are those the canary runs in (a labelled answer missing one is an
    Error for that cluster)."""
    started = clock()
    try:
        reading = await read(metric.source, args, providers)
    except (ProviderError, template.TemplateError) as exc:
        return Measurement(ERROR, started, clock(), message=f"{metric.name}: {exc}")
    phase, cluster, value, per_cluster = assess(metric, reading, clusters)
    decider = next(c for c in per_cluster if c.cluster == cluster and c.phase == phase)
    labelled = any(c.cluster for c in per_cluster)
    return Measurement(
        phase,
        started,
        clock(),
        value=value,
        message=_message(metric, phase, decider, labelled),
        cluster=cluster,
        clusters=tuple(per_cluster) if labelled else (),
    )


def _samples(reading: Reading) -> dict[str, list[float]]:
    """The samples of every series by cluster ("" for series without the label); NaNs dropped (Kayenta's
    default)."""
    out: dict[str, list[float]] = {}
    for series in reading.series:
        values = series.value if isinstance(series.value, list) else [series.value]
        kept = out.setdefault(series.cluster, [])
        kept.extend(float(v) for v in values if isinstance(v, int | float) and not math.isnan(v))
    return out


def compare(metric: ComparedMetric, canary: Reading, baseline: Reading) -> Judgement:
    """Per cluster when either side's series carry a cluster label, else over all samples pooled."""
    c, b = _samples(canary), _samples(baseline)
    if any(c) or any(b):
        return classify_clusters(metric, c, b)
    return classify(metric, [v for vs in c.values() for v in vs], [v for vs in b.values() for v in vs])


async def measure_comparison(
    comparison: ComparisonSpec, args: Mapping[str, str], providers: Providers, clock: Clock = time.time
) -> Measurement:
    """One judgement of canary against baseline over the last `lookback` seconds of samples."""
    started = clock()
    end = started

    async def fetch(query: str) -> Reading:
        return await providers.prometheus.query_range(
            template.render_promql(query, args),
            lookback=comparison.lookback,
            step=comparison.step,
            address=comparison.address,
            timeout=comparison.timeout,
            end=end,
        )

    queries = [q for m in comparison.metrics for q in (m.canary_query, m.baseline_query)]
    try:
        readings = await asyncio.gather(*(fetch(q) for q in queries))
    except (ProviderError, template.TemplateError) as exc:
        return Measurement(ERROR, started, clock(), message=f"comparison: {exc}")
    judgements = [compare(m, readings[2 * i], readings[2 * i + 1]) for i, m in enumerate(comparison.metrics)]
    result = score(comparison.metrics, judgements)
    details = tuple(judgement_dict(j) for j in judgements)
    if result.value is None:
        return Measurement(ERROR, started, clock(), message=f"comparison: {result.message}", comparison=details)
    if result.value >= comparison.pass_score:
        phase, bound = SUCCESSFUL, ""
    elif result.value >= comparison.marginal_score:
        phase, bound = INCONCLUSIVE, f" < passScore {comparison.pass_score:g}"
    else:
        phase, bound = FAILED, f" < marginalScore {comparison.marginal_score:g}"
    worst_metric = next((j for j in judgements if j.classification not in ("Pass", "NoData")), None)
    message = ""
    if phase != SUCCESSFUL:
        message = f"comparison: {result.message}{bound}"
        if worst_metric is not None:
            message += f"; {worst_metric.name} {worst_metric.classification}: {worst_metric.message}"
    return Measurement(
        phase,
        started,
        clock(),
        value=show(result.value),
        message=message,
        cluster=worst_metric.cluster if worst_metric is not None and phase != SUCCESSFUL else FLEET,
        comparison=details,
        score=show(result.value),
    )
