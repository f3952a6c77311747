"""Namespace deletion: a Terminating namespace's content is deleted, then its `kubernetes` finalizer removed."""

from __future__ import annotations

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.controllers.runtime import Controller, Result, requeue
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import NAMESPACES, ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-namespace-controller"  # the field manager its writes are recorded under

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace"
    prefix = NAMESPACES.key_prefix(None)

    def __init__(self, store: Store, registry: ResourceRegistry, service: ObjectService) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service

    def keys_for(self, event: Event) -> tuple[str, ...]:
        if event.type == "DELETED":
            return ()
        return (event.key,)

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        md = entry.obj["metadata"]
        if not md.get("deletionTimestamp") or FINALIZER not in ((entry.obj.get("spec") or {}).get("finalizers") or []):
            return None
        cluster = cluster_of_key(key)
        namespace = str(md["name"])
        await self._delete_content(cluster, namespace)
        if self._has_content(cluster, namespace):
            return requeue(0.5)  # objects with finalizers take time to go; look again shortly
        finalizers = [f for f in (entry.obj.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {"metadata": {"name": namespace}, "spec": {"finalizers": finalizers}}
        await self.service.update(
            NAMESPACES, cluster, None, namespace, body, WriteOptions(field_manager=FIELD_MANAGER), "finalize"
        )
        return None

    def _namespaced_prefixes(self, cluster: str, namespace: str) -> dict[str, ResourceInfo]:
        """One storage prefix per namespaced resource (several served versions share one)."""
        return {
            info.key_prefix(cluster, namespace): info for info in self.registry.resources(cluster) if info.namespaced
        }

    async def _delete_content(self, cluster: str, namespace: str) -> None:
        for prefix, info in self._namespaced_prefixes(cluster, namespace).items():
            for item in list(self.store.list(prefix)):
                item_md = item.obj["metadata"]
                if item_md.get("deletionTimestamp"):
                    continue  # already deleting; its finalizers decide when it goes
                with errors.ignore_not_found():
                    await self.service.delete(info, cluster, namespace, str(item_md["name"]), {})

    def _has_content(self, cluster: str, namespace: str) -> bool:
        return any(self.store.count(prefix) for prefix in self._namespaced_prefixes(cluster, namespace))
