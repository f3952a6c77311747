"""`tmc_cache_hit_rate_percent{cache_type}`: how often a process's cache answered a read by itself. Reads are far
more frequent than scrapes, so they only bump two tallies, and the percentage is computed when scraped."""

from __future__ import annotations

from tmc.observability import catalogue

CACHE_HIT_RATE = catalogue.gauge(
    "tmc_cache_hit_rate_percent",
    "Share of reads a cache answered by itself since the process started, 100 * hits / (hits + misses): "
    "watch-cache (hub and simulated clusters: watches, which the in-memory event history serves from any revision "
    "it still holds, and lists at an older revision, against those answered 410 Gone because it had moved past "
    "them) and informer (syncer: the sync engine's object reads answered from its informer caches, against those "
    "that took a GET). Absent until the first read.",
    ("cache_type",),
    owners=catalogue.OWNERS,
    promql="min by (cache_type) (tmc_cache_hit_rate_percent) < 90",
)

# [hits, misses] per cache type, shared by every HitRate of that type, as the series is.
_tallies: dict[str, list[int]] = {}


class HitRate:
    def __init__(self, cache_type: str) -> None:
        self.cache_type = cache_type
        self._tally = _tallies.setdefault(cache_type, [0, 0])

    def hit(self) -> None:
        self._count(0)

    def miss(self) -> None:
        self._count(1)

    def _count(self, which: int) -> None:
        tally = self._tally
        if tally[0] + tally[1] == 0:
            # The first read creates the series, so it is absent until there is a rate to show.
            CACHE_HIT_RATE.labels(self.cache_type).set_function(lambda: 100.0 * tally[0] / (tally[0] + tally[1]))
        tally[which] += 1
