"""Hub status aggregation: writes each assigned object's `.status` from its per-target reports (see aggregate.py).

Watches every namespaced object in the store, but only objects that take part in the placement protocol (a
`state.workload.kcp.io/*` label or a `diff.syncer.internal.kcp.io/*` annotation) are queued, and a reconcile that
computes the status already stored writes nothing, so the controller's own writes settle after one extra pass.
"""

from __future__ import annotations

import logging

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo
from tmc.apiserver.registry import ResourceRegistry
from tmc.apiserver.rest import ObjectService, WriteOptions
from tmc.controllers.runtime import Controller
from tmc.controllers.status.aggregate import aggregate_status, has_target_metadata
from tmc.storage.interface import Event, Store

log = logging.getLogger("tmc.controllers.status")


class StatusAggregationController(Controller):
    """`StatusAggregationController(store, registry, service)`; start it with the hub's other controllers."""

    name = "status-aggregation"
    prefix = "/registry/"
    workers = 2

    def __init__(self, store: Store, registry: ResourceRegistry, service: ObjectService) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service

    def keys_for(self, event: Event) -> tuple[str, ...]:
        if event.type == "DELETED" or not has_target_metadata(event.obj):
            return ()
        return (event.key,)

    def initial_keys(self) -> list[str]:
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

    async def reconcile(self, key: str) -> None:
        entry = self.store.get(key)
        if entry is None:
            return
        resolved = self._resource(key)
        if resolved is None:
            return
        info, cluster, namespace, name = resolved
        status = aggregate_status(info.group, info.kind, entry.obj)
        if status is None or status == entry.obj.get("status"):
            return
        body = dict(self.service.served(info, entry.obj))
        body["metadata"] = {**body["metadata"], "resourceVersion": str(entry.rev)}
        body["status"] = status
        try:
            await self.service.update(info, cluster, namespace, name, body, WriteOptions(), "status")
        except errors.StatusError as e:
            if e.code == 404:
                return
            if e.code == 409:
                self.queue.add_after(key, 0.01)  # changed under us: the newer state is queued anyway
                return
            raise
