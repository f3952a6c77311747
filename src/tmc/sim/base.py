"""What the simulated controllers share: resource handles, the settings, and writes through ObjectService that
turn lost races into a quiet re-queue instead of a logged failure."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery import errors
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.controllers.runtime import Controller
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Entry, Event, Store

FIELD_MANAGER = "tmc-sim"  # the field manager its writes are recorded under


def _builtin(group: str, plural: str) -> ResourceInfo:
    return next(r for r in BUILTIN_RESOURCES if r.group == group and r.plural == plural)


PODS = _builtin("", "pods")
NODES = _builtin("", "nodes")
DEPLOYMENTS = _builtin("apps", "deployments")
REPLICASETS = _builtin("apps", "replicasets")
STATEFULSETS = _builtin("apps", "statefulsets")
DAEMONSETS = _builtin("apps", "daemonsets")
JOBS = _builtin("batch", "jobs")
_BY_KIND = {info.kind: info for info in (REPLICASETS, STATEFULSETS, DAEMONSETS, JOBS, DEPLOYMENTS)}
RETRY_SECONDS = 0.02
_QUIET_CODES = frozenset({403, 404})  # object or namespace gone / namespace terminating: the next event decides


@dataclass(frozen=True)
class SimSettings:
    name: str  # the simulated cluster's name (node names, kubeconfig context)
    cluster: str  # the logical cluster the plain URL layout serves, as stored in keys
    ready_delay: float


def split_key(key: str) -> tuple[str | None, str]:
    """(namespace, name) of a storage key."""
    parts = key.split("/")
    return (parts[5] if len(parts) == 7 else None), parts[-1]


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    md = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deleting(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def now() -> float:
    return time.time()


class SimController(Controller):
    """A controller over one kind (`info`) whose objects are keyed by storage key."""

    prefix = "/registry/"
    info: ResourceInfo = PODS
    workers = 2
    # A member cluster runs as one process with nothing to elect; its writes refused for good (403: the namespace
    # is terminating) or on vanished objects (404) end a reconcile, and a conflict looks again shortly.
    needs_leader_election = False
    quiet_codes = _QUIET_CODES
    conflict_retry = RETRY_SECONDS

    def __init__(self, store: Store, service: ObjectService, settings: SimSettings) -> None:
        super().__init__(store)
        self.service = service
        self.settings = settings

    @property
    def cluster(self) -> str:
        return self.settings.cluster

    def initial_keys(self) -> Iterable[str]:
        return [entry.key for entry in self.store.list(self.info.key_prefix(self.cluster))]

    def own_key(self, event: Event) -> bool:
        return event.key.startswith(self.info.key_prefix(self.cluster))

    def owner_key(self, obj: dict[str, Any], kind: str) -> str | None:
        """Storage key of obj's controlling owner when it is a `kind`."""
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind or kind not in _BY_KIND:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace")
        return _BY_KIND[kind].key(self.cluster, namespace, str(ref.get("name")))

    def keys_for(self, event: Event) -> Iterable[str]:
        if self.own_key(event):
            return (event.key,)
        if event.key.startswith(PODS.key_prefix(self.cluster)):
            owner = self.owner_key(event.obj, self.info.kind)
            return (owner,) if owner else ()
        return ()

    # ------------------------------------------------------------ reads

    def owned(self, info: ResourceInfo, namespace: str | None, uid: str) -> list[dict[str, Any]]:
        """Objects of `info` in `namespace` whose controller is `uid`, read from the store (always current, so
        no expectations bookkeeping is needed between a write and its watch event)."""
        out = []
        # Every object of the kind in the namespace is visited; a substring test on its stored bytes skips the
        # ones that cannot mention the owner without walking their metadata (most of them, in a busy namespace).
        needle = uid.encode()
        for entry in self.store.list(info.key_prefix(self.cluster, namespace)):
            if needle not in entry.raw:
                continue
            ref = controller_ref(entry.obj)
            if ref is not None and ref.get("uid") == uid:
                out.append(entry.obj)
        return out

    def entry(self, key: str) -> Entry | None:
        return self.store.get(key)

    # ------------------------------------------------------------ writes

    async def create(self, info: ResourceInfo, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self.service.create(info, self.cluster, namespace, body, WriteOptions(field_manager=FIELD_MANAGER))

    async def create_all(self, info: ResourceInfo, namespace: str | None, bodies: list[dict[str, Any]]) -> None:
        """Concurrent creates, so the storage writer commits them in one batch."""
        if bodies:
            await asyncio.gather(*(self.create(info, namespace, body) for body in bodies))

    async def update(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """Write `obj` (carrying the resourceVersion it was read at: a lost race is a 409, re-queued)."""
        md = obj["metadata"]
        return await self.service.update(
            info, self.cluster, md.get("namespace"), md["name"], obj, WriteOptions(field_manager=FIELD_MANAGER)
        )

    async def write_status(self, info: ResourceInfo, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        if obj.get("status") == status:
            return obj
        md = obj["metadata"]
        body = {
            "metadata": {
                "name": md["name"],
                "namespace": md.get("namespace"),
                "resourceVersion": md["resourceVersion"],
            },
            "status": status,
        }
        if not info.namespaced:
            del body["metadata"]["namespace"]
        return await self.service.update(
            info,
            self.cluster,
            md.get("namespace"),
            md["name"],
            body,
            WriteOptions(field_manager=FIELD_MANAGER),
            "status",
        )

    async def delete(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        try:
            await self.service.delete(
                info, self.cluster, md.get("namespace"), md["name"], {"preconditions": {"uid": md["uid"]}}
            )
        except errors.StatusError as e:
            if e.code not in (404, 409):  # already gone, or replaced by a new object of the same name
                raise

    async def delete_all(self, info: ResourceInfo, objs: list[dict[str, Any]]) -> None:
        if objs:
            await asyncio.gather(*(self.delete(info, obj) for obj in objs))


def pod_from_template(
    owner: dict[str, Any], template: dict[str, Any], *, name: str = "", generate_name: str = ""
) -> dict[str, Any]:
    """A Pod body from a workload's template, controlled by `owner` (labels and annotations carried over, so
    the fault annotations on a template reach its pods)."""
    tmd = template.get("metadata") or {}
    md: dict[str, Any] = {
        "namespace": owner["metadata"].get("namespace"),
        "labels": dict(tmd.get("labels") or {}),
        "ownerReferences": [owner_reference(owner)],
    }
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if name:
        md["name"] = name
    else:
        md["generateName"] = generate_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}
