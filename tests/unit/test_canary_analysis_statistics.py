"""The Mann-Whitney comparison against values computed independently, classification and Kayenta-style scoring."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys

import pytest

from tmc.controllers.canary.analysis import ComparedMetric
from tmc.controllers.canary.analysis.statistics import (
    HIGH,
    LOW,
    NODATA,
    PASS,
    Judgement,
    classify,
    classify_clusters,
    hodges_lehmann,
    mann_whitney,
    score,
)

# R's ?wilcox.test example (Hollander & Wolfe 1973, p. 69: permeability constants of the human chorioamnion).
# R 4.x prints for wilcox.test(x, y, alternative = "greater"): W = 35, p-value = 0.1272, and for
# wilcox.test(x, y, conf.int = TRUE): difference in location 0.305.
X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
Y = [1.15, 0.88, 0.90, 0.74, 1.21]


def test_exact_test_and_shift_match_r() -> None:
    u, p = mann_whitney(X, Y, "increase")
    assert u == 35 and p == pytest.approx(0.1272, abs=5e-5)
    assert mann_whitney(X, Y, "either") == (35, pytest.approx(0.2544, abs=5e-5))
    assert hodges_lehmann(X, Y) == pytest.approx(0.305)


def _null_counts(n: int, m: int) -> dict[float, int]:
    """The exact null distribution of U by enumerating every way to pick the canary's ranks."""
    counts: dict[float, int] = {}
    for ranks in itertools.combinations(range(1, n + m + 1), n):
        u = sum(ranks) - n * (n + 1) / 2
        counts[u] = counts.get(u, 0) + 1
    return counts


def test_exact_p_value_matches_enumerating_every_rank_assignment() -> None:
    counts = _null_counts(len(X), len(Y))
    total = sum(counts.values())
    assert total == math.comb(15, 10)
    upper = sum(c for u, c in counts.items() if u >= 35) / total
    lower = sum(c for u, c in counts.items() if u <= 35) / total
    assert mann_whitney(X, Y, "increase")[1] == pytest.approx(upper, rel=1e-12)
    assert mann_whitney(X, Y, "decrease")[1] == pytest.approx(lower, rel=1e-12)


def test_complete_separation_gives_one_over_the_number_of_rank_assignments() -> None:
    # What the e2e comparison of a clearly slower canary sees: every canary sample above every baseline sample.
    canary = [60.0 + i for i in range(8)]
    baseline = [20.0 + i / 3 for i in range(10)]
    u, p = mann_whitney(canary, baseline, "increase")
    assert u == 8 * 10 and p == pytest.approx(1 / math.comb(18, 8), rel=1e-9)  # 2.3e-5


def test_ties_use_the_normal_approximation_with_tie_and_continuity_correction() -> None:
    canary = [3.0, 4.0, 4.0, 5.0, 6.0, 6.0, 7.0, 8.0]
    baseline = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0]
    n, m = len(canary), len(baseline)
    pooled = sorted(canary + baseline)
    rank = {v: (pooled.index(v) + 1 + len(pooled) - pooled[::-1].index(v)) / 2 for v in pooled}  # mid-ranks
    u = sum(rank[v] for v in canary) - n * (n + 1) / 2
    ties = sum(t**3 - t for t in (pooled.count(v) for v in set(pooled)))
    sigma = math.sqrt(n * m / 12 * ((n + m + 1) - ties / ((n + m) * (n + m - 1))))
    z = (u - n * m / 2 - 0.5) / sigma
    expected = 0.5 * math.erfc(z / math.sqrt(2))
    assert mann_whitney(canary, baseline, "increase") == (u, pytest.approx(expected, rel=1e-9))


def metric(**kw: object) -> ComparedMetric:
    return ComparedMetric(**{"name": "latency", "canary_query": "c", "baseline_query": "b", **kw})  # type: ignore[arg-type]


def samples(center: float, n: int = 30, seed: int = 7, spread: float = 5.0) -> list[float]:
    r = random.Random(seed)
    return [r.gauss(center, spread) for _ in range(n)]


def test_a_slower_canary_is_high_and_the_judgement_shows_why() -> None:
    j = classify(metric(direction="increase"), samples(120, seed=1), samples(100, seed=2))
    assert j.classification == HIGH
    assert j.p_value is not None and j.p_value < 1e-6
    assert j.relative_effect == pytest.approx(0.2, abs=0.05)
    assert (j.canary_samples, j.baseline_samples) == (30, 30)
    assert j.message.startswith("canary median 1") and "vs baseline " in j.message and "(+" in j.message


