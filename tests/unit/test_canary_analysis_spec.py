"""Parsing and validating the analysis spec, query templating, and conditions over `result`."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.controllers.canary.analysis import (
    COMPARISON,
    SpecError,
    parse_analysis,
    parse_duration,
    parse_thresholds,
)
from tmc.controllers.canary.analysis.conditions import ConditionError, compile_condition, to_cel
from tmc.controllers.canary.analysis.measure import judge
from tmc.controllers.canary.analysis.spec import PrometheusSource, WebSource
from tmc.controllers.canary.analysis.template import TemplateError, render_promql, render_url

PROM = {"prometheus": {"query": "sum(rate(errors[1m]))"}}


def causes(raw: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_analysis(raw, **kw)
    return [(c["field"], c["message"]) for c in info.value.causes]


def test_a_full_spec_parses_into_argo_defaults() -> None:
    spec = parse_analysis(
        {
            "metrics": [
                {
                    "name": "error-rate",
                    "interval": "30s",
                    "count": 5,
                    "failureLimit": 1,
                    "successCondition": "result < 0.01",
                    "provider": {"prometheus": {"address": "http://prom:9090", "query": "up", "timeout": 5}},
                },
                {
                    "name": "health",
                    "provider": {
                        "web": {
                            "url": "http://svc/health?ns={{ args.namespace }}",
                            "headers": [{"key": "X-Ns", "value": "{{args.namespace}}"}],
                            "jsonPath": "{$.ok}",
                            "method": "POST",
                        }
                    },
                    "successCondition": "result == true",
                },
            ],
            "comparison": {
                "interval": "1m",
                "count": 3,
                "lookback": "5m",
                "step": "10s",
                "passScore": 95,
                "metrics": [{"name": "latency", "canaryQuery": "a", "baselineQuery": "b", "direction": "increase"}],
            },
        },
        known_args=["namespace"],
    )
    rate, health = spec.metrics
    assert rate.limits.interval == 30 and rate.limits.count == 5 and rate.limits.failure_limit == 1
    assert rate.limits.consecutive_error_limit == 4 and rate.limits.inconclusive_limit == 0
    assert rate.source == PrometheusSource("up", "http://prom:9090", 5.0)
    assert isinstance(health.source, WebSource) and health.source.method == "POST"
    assert health.source.headers == (("X-Ns", "{{args.namespace}}"),) and health.source.timeout == 10
    assert health.limits.planned == 1  # no interval: one measurement
    assert spec.comparison is not None and spec.comparison.lookback == 300 and spec.comparison.step == 10
    latency = spec.comparison.metrics[0]
    assert (latency.confidence, latency.effect_size, latency.direction) == (0.95, 0.1, "increase")
    assert (spec.comparison.pass_score, spec.comparison.marginal_score) == (95, 75)
    assert spec.names == ["error-rate", "health", COMPARISON]


def test_every_problem_is_reported_with_its_field_path() -> None:
    found = causes(
        {
            "metrics": [
                {"name": "ok", "provider": PROM},
                {"name": "b", "provider": {"prometheus": {}}, "count": 3, "failureLimit": -2},
                {"name": "ok", "provider": {}, "successCondition": "result <"},
                {"name": "c", "provider": {**PROM, "web": {"url": "ftp://x", "jsonPath": "$.a"}}, "interval": "soon"},
                {"name": "d", "provider": {"web": {"url": "http://x/{{ args.nope }}"}}},
            ],
            "comparison": {
                "metrics": [{"name": "x", "direction": "up", "confidence": 2, "critical": "yes"}],
                "marginalScore": 99,
            },
        },
        known_args=["namespace"],
    )
    paths = [p for p, _ in found]
    m = "spec.analysis.metrics"
    assert (f"{m}[1].provider.prometheus.query", "Required value") in found
    assert (f"{m}[1].count", "Invalid value: 3: a count above 1 needs an interval") in found
    assert (f"{m}[1].failureLimit", "Invalid value: -2: must be greater than or equal to -1") in found
    assert (f"{m}[2].provider", "Required value: must set exactly one of prometheus, web") in found
    assert (f"{m}[2].name", 'Duplicate value: "ok"') in found
    assert f"{m}[2].successCondition" in paths
    assert (f"{m}[3].provider", 'Invalid value: ["prometheus","web"]: must set exactly one of prometheus, web') in found
    assert (f"{m}[3].interval", 'Invalid value: "soon": must be a duration such as 30s, 5m or 1h') in found
    assert (f"{m}[4].provider.web.jsonPath", "Required value") in found
    assert (
        f"{m}[4].provider.web.url",
        'Invalid value: "http://x/{{ args.nope }}": unknown argument nope (known: namespace)',
    ) in found
    c = "spec.analysis.comparison"
    assert (f"{c}.metrics[0].canaryQuery", "Required value") in found
    supported = 'supported values: "increase", "decrease", "either"'
    assert (f"{c}.metrics[0].direction", f'Unsupported value: "up": {supported}') in found
    assert (f"{c}.metrics[0].confidence", "Invalid value: 2: must be between 0.5 and 0.9999") in found
    assert (f"{c}.marginalScore", "Invalid value: 99: must not exceed passScore") in found
    assert (f"{c}.metrics[0].critical", 'Invalid value: "yes": must be a boolean') in found
    # The message a 422 Status carries names the first field.
    with pytest.raises(SpecError, match=r"^spec.analysis.metrics\[1\].provider.prometheus.query: Required value"):
        parse_analysis({"metrics": [{"name": "a", "provider": PROM}, {"name": "b", "provider": {"prometheus": {}}}]})


def test_an_empty_analysis_and_wrong_types_are_rejected() -> None:
    assert causes({}) == [("spec.analysis.metrics", "Required value: an analysis needs metrics or a comparison")]
    assert causes({"metrics": "x"}, path="spec.steps[0].analysis")[0] == (
        "spec.steps[0].analysis.metrics",
        'Invalid value: "x": must be a list',
    )
    assert ("spec.analysis.metrics[0].name", 'Duplicate value: "comparison"') in causes(
        {
            "metrics": [{"name": "comparison", "provider": PROM}],
            "comparison": {"metrics": [{"name": "a", "canaryQuery": "a", "baselineQuery": "b"}]},
        }
    )


def test_thresholds_map_onto_conditions_and_must_name_a_metric() -> None:
    spec = parse_analysis({"metrics": [{"name": "errors", "provider": PROM, "successCondition": "result >= 0"}]})
    (threshold,) = parse_thresholds([{"metric": "errors", "operator": "<", "value": "0.05"}], "spec.steps[2]", spec)
    metric = spec.metrics[0].with_thresholds([threshold])
    assert [c.source for c in metric.success] == ["result >= 0", "result < 0.05"]
    assert judge(metric, [0.01]) == ("Successful", "")
    assert judge(metric, [0.2]) == ("Failed", "does not meet successCondition 'result < 0.05'")
    assert spec.metrics[0].with_thresholds([]) is spec.metrics[0]
    with pytest.raises(SpecError) as info:
        parse_thresholds(
            [{"metric": "latency", "operator": "<", "value": 3}, {"metric": "errors", "operator": "!=", "value": "x"}],
            "spec.steps[2].thresholds",
            spec,
        )
    assert [(c["field"], c["message"]) for c in info.value.causes] == [
        ("spec.steps[2].thresholds[0].metric", 'Unsupported value: "latency": supported values: "errors"'),
        (
            "spec.steps[2].thresholds[1].operator",
            'Unsupported value: "!=": supported values: "<", "<=", ">", ">=", "=="',
        ),
        ("spec.steps[2].thresholds[1].value", 'Invalid value: "x": must be a number'),
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [(30, 30.0), ("45", 45.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25)]
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_placeholders_are_filled_and_escaped_for_promql_and_urls() -> None:
    args = {"namespace": 'team"a', "workload": "web\\x'", "cluster": "eu 1", "interval": "5m"}
    query = (
        "sum(rate(http_errors{namespace=\"{{ args.namespace }}\", deployment='{{args.workload}}', "
        "pod=~`{{ args.interval }}.*`}[{{ args.interval }}]))"
    )
    # Each literal is escaped for its own quote: PromQL rejects an escaped quote of the other kind.
    assert render_promql(query, args) == (
        "sum(rate(http_errors{namespace=\"team\\\"a\", deployment='web\\\\x\\'', pod=~`5m.*`}[5m]))"
    )
    assert render_promql('x{a="\\"{{ args.namespace }}"}', args) == 'x{a="\\"team\\"a"}'
    with pytest.raises(TemplateError, match="argument namespace = 'team\"a' is outside a string literal"):
        render_promql("rate(x[{{ args.namespace }}])", args)
    with pytest.raises(TemplateError, match="contains a backquote"):
        render_promql("x{a=`{{ args.namespace }}`}", {"namespace": "a`b"})
    assert render_url("http://x/q?c={{ args.cluster }}", args) == "http://x/q?c=eu%201"
    known = r"\(known: cluster, interval, namespace, workload\)"
    with pytest.raises(TemplateError, match=r"unknown arguments canary, stable " + known):
        render_promql("{{ args.canary }} {{ args.stable }}", args)
    with pytest.raises(TemplateError, match=r"placeholder '\{\{ inputs.x \}\}' is not of the form"):
        render_promql("{{ inputs.x }}", args)


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("result < 0.01", [0.005], True),
        ("result < 0.01", [0.5], False),
        ("result < 1", [0.5], True),  # an int literal compares with a float result
        ("result[0] >= 0.95", [0.96], True),
        ("result[0] >= 0.95", [0.9, 0.99], False),
        ("len(result) > 0", [], False),
        ("len(result) == 2 && result.all(x, x < 1.0)", [0.1, 0.2], True),
        ("isNaN(result)", [float("nan")], True),
        ("isInf(result) || result > 3", [float("inf")], True),
        ("result.status == 'ok' && result.code < 300", [{"status": "ok", "code": 200}], True),
        ("result == 'len(x)'", ["len(x)"], True),  # function names inside string literals are left alone
    ],
)
def test_argo_condition_forms(condition: str, values: list[Any], expected: bool) -> None:
    assert compile_condition(condition).evaluate(values) is expected


def test_conditions_that_cannot_judge_are_errors_not_verdicts() -> None:
    assert to_cel("len(result) > 0 && isNaN(result[0])") == "size(result) > 0 && math.isNaN(result[0])"
    with pytest.raises(ConditionError, match="the query returned no value"):
        compile_condition("result < 1").evaluate([])
    with pytest.raises(ConditionError, match="returned 2 values and 'result < 1' compares one"):
        compile_condition("result < 1").evaluate([0.1, 0.2])
    with pytest.raises(ConditionError, match="Index error"):
        compile_condition("result[0] < 1").evaluate([])
    with pytest.raises(ConditionError, match="must evaluate to a bool"):
        compile_condition("result + 1")
    with pytest.raises(ConditionError, match="Syntax error"):
        compile_condition("result <")


def test_judge_follows_argo_for_each_combination_of_conditions() -> None:
    def metric(**conditions: str) -> Any:
        raw = {"name": "m", "provider": PROM, **conditions}
        return parse_analysis({"metrics": [raw]}).metrics[0]

    both = metric(successCondition="result < 1", failureCondition="result > 5")
    assert judge(both, [0.5])[0] == "Successful"
    assert judge(both, [9.0]) == ("Failed", "meets failureCondition 'result > 5'")
    assert judge(both, [3.0]) == ("Inconclusive", "meets neither successCondition 'result < 1' nor failureCondition")
    assert judge(metric(failureCondition="result > 5"), [3.0])[0] == "Successful"
    assert judge(metric(successCondition="result < 1"), [3.0])[0] == "Failed"
    assert judge(metric(), [3.0])[0] == "Successful"  # Argo's code, not its docs
    assert judge(metric(successCondition="result < 'a'"), [3.0])[0] == "Error"
