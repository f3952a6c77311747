"""Simulated request traffic in aggregate: how many requests a tick brings, how they split, which fail and how long
they take, drawn as counts (Poisson arrivals, binomial and multinomial splits, latency as histogram bucket counts),
never one object per request. Pure functions over a `random.Random`, so tests can seed them.

Pod behaviour comes from annotations on the pod (from its template), each subject to `sim.tmc.io/fault-clusters`:
- `sim.tmc.io/error-rate: "0.2"`: the share of requests answered 500 (default 0);
- `sim.tmc.io/latency: "p50=40ms,p99=200ms"`: a lognormal latency through those two quantiles (default p50 20ms,
  p99 100ms; units ms or s; one of the two alone keeps the default's spread).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tmc.sim.podstatus import faults_apply

REQUEST_RATE = "sim.tmc.io/request-rate"
ERROR_RATE = "sim.tmc.io/error-rate"
LATENCY = "sim.tmc.io/latency"
# Istio's default buckets for istio_request_duration_milliseconds (the proxy's histogram_bucket_settings).
BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
)  # fmt: skip
DEFAULT_P50_MS = 20.0
DEFAULT_P99_MS = 100.0
Z99 = 2.3263478740408408  # the standard normal's 0.99 quantile
_EXACT_BELOW = 30.0  # mean count under which draws are exact (inversion); above, a normal approximation
_QUANTILE = re.compile(r"^\s*p(50|99)\s*=\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


class BadAnnotation(ValueError):
    pass


def request_rate(service: Mapping[str, Any]) -> float | None:
    """Requests per second a Service's annotation asks for; None when absent, not a number, or not positive."""
    value = ((service.get("metadata") or {}).get("annotations") or {}).get(REQUEST_RATE)
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    return rate if rate > 0 and math.isfinite(rate) else None


def parse_error_rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise BadAnnotation(f"{ERROR_RATE} must be a number between 0 and 1, got {value!r}") from None
    if not 0 <= rate <= 1:
        raise BadAnnotation(f"{ERROR_RATE} must be a number between 0 and 1, got {value!r}")
    return rate


@dataclass(frozen=True)
class Latency:
    """A lognormal latency in milliseconds: ln(latency) ~ N(mu, sigma)."""

    mu: float
    sigma: float

    @classmethod
    def through(cls, p50_ms: float, p99_ms: float) -> Latency:
        if p50_ms <= 0 or p99_ms < p50_ms:
            raise BadAnnotation(f"latency needs 0 < p50 <= p99, got p50={p50_ms}ms p99={p99_ms}ms")
        return cls(math.log(p50_ms), (math.log(p99_ms) - math.log(p50_ms)) / Z99)

    def quantile(self, q: float) -> float:
        return math.exp(self.mu + self.sigma * _normal_quantile(q))


DEFAULT_LATENCY = Latency.through(DEFAULT_P50_MS, DEFAULT_P99_MS)


def parse_latency(value: str) -> Latency:
    """`p50=40ms,p99=200ms` (either alone keeps the default p99/p50 ratio)."""
    found: dict[str, float] = {}
    for part in value.split(","):
        m = _QUANTILE.match(part)
        if not m:
            raise BadAnnotation(f"{LATENCY} must look like p50=40ms,p99=200ms, got {value!r}")
        found[m.group(1)] = float(m.group(2)) * (1000.0 if m.group(3) == "s" else 1.0)
    ratio = DEFAULT_P99_MS / DEFAULT_P50_MS
    p50 = found.get("50", found.get("99", DEFAULT_P99_MS) / ratio)
    p99 = found.get("99", p50 * ratio)
    return Latency.through(p50, p99)


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.0
    latency: Latency = DEFAULT_LATENCY


