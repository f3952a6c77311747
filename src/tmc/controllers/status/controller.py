"""Hub status aggregation: writes each assigned object's `.status` from its per-target reports (see aggregate.py).

Watches every object in the store, but only objects that take part in the placement protocol (a
`state.workload.kcp.io/*` label or a `diff.syncer.internal.kcp.io/*` annotation) are queued, and a reconcile that
computes the status already stored writes nothing, so the controller's own writes settle after one extra pass.

SyncTargets are watched too: the reports of a target that is not Ready are left out of the sums, so when a target
turns Ready or not Ready every object carrying its state label is summed again.
"""

from __future__ import annotations

import logging
from typing import Any

from tmc.api.workload import CONDITION_READY, SYNC_TARGETS, state_label
from tmc.apimachinery.conditions import is_true
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.controllers.runtime import Controller
from tmc.controllers.status.aggregate import aggregate_status, has_target_metadata
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-status-aggregator"  # the field manager its writes are recorded under

log = logging.getLogger("tmc.controllers.status")

_TARGET_PREFIX = SYNC_TARGETS.key_prefix(None)


class StatusAggregationController(Controller):
    """`StatusAggregationController(store, registry, service)`; start it with the hub's other controllers."""

    name = "status-aggregation"
    prefix = "/registry/"
    conflict_retry = 0.01
    workers = 2

    def __init__(self, store: Store, registry: ResourceRegistry, service: ObjectService) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service
        self._unready: set[str] = set()  # keys of existing SyncTargets that are not Ready

    def _index_target(self, storage_key: str, obj: dict[str, Any] | None) -> bool:
        """Record a SyncTarget's readiness; True when it changed."""
        key = sync_target_key(cluster_of_key(storage_key), storage_key.rsplit("/", 1)[1])
        unready = obj is not None and not is_true((obj.get("status") or {}).get("conditions"), CONDITION_READY)
        if unready == (key in self._unready):
            return False
        if unready:
            self._unready.add(key)
        else:
            self._unready.discard(key)
        return True

    def keys_for(self, event: Event) -> tuple[str, ...]:
        if event.key.startswith(_TARGET_PREFIX):
            changed = self._index_target(event.key, None if event.type == "DELETED" else event.obj)
            # A new target holds nothing yet and a deleted one's labels are removed by the assignment controller;
            # re-summing (a store scan, done in reconcile, off the watch loop) is for readiness changes.
            return (event.key,) if changed and event.type == "MODIFIED" else ()
        if event.type == "DELETED" or not has_target_metadata(event.obj):
            return ()
        return (event.key,)

    def initial_keys(self) -> list[str]:
        for entry in self.store.list(_TARGET_PREFIX):
            self._index_target(entry.key, entry.obj)
        return [e.key for e in self.store.list(self.prefix) if has_target_metadata(e.obj)]

    def _resource(self, key: str) -> tuple[ResourceInfo, str, str, str] | None:
        """(info, cluster, namespace, name) of a namespaced object's storage key, or None for anything else."""
        parts = key.split("/")
        if len(parts) != 7:  # "", "registry", group, resource, cluster, namespace, name
            return None
        _, _, group, plural, cluster, namespace, name = parts
        group = "" if group == "core" else group
        candidates = [
            r
            for r in self.registry.resources(cluster)
            if r.group == group and r.plural == plural and r.namespaced and "status" in r.subresources
        ]
        if not candidates:
            return None
        info = next((r for r in candidates if r.storage_version and r.version == r.storage_version), candidates[0])
        return info, cluster, namespace, name

    def _requeue_holders(self, target_storage_key: str) -> None:
        """Queue every object carrying the target's state label (its readiness changed)."""
        label = state_label(sync_target_key(cluster_of_key(target_storage_key), target_storage_key.rsplit("/", 1)[1]))
        for entry in self.store.list(self.prefix):
            if label in ((entry.obj.get("metadata") or {}).get("labels") or {}):
                self.queue.add(entry.key)

    async def reconcile(self, key: str) -> None:
        if key.startswith(_TARGET_PREFIX):
            self._requeue_holders(key)
            return
        entry = self.store.get(key)
        if entry is None:
            return
        resolved = self._resource(key)
        if resolved is None:
            return
        info, cluster, namespace, name = resolved
        status = aggregate_status(info.group, info.kind, entry.obj, self._unready)
        if status is None or status == entry.obj.get("status"):
            return
        body = dict(self.service.served(info, entry.obj))
        body["metadata"] = {**body["metadata"], "resourceVersion": str(entry.rev)}
        body["status"] = status
        # A 409 (changed under us) looks again after `conflict_retry`: the newer state is queued anyway.
        await self.service.update(
            info, cluster, namespace, name, body, WriteOptions(field_manager=FIELD_MANAGER), "status"
        )
