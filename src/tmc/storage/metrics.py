"""Storage metrics on the default prometheus_client registry (the API server exposes that registry on /metrics).

Labels never carry keys or object names, so cardinality stays fixed.
"""

from __future__ import annotations

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB, SIM
from tmc.observability.hitrate import HitRate

STORES = (HUB, SIM)  # the processes with a store of their own

STORAGE_WRITES = catalogue.counter(
    "tmc_storage_writes_total",
    "Durably committed writes, by operation (create, update, delete).",
    ("operation",),
    owners=STORES,
    promql="sum by (operation) (rate(tmc_storage_writes_total[5m]))",
)
STORAGE_WRITE_FAILURES = catalogue.counter(
    "tmc_storage_write_failures_total",
    "Writes that failed to commit (disk or database errors); every write of a failed batch counts.",
    owners=STORES,
    promql="increase(tmc_storage_write_failures_total[5m]) > 0",
)
STORAGE_COMMIT_SECONDS = catalogue.histogram(
    "tmc_storage_commit_duration_seconds",
    "Time to insert and durably commit one batch (one fsync).",
    owners=STORES,
    promql="histogram_quantile(0.99, sum by (le) (rate(tmc_storage_commit_duration_seconds_bucket[5m])))",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORAGE_BATCH_SIZE = catalogue.histogram(
    "tmc_storage_batch_size",
    "Writes committed together in one transaction (group commit).",
    owners=STORES,
    promql="rate(tmc_storage_batch_size_sum[5m]) / rate(tmc_storage_batch_size_count[5m])",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
STORAGE_OBJECTS = catalogue.gauge(
    "tmc_storage_objects", "Live keys in the store.", owners=STORES, promql="tmc_storage_objects"
)
STORAGE_WATCHERS = catalogue.gauge(
    "tmc_storage_watchers", "Open storage watches.", owners=STORES, promql="tmc_storage_watchers"
)
STORAGE_WATCH_OVERFLOWS = catalogue.counter(
    "tmc_storage_watch_overflows_total",
    "Watches closed because their consumer fell too far behind (the client re-lists or resumes).",
    owners=STORES,
    promql="increase(tmc_storage_watch_overflows_total[10m]) > 0",
)
STORAGE_COMPACTIONS = catalogue.counter(
    "tmc_storage_compactions_total",
    "Completed compactions.",
    owners=STORES,
    promql="increase(tmc_storage_compactions_total[1h])",
)
STORAGE_CURRENT_REVISION = catalogue.gauge(
    "tmc_storage_current_revision",
    "Newest committed revision.",
    owners=STORES,
    promql="rate(tmc_storage_current_revision[5m])",
)
STORAGE_COMPACTED_REVISION = catalogue.gauge(
    "tmc_storage_compacted_revision",
    "Oldest revision still served.",
    owners=STORES,
    promql="tmc_storage_current_revision - tmc_storage_compacted_revision",
)

# Watches and snapshot lists at an older revision: served from the event history (hit) or 410 Gone (miss).
WATCH_CACHE = HitRate("watch-cache")
