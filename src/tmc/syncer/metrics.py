"""The syncer's Prometheus metrics (docs/syncer.md lists them: sync, heartbeat, list, watch, request, cache reads).

Cardinality: `cluster` is the SyncTarget name (one per process), `resource` the synced type, `direction` down|up,
`result` success|error (hit|miss for cache reads), `endpoint` hub|downstream, `method` an HTTP method or
LIST/WATCH, `code` an HTTP status or `unreachable`. The `namespace` label of the duration histogram is the upstream
namespace, but only the first `NAMESPACE_LABEL_LIMIT` distinct namespaces get their own series; the rest share
"other", so a tenant creating namespaces cannot grow the series without bound. Object names never appear in labels.
"""

from __future__ import annotations

from typing import Any

from tmc.observability import catalogue, fleet_metrics
from tmc.observability.catalogue import SYNCER
from tmc.observability.hitrate import HitRate

NAMESPACE_LABEL_LIMIT = 10
OTHER = "other"
OWNERS = (SYNCER,)

SYNC_DURATION = catalogue.histogram(
    "tmc_syncer_sync_duration_seconds",
    "Time to sync one object (down: upstream spec applied to the member cluster; up: status written to the hub).",
    ("direction", "resource", "cluster", "namespace", "result"),
    owners=OWNERS,
    promql="histogram_quantile(0.99, sum by (le, cluster, direction) "
    "(rate(tmc_syncer_sync_duration_seconds_bucket[5m])))",
    # 1 ms .. 16 s, and 10 s: the propagation SLO's threshold (deploy/prometheus), so its SLI is exact.
    buckets=tuple(sorted((*catalogue.exponential_buckets(0.001, 2, 15), 10.0))),
)
SYNCED_RESOURCES = catalogue.gauge(
    "tmc_syncer_synced_resources_total",
    "Objects currently synced to the member cluster (applied there and in line with the hub), by resource and "
    "upstream namespace (the first few namespaces; the rest are 'other').",
    ("cluster", "resource", "namespace"),
    owners=OWNERS,
    promql="sum by (cluster, resource) (tmc_syncer_synced_resources_total)",
)
SYNC_ERRORS = catalogue.counter(
    "tmc_syncer_sync_errors_total",
    "Failed sync attempts by error type (not_found, conflict, timeout, forbidden, server_timeout, rate_limited, "
    "unknown).",
    ("cluster", "resource", "error_type"),
    owners=OWNERS,
    promql="sum by (cluster, error_type) (rate(tmc_syncer_sync_errors_total[5m]))",
)
# Shared with the hub, which exports the same names for every SyncTarget: one catalogue entry each.
CONNECTIONS = catalogue.gauge_of(fleet_metrics.CONNECTIONS)
HEARTBEAT_AGE = catalogue.gauge_of(fleet_metrics.HEARTBEAT_AGE)
LISTS = catalogue.counter(
    "tmc_syncer_lists_total",
    "Full lists by an informer: initial (at start, retried until it succeeds) or expired (the watch answered 410). "
    "Anything else resumes the watch from its last resourceVersion instead.",
    ("cluster", "endpoint", "resource", "reason"),
    owners=OWNERS,
    promql='sum by (cluster) (increase(tmc_syncer_lists_total{reason="expired"}[1h]))',
)
WATCH_RESTARTS = catalogue.counter(
    "tmc_syncer_watch_restarts_total",
    "Watches re-opened, by why the previous one ended: closed (the server ended it), unreachable (no connection, "
    "or silent while the server did not answer), error (an error status), expired (410; a list follows).",
    ("cluster", "endpoint", "resource", "reason"),
    owners=OWNERS,
    promql='sum by (cluster, endpoint) (rate(tmc_syncer_watch_restarts_total{reason!="closed"}[5m]))',
)
REQUESTS = catalogue.counter(
    "tmc_syncer_requests_total",
    "Requests sent, by endpoint, method (LIST and WATCH for collection reads) and answer code; unreachable when "
    "no answer came.",
    ("cluster", "endpoint", "method", "code"),
    owners=OWNERS,
    promql='sum by (cluster, endpoint) (rate(tmc_syncer_requests_total{code=~"5..|unreachable"}[5m]))',
)
OBJECTS = catalogue.gauge(
    "tmc_syncer_objects",
    "Objects the syncer is responsible for, by state: synced, pending or failed (the syncerStatus it reports).",
    ("cluster", "state"),
    owners=OWNERS,
    promql='tmc_syncer_objects{state="failed"} > 0',
)
CACHE_READS = catalogue.counter(
    "tmc_syncer_cache_reads_total",
    "Object reads by the sync engine's reconciles: hit when an informer cache's answer was used as is (the object, "
    "or its absence when that can be trusted), miss when it took a GET to the hub or the member cluster.",
    ("cluster", "result"),
    owners=OWNERS,
    promql='100 * sum by (cluster) (rate(tmc_syncer_cache_reads_total{result="hit"}[5m])) '
    "/ sum by (cluster) (rate(tmc_syncer_cache_reads_total[5m]))",
)

# The syncer_* family, named as the product's plan names them: per operation rather than per direction.
OPERATIONS = catalogue.counter(
    "syncer_operations_total",
    "Writes by the syncer: create, update, delete (to the member cluster) and status (to the hub), by result "
    "(success or error).",
    ("sync_target", "resource_type", "operation", "result"),
    owners=OWNERS,
    promql='sum by (sync_target) (rate(syncer_operations_total{result="error"}[5m])) '
    "/ sum by (sync_target) (rate(syncer_operations_total[5m]))",
)
OPERATION_SECONDS = catalogue.histogram(
    "syncer_operation_duration_seconds",
    "Time of one syncer write (create, update, delete, status), whatever its result.",
    ("sync_target", "resource_type", "operation"),
    owners=OWNERS,
    promql="histogram_quantile(0.99, sum by (le, operation) (rate(syncer_operation_duration_seconds_bucket[5m])))",
    buckets=catalogue.exponential_buckets(0.001, 2, 15),
)
RESOURCES = catalogue.gauge(
    "syncer_resources_total",
    "Objects the syncer is responsible for, by resource type and status: synced, pending (queued) or failed (its "
    "last attempt failed).",
    ("sync_target", "resource_type", "status"),
    owners=OWNERS,
    promql='sum by (sync_target) (syncer_resources_total{status="failed"})',
)
TARGET_HEALTH = catalogue.gauge(
    "syncer_target_health",
    "1 while the syncer is ready (initial lists done, its watches connected, the member cluster answering its "
    "probe), else 0; cluster is the member cluster's name in the syncer's downstream kubeconfig.",
    ("sync_target", "cluster"),
    owners=OWNERS,
    promql="syncer_target_health == 0",
)
ERRORS = catalogue.counter(
    "syncer_errors_total",
    "Failed sync attempts by error type, as tmc_syncer_sync_errors_total but per SyncTarget only.",
    ("sync_target", "error_type"),
    owners=OWNERS,
    promql="sum by (sync_target, error_type) (rate(syncer_errors_total[5m]))",
)


class CacheReads:
    """Counts one cluster's cache hits and misses: tmc_syncer_cache_reads_total and the process's
    tmc_cache_hit_rate_percent{cache_type="informer"}."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._hit = CACHE_READS.labels(cluster, "hit")
        self._miss = CACHE_READS.labels(cluster, "miss")
        self._rate = HitRate("informer")

    def hit(self) -> None:
        self._hit.inc()
        self._rate.hit()

    def miss(self) -> None:
        self._miss.inc()
        self._rate.miss()


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
