"""SyncTarget health: `HeartbeatHealthy` from the syncer's heartbeat, the `Ready` summary, the key label, metrics.

kcp's rules (https://github.com/kcp-dev/kcp/tree/v0.11.0/pkg/reconciler/workload/heartbeat): no heartbeat yet -> False
"No heartbeat yet seen"; last heartbeat older than the threshold -> False "No heartbeat since <t>"; otherwise True.
Unlike kcp, which only noticed a silent syncer on the next event, every healthy target is requeued for the moment its
heartbeat expires, so Ready turns False within the threshold (plus the heartbeat's one-second resolution) of the last
heartbeat.

A hub that was not running cannot have received heartbeats, so for a target that is healthy, time the hub spent
stalled (SIGSTOP, a suspended VM: see controllers/loopwatch.py) does not count against its heartbeat's age, and a
heartbeat stored before the hub (re)started counts from the start. Otherwise every target would turn NotReady the
instant the hub came back and the scheduler would move workloads off clusters that never failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from tmc.api.workload import (
    CONDITION_API_IMPORTER_READY,
    CONDITION_HEALTHY,
    CONDITION_HEARTBEAT_HEALTHY,
    CONDITION_MEMBER_REACHABLE,
    CONDITION_READY,
    CONDITION_SYNCER_READY,
    DEFAULT_HEARTBEAT_THRESHOLD,
    REASON_ERROR_HEARTBEAT,
    REGION_LABEL,
    SYNC_TARGET_KEY_LABEL,
    SYNC_TARGETS,
)
from tmc.apimachinery.conditions import SEVERITY_WARNING, condition, find, is_true, set_condition, summarize
from tmc.apimachinery.meta import parse_time
from tmc.apimachinery.quantity import parse_resource_list
from tmc.apimachinery.resources import cluster_of_key
from tmc.controllers.placement.model import Target
from tmc.controllers.runtime import Controller, Result, requeue
from tmc.controllers.synctarget import metrics
from tmc.observability import health
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions
from tmc.runtime.loopwatch import LoopWatch
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-heartbeat-monitor"  # the field manager its writes are recorded under

log = logging.getLogger("tmc.controllers.synctarget")

# Ready summarizes these, counting only those present (kcp's SyncTarget Ready).
READY_INPUTS = (CONDITION_SYNCER_READY, CONDITION_API_IMPORTER_READY, CONDITION_HEARTBEAT_HEALTHY)


def heartbeat_condition(
    last_heartbeat: str | None, now: float, threshold: float, excused: float = 0.0
) -> tuple[dict[str, Any], float | None]:
    """The HeartbeatHealthy condition and, when healthy, the epoch time at which it expires. `excused` seconds since
    the heartbeat (the hub's own downtime) do not count against it."""
    last = parse_time(last_heartbeat)
    if last is None:
        return condition(
            CONDITION_HEARTBEAT_HEALTHY, False, REASON_ERROR_HEARTBEAT, "No heartbeat yet seen", SEVERITY_WARNING
        ), None
    expires = last + threshold + excused
    if now >= expires:
        return condition(
            CONDITION_HEARTBEAT_HEALTHY,
            False,
            REASON_ERROR_HEARTBEAT,
            f"No heartbeat since {last_heartbeat}",
            SEVERITY_WARNING,
        ), None
    return condition(CONDITION_HEARTBEAT_HEALTHY, True), expires


def syncer_health(
    name: str, status: dict[str, Any], now: float, threshold: float, excused: float = 0.0
) -> health.ComponentHealth:
    """The health monitor's verdict on one SyncTarget's syncer, from its status."""
    beat = status.get("lastSyncerHeartbeatTime")
    last = parse_time(beat)
    counters = status.get("syncerStatus") or {}
    # The syncer's own report that its member's API does not answer names the cause of a stale heartbeat.
    reachable = find(status.get("conditions"), CONDITION_MEMBER_REACHABLE)
    unreachable = (
        str(reachable.get("message") or "unreachable") if reachable and reachable.get("status") == "False" else ""
    )
    return health.syncer_health(
        name,
        heartbeat_age=None if last is None else max(0.0, now - last - excused),
        threshold=threshold,
        synced=int(counters.get("syncedResources") or 0),
        failed=int(counters.get("failedResources") or 0),
        last_heartbeat=str(beat or ""),
        unreachable=unreachable,
    )


def healthy_condition(verdict: health.ComponentHealth) -> dict[str, Any]:
    """The `Healthy` condition; its reason (Healthy included) is what `kubectl get synctargets` shows as HEALTH."""
    ok = verdict.state == health.HEALTHY
    return condition(CONDITION_HEALTHY, ok, verdict.reason, verdict.message, "" if ok else SEVERITY_WARNING)


class HeartbeatController(Controller):
    name = "synctarget-heartbeat"
    prefix = SYNC_TARGETS.key_prefix(None)

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        service: ObjectService,
        *,
        heartbeat_threshold: float = DEFAULT_HEARTBEAT_THRESHOLD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service
        self.threshold = heartbeat_threshold
        self.clock = clock
        self.loop_watch = LoopWatch(clock=clock)
        # Heartbeats of healthy targets as stored when the hub started: they count from the start, not from when
        # they were sent, because nobody could reach the hub before it started.
        self._stored_at_start: dict[str, str] = {}

    async def start(self) -> None:
        ticker = self.loop_watch.start()
        for entry in self.store.list(self.prefix):
            status = entry.obj.get("status") or {}
            if is_true(status.get("conditions"), CONDITION_HEARTBEAT_HEALTHY):
                self._stored_at_start[entry.key] = str(status.get("lastSyncerHeartbeatTime") or "")
        await super().start()
        self._tasks.append(ticker)

    def keys_for(self, event: Event) -> tuple[str, ...]:
        if event.type == "DELETED":
            metrics.forget(cluster_of_key(event.key), str(event.obj["metadata"].get("name", "")))
            return ()
        return (event.key,)

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        obj = entry.obj
        md = obj["metadata"]
        cluster, name = cluster_of_key(key), str(md["name"])
        if md.get("deletionTimestamp"):
            return None
        target_key = sync_target_key(cluster, name)
        if (md.get("labels") or {}).get(SYNC_TARGET_KEY_LABEL) != target_key:
            patch = {"metadata": {"labels": {SYNC_TARGET_KEY_LABEL: target_key}}}
            await self.service.patch(
                SYNC_TARGETS,
                cluster,
                None,
                name,
                MERGE_PATCH,
                orjson.dumps(patch),
                WriteOptions(field_manager=FIELD_MANAGER),
            )
            return None  # the label write is an event of its own; the status is handled on that pass

        now = self.clock()
        status = obj.get("status") or {}
        excused = self._excused(key, status, now)
        heartbeat, expires = heartbeat_condition(status.get("lastSyncerHeartbeatTime"), now, self.threshold, excused)
        conditions = set_condition(status.get("conditions"), heartbeat)
        verdict = syncer_health(name, status, now, self.threshold, excused)
        conditions = set_condition(conditions, healthy_condition(verdict))
        ready = summarize(CONDITION_READY, conditions, READY_INPUTS)
        if ready is not None:
            conditions = set_condition(conditions, ready)
        if conditions != (status.get("conditions") or []):
            # ObjectService copies what it stores, so a shallow copy of the shared object is enough.
            body = {
                **obj,
                "metadata": {**obj["metadata"], "resourceVersion": str(entry.rev)},
                "status": {**status, "conditions": conditions},
            }
            # A conflict or a vanished target ends this pass here (the runtime requeues a conflict).
            await self.service.update(
                SYNC_TARGETS, cluster, None, name, body, WriteOptions(field_manager=FIELD_MANAGER), "status"
            )
            was_ready = is_true(status.get("conditions"), CONDITION_READY)
            if was_ready != is_true(conditions, CONDITION_READY):
                log.info(
                    "sync target readiness changed",
                    extra={"workspace": cluster, "syncTarget": name, "ready": not was_ready, "why": heartbeat},
                )
        self._publish(cluster, name, obj, conditions, now)
        # Wake up just after the heartbeat expires; a newer heartbeat reconciles (and reschedules) sooner.
        return None if expires is None else requeue(expires - now + 0.05)

    def _excused(self, key: str, status: dict[str, Any], now: float) -> float:
        """Seconds since the last heartbeat during which the hub could not receive one (it was stalled, or not yet
        started). Only a healthy target is excused; an unhealthy one stays so until it heartbeats."""
        beat = status.get("lastSyncerHeartbeatTime")
        last = parse_time(beat)
        if last is None or not is_true(status.get("conditions"), CONDITION_HEARTBEAT_HEALTHY):
            return 0.0
        excused = self.loop_watch.stalled_between(last, now)
        stored = self._stored_at_start.get(key)
        if stored is not None:
            if stored == beat:
                excused = max(excused, self.loop_watch.started - last)
            else:
                del self._stored_at_start[key]  # a heartbeat arrived since the start
        return excused

    def _publish(
        self, cluster: str, name: str, obj: dict[str, Any], conditions: list[dict[str, Any]], now: float
    ) -> None:
        status = obj.get("status") or {}
        target = Target.from_object(obj, cluster, "")
        last = parse_time(status.get("lastSyncerHeartbeatTime"))
        counters = status.get("syncerStatus") or {}
        score = health.health_score(
            is_true(conditions, CONDITION_READY),
            now - last if last is not None else None,
            self.threshold,
            int(counters.get("syncedResources") or 0),
            int(counters.get("pendingResources") or 0),
            int(counters.get("failedResources") or 0),
            target.utilization(),
        )
        metrics.publish(
            cluster,
            name,
            str((obj["metadata"].get("labels") or {}).get(REGION_LABEL) or ""),
            parse_resource_list(status.get("capacity")),
            dict(target.allocatable),
            dict(target.allocated),
            score,
        )