def test_direction_decides_which_change_is_bad() -> None:
    lower, base = samples(80, seed=3), samples(100, seed=4)
    assert classify(metric(direction="increase"), lower, base).classification == PASS
    assert classify(metric(direction="decrease"), lower, base).classification == LOW
    assert classify(metric(direction="either"), lower, base).classification == LOW


def test_significant_but_small_differences_pass() -> None:
    canary, base = samples(103, n=400, seed=5, spread=2), samples(100, n=400, seed=6, spread=2)
    j = classify(metric(direction="increase", effect_size=0.1), canary, base)
    assert j.p_value is not None and j.p_value < 1e-10 and j.classification == PASS
    assert classify(metric(direction="increase", effect_size=0.02), canary, base).classification == HIGH


def test_same_distribution_passes_and_too_few_samples_is_nodata() -> None:
    assert classify(metric(), samples(100, seed=8), samples(100, seed=9)).classification == PASS
    j = classify(metric(min_samples=5), [1.0, 2.0, 3.0, 4.0], samples(100))
    assert j.classification == NODATA and j.p_value is None
    assert j.message == "4 canary and 30 baseline samples; at least 5 each are needed"
    constant = classify(metric(), [0.0] * 10, [0.0] * 10)
    assert constant.classification == PASS and constant.p_value == 1.0
    # Zero errors in the baseline, some in the canary: infinitely worse relative to a zero median.
    spiky = classify(metric(direction="increase"), [0.0] * 5 + [3.0] * 10, [0.0] * 15)
    assert spiky.classification == HIGH and spiky.relative_effect == math.inf


def test_per_cluster_comparison_the_worst_cluster_decides() -> None:
    base = {"eu": samples(100, seed=10), "us": samples(100, seed=11), "ap": samples(100, seed=12)}
    canary = {"eu": samples(100, seed=13), "us": samples(125, seed=14), "ap": [1.0]}
    j = classify_clusters(metric(direction="increase"), canary, base)
    assert (j.classification, j.cluster, j.name) == (HIGH, "us", "latency")
    assert j.message.startswith("in cluster us: canary median 12")
    assert [(c.cluster, c.classification) for c in j.clusters] == [("eu", PASS), ("us", HIGH), ("ap", NODATA)]
    healthy = classify_clusters(metric(), {"eu": canary["eu"], "ap": [1.0]}, base)
    assert (healthy.classification, healthy.cluster) == (PASS, "eu")
    assert classify_clusters(metric(), {"ap": [1.0]}, {"ap": [2.0]}).classification == NODATA


def judged(name: str, classification: str) -> Judgement:
    return Judgement(name, classification, 10, 10)


def test_score_is_the_weighted_share_of_passing_metrics() -> None:
    metrics = [metric(name="a", weight=3), metric(name="b"), metric(name="c")]
    assert score(metrics, [judged("a", PASS), judged("b", HIGH), judged("c", PASS)]).value == 80.0
    result = score(metrics, [judged("a", LOW), judged("b", PASS), judged("c", NODATA)])
    assert (result.value, result.message) == (25.0, "score 25 (a Low)")
    assert score(metrics, [judged("a", PASS), judged("b", PASS), judged("c", PASS)]).value == 100.0


def test_critical_metrics_and_missing_data() -> None:
    metrics = [metric(name="a", critical=True), metric(name="b"), metric(name="c"), metric(name="d")]
    verdict = score(metrics, [judged("a", HIGH), judged("b", PASS), judged("c", PASS), judged("d", PASS)])
    assert (verdict.value, verdict.message) == (0.0, "critical metric a is High")
    too_little = score(metrics, [judged("a", NODATA), judged("b", NODATA), judged("c", PASS), judged("d", PASS)])
    assert (too_little.value, too_little.message) == (None, "too little data to compare (a, b)")
    assert score(metrics[1:], [judged("b", NODATA), judged("c", PASS), judged("d", PASS)]).value == 100.0


def test_processes_that_never_compare_do_not_load_scipy() -> None:
    code = (
        "import sys, tmc.controllers.canary.analysis as a\n"
        "spec = a.parse_analysis({'metrics': [{'name': 'm', 'successCondition': 'result < 1',"
        " 'provider': {'prometheus': {'query': 'up'}}}]})\n"
        "print(sorted(m for m in ('scipy', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
