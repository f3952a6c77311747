"""The syncer's Prometheus metrics (docs/syncer.md lists them: sync, heartbeat, list, watch, request, cache reads).

Cardinality: `cluster` is the SyncTarget name (one per process), `resource` the synced type, `direction` down|up,
`result` success|error (hit|miss for cache reads), `endpoint` hub|downstream, `method` an HTTP method or
LIST/WATCH, `code` an HTTP status or `unreachable`. The `namespace` label of the duration histogram is the upstream
namespace, but only the first `NAMESPACE_LABEL_LIMIT` distinct namespaces get their own series; the rest share
"other", so a tenant creating namespaces cannot grow the series without bound. Object names never appear in labels.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE_LABEL_LIMIT = 10
OTHER = "other"

SYNC_DURATION = Histogram(
    "tmc_syncer_sync_duration_seconds",
    "Time to sync one object (down: upstream spec applied to the member cluster; up: status written to the hub).",
    ("direction", "resource", "cluster", "namespace", "result"),
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
SYNCED_RESOURCES = Counter(
    "tmc_syncer_synced_resources",
    "Objects written successfully (down: applied or deleted in the member cluster; up: status reported).",
    ("cluster", "resource", "direction"),
)
SYNC_ERRORS = Counter(
    "tmc_syncer_sync_errors",
    "Failed sync attempts by error type (not_found, conflict, timeout, forbidden, server_timeout, rate_limited, "
    "unknown).",
    ("cluster", "resource", "error_type"),
)
CONNECTIONS = Gauge(
    "tmc_syncer_connections",
    "The syncer's watch connections by state: connected or disconnected (per endpoint: hub or downstream).",
    ("cluster", "status"),
)
HEARTBEAT_AGE = Gauge(
    "tmc_syncer_heartbeat_age_seconds",
    "Seconds since the last heartbeat the hub accepted (-1 before the first).",
    ("cluster",),
)
LISTS = Counter(
    "tmc_syncer_lists",
    "Full lists by an informer: initial (at start, retried until it succeeds) or expired (the watch answered 410). "
    "Anything else resumes the watch from its last resourceVersion instead.",
    ("cluster", "endpoint", "resource", "reason"),
)
WATCH_RESTARTS = Counter(
    "tmc_syncer_watch_restarts",
    "Watches re-opened, by why the previous one ended: closed (the server ended it), unreachable (no connection, "
    "or silent while the server did not answer), error (an error status), expired (410; a list follows).",
    ("cluster", "endpoint", "resource", "reason"),
)
REQUESTS = Counter(
    "tmc_syncer_requests",
    "Requests sent, by endpoint, method (LIST and WATCH for collection reads) and answer code; unreachable when "
    "no answer came.",
    ("cluster", "endpoint", "method", "code"),
)
OBJECTS = Gauge(
    "tmc_syncer_objects",
    "Objects the syncer is responsible for, by state: synced, pending or failed (the syncerStatus it reports).",
    ("cluster", "state"),
)


CACHE_READS = Counter(
    "tmc_syncer_cache_reads",
    "Object reads by the sync engine's reconciles: hit when an informer cache's answer was used as is (the object, "
    "or its absence when that can be trusted), miss when it took a GET to the hub or the member cluster.",
    ("cluster", "result"),
)
CACHE_HIT_RATE = Gauge(
    "tmc_cache_hit_rate_percent",
    "Share of the sync engine's object reads answered from its informer caches since the syncer started: 100 * hits "
    "/ (hits + misses) of tmc_syncer_cache_reads_total. Absent before the first read; for a recent window use "
    "rate() of the counters.",
    ("cluster",),
)
# [hits, misses] per cluster, shared by every CacheReads of that cluster, as the Prometheus series are.
_cache_tallies: dict[str, list[int]] = {}


class CacheReads:
    """Counts one cluster's cache hits and misses; its tmc_cache_hit_rate_percent is computed from them when
    scraped (reads are far more frequent than scrapes)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._hit = CACHE_READS.labels(cluster, "hit")
        self._miss = CACHE_READS.labels(cluster, "miss")
        self._tally = _cache_tallies.setdefault(cluster, [0, 0])

    def hit(self) -> None:
        self._hit.inc()
        self._count(0)

    def miss(self) -> None:
        self._miss.inc()
        self._count(1)

    def _count(self, which: int) -> None:
        tally = self._tally
        if tally[0] + tally[1] == 0:
            # The first read creates the gauge, so it is absent until there is a rate to show.
            CACHE_HIT_RATE.labels(self.cluster).set_function(lambda: 100.0 * tally[0] / (tally[0] + tally[1]))
        tally[which] += 1


class RequestCounter:
    """tmc_syncer_requests_total of one client (a cluster and an endpoint): the client layer's request observer."""

    def __init__(self, cluster: str, endpoint: str) -> None:
        self.cluster = cluster
        self.endpoint = endpoint
        self._children: dict[tuple[str, int | None], Any] = {}

    def __call__(self, method: str, code: int | None) -> None:
        child = self._children.get((method, code))
        if child is None:
            label = "unreachable" if code is None else str(code)
            child = self._children[(method, code)] = REQUESTS.labels(self.cluster, self.endpoint, method, label)
        child.inc()


class NamespaceLabels:
    """Maps namespaces to a bounded set of label values."""

    def __init__(self, limit: int = NAMESPACE_LABEL_LIMIT) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, namespace: str) -> str:
        if namespace in self._seen:
            return namespace
        if len(self._seen) < self.limit:
            self._seen.add(namespace)
            return namespace
        return OTHER
