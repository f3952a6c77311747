"""Kayenta-style judgement of canary against baseline: a Mann-Whitney U test per metric, a classification, and a
score over the metrics.

A metric is `High` (or `Low`) only when both hold: the test rejects "same distribution" at the metric's confidence,
one-sided in the bad direction (`increase`, `decrease`) or two-sided (`either`), and the Hodges-Lehmann shift
(the median of all canary-minus-baseline differences) is at least `effectSize` of the baseline median. The second
condition keeps large sample counts from flagging differences too small to matter. Too few samples is `NoData`.

scipy is imported inside the test, so processes that never compare do not pay for loading it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import median

from tmc.controllers.canary.analysis.spec import ComparedMetric

PASS, HIGH, LOW, NODATA = "Pass", "High", "Low", "NoData"
_ALTERNATIVE = {"increase": "greater", "decrease": "less", "either": "two-sided"}


@dataclass(frozen=True)
class Judgement:
    """One compared metric's outcome, with what the test saw."""

    name: str
    classification: str
    canary_samples: int
    baseline_samples: int
    statistic: float | None = None  # U of the canary sample
    p_value: float | None = None
    shift: float | None = None  # Hodges-Lehmann estimate, canary minus baseline
    relative_effect: float | None = None  # shift / |baseline median|
    canary_median: float | None = None
    baseline_median: float | None = None
    message: str = ""
    cluster: str = ""  # the cluster this judgement (or, for a fleet judgement, its deciding part) is about
    clusters: tuple[Judgement, ...] = ()  # per cluster, when the samples carry a cluster label


def hodges_lehmann(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of all pairwise differences canary[i] - baseline[j] (R's wilcox.test `difference in location`)."""
    import numpy as np

    return float(np.median(np.subtract.outer(np.asarray(canary, float), np.asarray(baseline, float))))


def mann_whitney(canary: Sequence[float], baseline: Sequence[float], direction: str) -> tuple[float, float]:
    """(U of the canary sample, p-value), chosen as R's wilcox.test chooses: the exact distribution when both
    samples have fewer than 50 values and there are no ties, else the normal approximation with tie and continuity
    corrections."""
    from scipy.stats import mannwhitneyu

    exact = len(canary) < 50 and len(baseline) < 50 and len(set(canary) | set(baseline)) == len(canary) + len(baseline)
    result = mannwhitneyu(
        canary, baseline, alternative=_ALTERNATIVE[direction], method="exact" if exact else "asymptotic"
    )
    return float(result.statistic), float(result.pvalue)


def relative(shift: float, base: float) -> float:
    if shift == 0:
        return 0.0
    if base == 0:
        return math.copysign(math.inf, shift)
    return shift / abs(base)


def classify(metric: ComparedMetric, canary: Sequence[float], baseline: Sequence[float]) -> Judgement:
    """Samples are used as given: the caller drops NaNs."""
    n_c, n_b = len(canary), len(baseline)
    if n_c < metric.min_samples or n_b < metric.min_samples:
        return Judgement(
            metric.name,
            NODATA,
            n_c,
            n_b,
            message=f"{n_c} canary and {n_b} baseline samples; at least {metric.min_samples} each are needed",
        )
    c_med, b_med = median(canary), median(baseline)
    if len(set(canary)) == 1 and set(canary) == set(baseline):
        # Identical constants: no evidence of a difference (the test itself is undefined without variance).
        return Judgement(metric.name, PASS, n_c, n_b, None, 1.0, 0.0, 0.0, c_med, b_med, "identical samples")
    statistic, p = mann_whitney(canary, baseline, metric.direction)
    shift = hodges_lehmann(canary, baseline)
    effect = relative(shift, b_med)
    alpha = 1 - metric.confidence
    verdict = PASS
    if p < alpha and abs(effect) >= metric.effect_size and shift != 0:
        bad = HIGH if shift > 0 else LOW
        wanted = {"increase": HIGH, "decrease": LOW, "either": bad}[metric.direction]
        verdict = bad if bad == wanted else PASS
    message = (
        f"canary median {c_med:g} vs baseline {b_med:g} ({_percent(effect)}), "
        f"p={p:.3g} {'<' if p < alpha else '>='} {alpha:.3g}"
    )
    return Judgement(metric.name, verdict, n_c, n_b, statistic, p, shift, effect, c_med, b_med, message)


def classify_clusters(
    metric: ComparedMetric, canary: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]]
) -> Judgement:
    """Samples grouped by cluster, judged per cluster; the worst cluster decides. A High or Low anywhere is the
    metric's classification (the most significant one if several); else Pass if any cluster passed; else NoData.
    A cluster without data is not evidence either way, and shows as NoData in `clusters`."""
    names = list(dict.fromkeys([*canary, *baseline]))
    per = tuple(replace(classify(metric, canary.get(n, []), baseline.get(n, [])), cluster=n) for n in names)
    bad = [j for j in per if j.classification in (HIGH, LOW)]
    passed = [j for j in per if j.classification == PASS]
    decider = min(bad, key=lambda j: j.p_value or 0.0) if bad else (passed or list(per))[0]
    where = f"in cluster {decider.cluster}: " if decider.cluster else ""
    return replace(decider, message=where + decider.message, clusters=per)


def _percent(effect: float) -> str:
    if math.isinf(effect):
        return "baseline median 0"
    return f"{effect * 100:+.1f}%"


@dataclass(frozen=True)
class Score:
    """Share of classified weight that passed, 0-100; None when there was too little data to score."""

    value: float | None
    message: str


def score(metrics: Sequence[ComparedMetric], judgements: Sequence[Judgement]) -> Score:
    """Kayenta's scoring: Pass / (Pass + High + Low) by weight, NoData left out. A critical metric that is not
    Pass scores 0. With half the weight (or more) NoData the score is None: the judgement is an error, not a
    verdict, because missing data says nothing about the canary."""
    weights = {m.name: m.weight for m in metrics}
    critical = {m.name for m in metrics if m.critical}
    total = sum(weights[j.name] for j in judgements)
    nodata = sum(weights[j.name] for j in judgements if j.classification == NODATA)
    judged = [j for j in judgements if j.classification != NODATA]
    if not judged or (total > 0 and nodata / total >= 0.5):
        missing = ", ".join(j.name for j in judgements if j.classification == NODATA)
        return Score(None, f"too little data to compare ({missing})")
    for j in judged:
        if j.name in critical and j.classification != PASS:
            return Score(0.0, f"critical metric {j.name} is {j.classification}")
    classified = sum(weights[j.name] for j in judged)
    passed = sum(weights[j.name] for j in judged if j.classification == PASS)
    value = round(100.0 * passed / classified, 2) if classified > 0 else 100.0
    bad = [f"{j.name} {j.classification}" for j in judged if j.classification != PASS]
    return Score(value, f"score {value:g}" + (f" ({', '.join(bad)})" if bad else ""))