def behaviour(pod: Mapping[str, Any], cluster: str) -> tuple[Behaviour, str | None]:
    """How the pod answers in `cluster`, and a message when an annotation was not understood (its default is used)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if not annotations or not faults_apply(pod, cluster):
        return Behaviour(), None
    error_rate, latency, problem = 0.0, DEFAULT_LATENCY, None
    try:
        if ERROR_RATE in annotations:
            error_rate = parse_error_rate(str(annotations[ERROR_RATE]))
    except BadAnnotation as e:
        problem = str(e)
    try:
        if LATENCY in annotations:
            latency = _cached_latency(str(annotations[LATENCY]))
    except BadAnnotation as e:
        problem = str(e)
    return Behaviour(error_rate, latency), problem


@functools.lru_cache(maxsize=256)
def _cached_latency(value: str) -> Latency:
    return parse_latency(value)


# ------------------------------------------------------------------ distributions


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_quantile(q: float) -> float:
    """Inverse of the standard normal CDF (bisection: only used for docs and tests, never per tick)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _phi(mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@functools.lru_cache(maxsize=256)
def bucket_model(latency: Latency) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For each bucket of BUCKETS_MS plus +Inf: the probability a latency falls in it (above the previous bound, at
    most its own) and the mean latency of those that do (for the histogram's sum)."""
    mu, sigma = latency.mu, latency.sigma
    bounds = (0.0, *BUCKETS_MS, math.inf)
    mean = math.exp(mu + sigma * sigma / 2)

    def cdf(x: float, shift: float = 0.0) -> float:
        if x <= 0:
            return 0.0
        if math.isinf(x):
            return 1.0
        return _phi((math.log(x) - mu - shift) / sigma)

    probs, means = [], []
    for lo, hi in itertools.pairwise(bounds):
        p = cdf(hi) - cdf(lo)
        # E[X; lo < X <= hi] of a lognormal is mean * (Phi((ln hi - mu - s^2)/s) - Phi((ln lo - mu - s^2)/s)).
        partial = mean * (cdf(hi, sigma * sigma) - cdf(lo, sigma * sigma))
        probs.append(max(p, 0.0))
        means.append(partial / p if p > 1e-300 else (hi if math.isfinite(hi) else lo))
    return tuple(probs), tuple(means)


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < _EXACT_BELOW:
        # Inversion: walk the CDF; expected steps ~ lam.
        u, k, p = rng.random(), 0, math.exp(-lam)
        cumulative = p
        while u > cumulative and k < 10 * lam + 50:
            k += 1
            p *= lam / k
            cumulative += p
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    mean = n * p
    if mean < _EXACT_BELOW:
        # Inversion over the binomial pmf, stepping with its ratio recurrence; expected steps ~ n*p.
        q = 1.0 - p
        ratio = p / q
        prob = math.exp(n * math.log1p(-p))
        u, k, cumulative = rng.random(), 0, prob
        while u > cumulative and k < n:
            prob *= ratio * (n - k) / (k + 1)
            k += 1
            cumulative += prob
        return k
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))))


def multinomial(rng: random.Random, n: int, probs: Sequence[float]) -> list[int]:
    """`n` split over categories with the given probabilities (summing to 1), as sequential binomials."""
    out = [0] * len(probs)
    left, mass = n, 1.0
    for i, p in enumerate(probs):
        if left <= 0:
            break
        if i == len(probs) - 1 or mass <= p:
            out[i] = left
            break
        draw = binomial(rng, left, min(1.0, p / mass)) if mass > 0 else 0
        out[i] = draw
        left -= draw
        mass -= p
    return out


@dataclass
class Outcome:
    """Requests with one response code: their count, per-bucket counts (BUCKETS_MS plus +Inf) and latency sum."""

    count: int
    buckets: list[int]
    sum_ms: float


def answer(rng: random.Random, n: int, how: Behaviour) -> dict[str, Outcome]:
    """`n` requests to one pod behaving `how`: outcomes by response code ("200", "500")."""
    out: dict[str, Outcome] = {}
    errors = binomial(rng, n, how.error_rate)
    probs, means = bucket_model(how.latency)
    for code, count in (("200", n - errors), ("500", errors)):
        if count <= 0:
            continue
        buckets = multinomial(rng, count, probs)
        out[code] = Outcome(count, buckets, sum(c * m for c, m in zip(buckets, means, strict=True)))
    return out


def unanswered(n: int) -> Outcome:
    """`n` requests that found no Ready pod: 503 at once (Envoy's no-healthy-upstream answer takes no time)."""
    buckets = [0] * (len(BUCKETS_MS) + 1)
    buckets[0] = n
    return Outcome(n, buckets, 0.0)


def bucket_index(ms: float) -> int:
    """The bucket a latency of `ms` counts in (for tests)."""
    return bisect.bisect_left(BUCKETS_MS, ms)
