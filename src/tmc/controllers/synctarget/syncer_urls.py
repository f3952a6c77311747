"""Publishes each SyncTarget's syncer virtual workspace URL in `status.virtualWorkspaces` (kcp's synctarget controller).

The hub has one shard, so there is one entry: `<external URL>/services/syncer/<workspace>/<name>/<uid>`. The syncer
reads it at start-up; it can also compute the same URL from its hub kubeconfig when the field is not there yet.
"""

from __future__ import annotations

from typing import Any

from tmc.api.workload import SYNC_TARGETS
from tmc.apimachinery.resources import cluster_of_key
from tmc.controllers.runtime import Controller, Result, requeue
from tmc.protocol.keys import syncer_vw_path
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-synctarget-controller"  # the field manager its writes are recorded under


def syncer_url(external_url: str, workspace: str, name: str, uid: str) -> str:
    return external_url.rstrip("/") + syncer_vw_path(workspace, name, uid)


class SyncerURLController(Controller):
    """`SyncerURLController(store, service)`: keeps `status.virtualWorkspaces[].syncerURL` of every SyncTarget."""

    name = "synctarget-urls"
    prefix = SYNC_TARGETS.key_prefix(None)
    conflict_retry = 0.01

    def __init__(self, store: Store, service: ObjectService) -> None:
        super().__init__(store)
        self.service = service

    def keys_for(self, event: Event) -> tuple[str, ...]:
        return () if event.type == "DELETED" else (event.key,)

    async def reconcile(self, key: str) -> Result | None:
        if not self.service.external_url:
            return requeue(0.2)  # the listener is not bound yet, so the URL is not known
        entry = self.store.get(key)
        if entry is None:
            return None
        md = entry.obj["metadata"]
        workspace, name = cluster_of_key(key), str(md["name"])
        wanted = [{"syncerURL": syncer_url(self.service.external_url, workspace, name, str(md.get("uid", "")))}]
        status: dict[str, Any] = dict(entry.obj.get("status") or {})
        if status.get("virtualWorkspaces") == wanted:
            return None
        status["virtualWorkspaces"] = wanted
        body = {**entry.obj, "metadata": {**md, "resourceVersion": str(entry.rev)}, "status": status}
        await self.service.update(
            SYNC_TARGETS, workspace, None, name, body, WriteOptions(field_manager=FIELD_MANAGER), "status"
        )
        return None
