"""Garbage collection by ownerReferences, per workspace: Background, Foreground and Orphan propagation.

The collector keeps an index of every object's uid and owners from the store's event stream, so finding the
dependents of a deleted owner is a lookup, not a scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tmc.apimachinery import errors, meta
from tmc.apimachinery.resources import ResourceInfo
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-garbage-collector"  # the field manager its writes are recorded under

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


def _uid(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r.get("uid")) for r in refs if isinstance(r, dict) and r.get("uid")]


def _deleting_with(obj: dict[str, Any], finalizer: str) -> bool:
    md = obj.get("metadata") or {}
    return bool(md.get("deletionTimestamp")) and finalizer in (md.get("finalizers") or [])


class GarbageCollector(Controller):
    name = "garbagecollector"
    prefix = "/registry/"

    def __init__(self, store: Store, registry: ResourceRegistry, service: ObjectService) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service
        self._key_of_uid: dict[str, str] = {}
        self._dependents: dict[str, set[str]] = {}
        self._owners_of: dict[str, list[str]] = {}

    # ------------------------------------------------------------ index

    def _index(self, key: str, obj: dict[str, Any]) -> None:
        self._unindex_owners(key)
        uid = _uid(obj)
        if uid:
            self._key_of_uid[uid] = key
        owners = _owner_uids(obj)
        if owners:
            self._owners_of[key] = owners
            for owner in owners:
                self._dependents.setdefault(owner, set()).add(key)

    def _unindex_owners(self, key: str) -> None:
        for owner in self._owners_of.pop(key, []):
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self._dependents[owner]

    def initial_keys(self) -> Iterable[str]:
        keys: list[str] = []
        for entry in self.store.list(self.prefix):
            self._index(entry.key, entry.obj)
            if _deleting_with(entry.obj, ORPHAN) or _deleting_with(entry.obj, FOREGROUND):
                keys.append("owner:" + entry.key)
        keys.extend("dep:" + key for key in self._owners_of)
        return keys

    def observe(self, event: Event) -> None:
        if event.type == "DELETED":
            self._unindex_owners(event.key)
            uid = _uid(event.obj)
            if self._key_of_uid.get(uid) == event.key:
                del self._key_of_uid[uid]
        else:
            self._index(event.key, event.obj)

    def keys_for(self, event: Event) -> Iterable[str]:
        keys: list[str] = []
        uid = _uid(event.obj)
        if event.type == "DELETED":
            keys.extend("dep:" + dep for dep in self._dependents.get(uid, ()))
            # An owner waiting in foreground deletion may now be free to go.
            for owner in _owner_uids(event.obj):
                owner_key = self._key_of_uid.get(owner)
                if owner_key:
                    keys.append("owner:" + owner_key)
            return keys
        if event.key in self._owners_of:
            keys.append("dep:" + event.key)
        if _deleting_with(event.obj, ORPHAN) or _deleting_with(event.obj, FOREGROUND):
            keys.append("owner:" + event.key)
            keys.extend("dep:" + dep for dep in self._dependents.get(uid, ()))
        return keys

    # ------------------------------------------------------------ reconcile

    def _info_for(self, key: str) -> tuple[ResourceInfo, str, str | None, str] | None:
        parts = key.split("/")
        if len(parts) not in (6, 7):
            return None
        group = "" if parts[2] == "core" else parts[2]
        plural, cluster = parts[3], parts[4]
        namespace = parts[5] if len(parts) == 7 else None
        for info in self.registry.resources(cluster):
            if info.group == group and info.plural == plural:
                return info, cluster, namespace, parts[-1]
        return None

    async def reconcile(self, key: str) -> None:
        tag, _, object_key = key.partition(":")
        if tag == "dep":
            await self._check_dependent(object_key)
        else:
            await self._process_owner(object_key)

    async def _check_dependent(self, key: str) -> None:
        entry = self.store.get(key)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            return
        owners = _owner_uids(entry.obj)
        if not owners:
            return
        living = [self.store.get(self._key_of_uid[u]) for u in owners if u in self._key_of_uid]
        alive = [e for e in living if e is not None]
        if alive and not all(_deleting_with(e.obj, FOREGROUND) for e in alive):
            return
        await self._delete(key, "Foreground" if alive else "Background")

    async def _delete(self, key: str, policy: str) -> None:
        found = self._info_for(key)
        if found is None:
            return
        info, cluster, namespace, name = found
        with errors.ignore_not_found():  # one of several dependents: the others still need deleting
            await self.service.delete(info, cluster, namespace, name, {"propagationPolicy": policy})

    async def _process_owner(self, key: str) -> None:
        entry = self.store.get(key)
        if entry is None:
            return
        uid = _uid(entry.obj)
        dependents = [k for k in self._dependents.get(uid, set()) if self.store.get(k) is not None]
        if _deleting_with(entry.obj, ORPHAN):
            for dep in dependents:
                await self._drop_owner_reference(dep, uid)
            await self._remove_finalizer(key, ORPHAN)
        elif _deleting_with(entry.obj, FOREGROUND):
            if dependents:
                for dep in dependents:
                    await self._check_dependent(dep)
                return  # the dependents' DELETED events bring this owner back
            await self._remove_finalizer(key, FOREGROUND)

    async def _drop_owner_reference(self, key: str, owner_uid: str) -> None:
        found = self._info_for(key)
        entry = self.store.get(key)
        if found is None or entry is None:
            return
        info, cluster, namespace, name = found
        body = meta.deep_copy(entry.obj)
        refs = body["metadata"].get("ownerReferences") or []
        body["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
        if not body["metadata"]["ownerReferences"]:
            del body["metadata"]["ownerReferences"]
        await self.service.update(info, cluster, namespace, name, body, WriteOptions(field_manager=FIELD_MANAGER))

    async def _remove_finalizer(self, key: str, finalizer: str) -> None:
        found = self._info_for(key)
        entry = self.store.get(key)
        if found is None or entry is None:
            return
        info, cluster, namespace, name = found
        body = meta.deep_copy(entry.obj)
        body["metadata"]["finalizers"] = [f for f in body["metadata"].get("finalizers") or [] if f != finalizer]
        await self.service.update(info, cluster, namespace, name, body, WriteOptions(field_manager=FIELD_MANAGER))
