"""Workspace deletion: removes every object of the child logical cluster (and of its descendants), then the
Workspace's finalizer, so deleting a workspace deletes its contents."""

from __future__ import annotations

from tmc.api.tenancy import WORKSPACE_FINALIZER, WORKSPACES
from tmc.apimachinery import meta
from tmc.apimachinery.resources import cluster_of_key
from tmc.controllers.runtime import Controller
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Event, KeyNotFoundError, Store

FIELD_MANAGER = "tmc-workspace-controller"  # the field manager its writes are recorded under


class WorkspaceController(Controller):
    name = "workspace"
    prefix = WORKSPACES.key_prefix(None)

    def __init__(self, store: Store, service: ObjectService) -> None:
        super().__init__(store)
        self.service = service

    def keys_for(self, event: Event) -> tuple[str, ...]:
        return () if event.type == "DELETED" else (event.key,)

    async def reconcile(self, key: str) -> None:
        entry = self.store.get(key)
        if entry is None:
            return
        md = entry.obj["metadata"]
        if not md.get("deletionTimestamp") or WORKSPACE_FINALIZER not in (md.get("finalizers") or []):
            return
        child = str((entry.obj.get("spec") or {}).get("cluster") or f"{cluster_of_key(key)}:{md['name']}")
        for item in list(self.store.list("/registry/")):
            cluster = cluster_of_key(item.key)
            if cluster == child or cluster.startswith(child + ":"):
                try:
                    await self.store.delete(item.key)
                except KeyNotFoundError:
                    pass
        body = meta.deep_copy(entry.obj)
        body["metadata"]["finalizers"] = [f for f in md.get("finalizers") or [] if f != WORKSPACE_FINALIZER]
        await self.service.update(
            WORKSPACES, cluster_of_key(key), None, str(md["name"]), body, WriteOptions(field_manager=FIELD_MANAGER)
        )
