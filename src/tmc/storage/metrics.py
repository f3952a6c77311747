"""Storage metrics on the default prometheus_client registry (the API server exposes that registry on /metrics).

Labels never carry keys or object names, so cardinality stays fixed.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STORAGE_WRITES = Counter(
    "tmc_storage_writes_total",
    "Durably committed writes, by operation.",
    ["operation"],
)
STORAGE_WRITE_FAILURES = Counter(
    "tmc_storage_write_failures_total",
    "Writes that failed to commit (disk or database errors); every write of a failed batch counts.",
)
STORAGE_COMMIT_SECONDS = Histogram(
    "tmc_storage_commit_duration_seconds",
    "Time to insert and durably commit one batch (one fsync).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORAGE_BATCH_SIZE = Histogram(
    "tmc_storage_batch_size",
    "Writes committed together in one transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
STORAGE_OBJECTS = Gauge("tmc_storage_objects", "Live keys in the store.")
STORAGE_WATCHERS = Gauge("tmc_storage_watchers", "Open storage watches.")
STORAGE_WATCH_OVERFLOWS = Counter(
    "tmc_storage_watch_overflows_total",
    "Watches closed because their consumer fell too far behind.",
)
STORAGE_COMPACTIONS = Counter("tmc_storage_compactions_total", "Completed compactions.")
STORAGE_CURRENT_REVISION = Gauge("tmc_storage_current_revision", "Newest committed revision.")
STORAGE_COMPACTED_REVISION = Gauge("tmc_storage_compacted_revision", "Oldest revision still served.")
