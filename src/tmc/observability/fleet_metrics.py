"""Metrics both the hub and each syncer export under one name: the hub for every SyncTarget (computed from its
status at scrape time), a syncer for itself. One catalogue entry each, declared here so both owners share it."""

from __future__ import annotations

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB, SYNCER

HEARTBEAT_AGE = catalogue.describe(
    "tmc_syncer_heartbeat_age_seconds",
    "gauge",
    "Seconds since a SyncTarget's last heartbeat (-1 before the first): on the hub, from each SyncTarget's "
    "lastSyncerHeartbeatTime; on a syncer, since the last heartbeat the hub accepted.",
    ("cluster",),
    owners=(HUB, SYNCER),
    promql="max by (cluster) (tmc_syncer_heartbeat_age_seconds) > 60",
)
CONNECTIONS = catalogue.describe(
    "tmc_syncer_connections",
    "gauge",
    "A syncer's connection by status (connected, disconnected): on the hub, 1 under `connected` while the "
    "SyncTarget's heartbeat is within the threshold (HeartbeatHealthy), else 1 under `disconnected`; on a syncer, "
    "its watch connections in each state.",
    ("cluster", "status"),
    owners=(HUB, SYNCER),
    promql='sum(tmc_syncer_connections{status="disconnected"}) > 0',
)
