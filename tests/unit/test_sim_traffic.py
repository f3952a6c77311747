"""Simulated traffic as counts: arrivals, splits, error and latency draws; pod behaviour annotations and the scoping
of every fault annotation to named clusters (`sim.tmc.io/fault-clusters`)."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from tmc.sim import traffic
from tmc.sim.podstatus import CRASH_LOOP, NEVER_READY, fault_flag, faults_apply
from tmc.sim.traffic import (
    BUCKETS_MS,
    DEFAULT_LATENCY,
    BadAnnotation,
    Behaviour,
    Latency,
    answer,
    behaviour,
    binomial,
    bucket_model,
    multinomial,
    parse_latency,
    poisson,
    request_rate,
)


def annotated(annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "annotations": annotations}}


# ------------------------------------------------------------------ fault scoping


def test_faults_apply_everywhere_unless_scoped_to_named_clusters() -> None:
    assert faults_apply(annotated({}), "cluster-1")
    scoped = annotated({"sim.tmc.io/fault-clusters": "cluster-2, cluster-3", NEVER_READY: "true"})
    assert not faults_apply(scoped, "cluster-1")
    assert faults_apply(scoped, "cluster-2") and faults_apply(scoped, "cluster-3")
    assert fault_flag(scoped, NEVER_READY, "cluster-3")
    assert not fault_flag(scoped, NEVER_READY, "cluster-1")
    assert not fault_flag(scoped, CRASH_LOOP, "cluster-3")  # not set at all
    assert not faults_apply(annotated({"sim.tmc.io/fault-clusters": ""}), "cluster-1")  # an empty list: nowhere


def test_error_rate_and_latency_follow_the_fault_scope() -> None:
    pod = annotated(
        {
            "sim.tmc.io/error-rate": "0.5",
            "sim.tmc.io/latency": "p50=40ms,p99=200ms",
            "sim.tmc.io/fault-clusters": "cluster-2",
        }
    )
    assert behaviour(pod, "cluster-1") == (Behaviour(), None)
    how, problem = behaviour(pod, "cluster-2")
    assert problem is None and how.error_rate == 0.5
    assert how.latency.quantile(0.5) == pytest.approx(40, rel=1e-3)
    assert how.latency.quantile(0.99) == pytest.approx(200, rel=1e-3)


def test_an_annotation_not_understood_keeps_its_default_and_says_why() -> None:
    how, problem = behaviour(annotated({"sim.tmc.io/error-rate": "1.5", "sim.tmc.io/latency": "p50=5ms"}), "c")
    assert how.error_rate == 0.0 and how.latency.quantile(0.5) == pytest.approx(5, rel=1e-3)
    assert problem == "sim.tmc.io/error-rate must be a number between 0 and 1, got '1.5'"
    how, problem = behaviour(annotated({"sim.tmc.io/latency": "fast"}), "c")
    assert how.latency == DEFAULT_LATENCY and problem is not None and "p50=40ms,p99=200ms" in problem


def test_latency_annotations() -> None:
    assert parse_latency("p99=1s").quantile(0.99) == pytest.approx(1000, rel=1e-3)
    assert parse_latency("p99=1s").quantile(0.5) == pytest.approx(200, rel=1e-3)  # the default spread
    assert parse_latency(" p50 = 2.5ms , p99=10ms").quantile(0.5) == pytest.approx(2.5, rel=1e-3)
    with pytest.raises(BadAnnotation):
        parse_latency("p50=100ms,p99=50ms")
    with pytest.raises(BadAnnotation):
        parse_latency("p90=10ms")
    assert DEFAULT_LATENCY.quantile(0.5) == pytest.approx(20, rel=1e-3)
    assert DEFAULT_LATENCY.quantile(0.99) == pytest.approx(100, rel=1e-3)


def test_request_rate_annotation() -> None:
    def svc(value: str) -> dict[str, Any]:
        return {"metadata": {"annotations": {"sim.tmc.io/request-rate": value}}}

    assert request_rate(svc("50")) == 50.0 and request_rate(svc("0.5")) == 0.5
    assert request_rate(svc("0")) is None and request_rate(svc("lots")) is None and request_rate(svc("nan")) is None
    assert request_rate({"metadata": {}}) is None


# ------------------------------------------------------------------ draws


@pytest.mark.parametrize("lam", [0.3, 5.0, 29.0, 50.0, 2000.0])
def test_poisson_draws_have_the_right_mean_and_variance(lam: float) -> None:
    rng = random.Random(7)
    draws = [poisson(rng, lam) for _ in range(4000)]
    mean = sum(draws) / len(draws)
    var = sum((d - mean) ** 2 for d in draws) / len(draws)
    assert mean == pytest.approx(lam, abs=4 * math.sqrt(lam / len(draws)))
    assert var == pytest.approx(lam, rel=0.15)
    assert min(draws) >= 0


@pytest.mark.parametrize(("n", "p"), [(10, 0.2), (50, 0.5), (40, 0.9), (10_000, 0.2), (7, 0.0), (7, 1.0)])
def test_binomial_draws_stay_in_range_with_the_right_mean(n: int, p: float) -> None:
    rng = random.Random(11)
    draws = [binomial(rng, n, p) for _ in range(3000)]
    assert all(0 <= d <= n for d in draws)
    sd = math.sqrt(n * p * (1 - p) / len(draws))
    assert sum(draws) / len(draws) == pytest.approx(n * p, abs=4 * sd + 1e-9)


def test_multinomial_splits_every_request_by_weight() -> None:
    rng = random.Random(3)
    totals = [0, 0, 0]
    for _ in range(500):
        counts = multinomial(rng, 200, [0.7, 0.2, 0.1])
        assert sum(counts) == 200 and min(counts) >= 0
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
    assert [t / 100_000 for t in totals] == pytest.approx([0.7, 0.2, 0.1], abs=0.01)
    assert multinomial(rng, 10, [0.0, 1.0]) == [0, 10]
    assert multinomial(rng, 0, [0.5, 0.5]) == [0, 0]


def test_the_bucket_model_is_the_lognormal_through_the_quantiles() -> None:
    latency = Latency.through(40, 200)
    probs, means = bucket_model(latency)
    assert len(probs) == len(BUCKETS_MS) + 1 and sum(probs) == pytest.approx(1.0)
    cdf_at_50 = sum(probs[: BUCKETS_MS.index(50) + 1])
    assert cdf_at_50 == pytest.approx(0.5 * math.erfc(-math.log(50 / 40) / latency.sigma / math.sqrt(2)), rel=1e-9)
    bounds = (0.0, *BUCKETS_MS, math.inf)
    for (lo, hi), p, m in zip(itertools.pairwise(bounds), probs, means, strict=True):
        if p > 1e-9:
            assert lo <= m <= hi
    # The mean of all requests is the lognormal's mean.
    expected_mean = math.exp(latency.mu + latency.sigma**2 / 2)
    assert sum(p * m for p, m in zip(probs, means, strict=True)) == pytest.approx(expected_mean, rel=1e-6)


def test_answers_count_errors_and_latencies_per_code() -> None:
    rng = random.Random(5)
    out = answer(rng, 20_000, Behaviour(error_rate=0.25, latency=Latency.through(40, 200)))
    assert set(out) == {"200", "500"}
    assert out["200"].count + out["500"].count == 20_000
    assert out["500"].count / 20_000 == pytest.approx(0.25, abs=0.015)
    for outcome in out.values():
        assert sum(outcome.buckets) == outcome.count
    ok = out["200"]
    below_50 = sum(ok.buckets[: BUCKETS_MS.index(50) + 1]) / ok.count
    sigma = math.log(200 / 40) / traffic.Z99
    assert below_50 == pytest.approx(0.5 * math.erfc(-math.log(50 / 40) / sigma / math.sqrt(2)), abs=0.02)
    assert ok.sum_ms / ok.count == pytest.approx(40 * math.exp(sigma**2 / 2), rel=0.05)
    healthy = answer(rng, 100, Behaviour())
    assert set(healthy) == {"200"} and healthy["200"].count == 100
    assert answer(rng, 0, Behaviour()) == {}
