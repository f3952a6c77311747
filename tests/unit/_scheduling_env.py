"""In-process hub for the scheduling controller tests: SqliteStore + ResourceRegistry + ObjectService + the
scheduling controllers, with helpers that write through ObjectService and poll the store with a deadline."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tmc.api.scheduling import LOCATIONS, PLACEMENTS
from tmc.api.workload import SYNC_TARGETS, state_label, status_diff_annotation
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.controllers.runtime import Controller
from tmc.controllers.wiring import scheduling_controllers
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import MERGE_PATCH, NAMESPACES, ObjectService, WriteOptions
from tmc.storage.sqlite import SqliteStore

T = TypeVar("T")
DEPLOYMENTS = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")
CONFIGMAPS = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps")
SECRETS = next(r for r in BUILTIN_RESOURCES if r.plural == "secrets")
EVENTS = next(r for r in BUILTIN_RESOURCES if r.plural == "events" and r.group == "")
REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
LOCATION_RESOURCE = {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}


def rfc3339(epoch: float) -> str:
    """RFC 3339 in UTC; whole seconds unless `epoch` has a fraction, which is kept to the millisecond."""
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    if epoch == int(epoch):
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Env:
    def __init__(self, tmp: Path, heartbeat_threshold: float = 300.0, not_ready_grace: float = 1.0) -> None:
        self.tmp = tmp
        self.threshold = heartbeat_threshold
        self.grace = not_ready_grace
        self.controllers: list[Controller] = []

    async def __aenter__(self) -> Env:
        self.store = SqliteStore(str(self.tmp / "tmc.db"), compact_interval=0)
        await self.store.start()
        self.registry = ResourceRegistry(self.store)
        self.service = ObjectService(self.store, self.registry)
        await self.service.ensure_namespace("root", "default")
        self.controllers = scheduling_controllers(
            self.store, self.registry, self.service, heartbeat_threshold=self.threshold, not_ready_grace=self.grace
        )
        for c in self.controllers:
            await c.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.controllers:
            await c.stop()
        await self.store.close()

    # ------------------------------------------------------------- reads and polling

    def get(self, info: ResourceInfo, name: str, ns: str | None = None, ws: str = "root") -> dict[str, Any] | None:
        entry = self.store.get(info.key(ws, ns, name))
        return entry.obj if entry else None

    async def until(self, probe: Callable[[], T | None], what: str, timeout: float = 5.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    def decisions(self, placement: str, ws: str = "root") -> list[dict[str, Any]]:
        obj = self.get(PLACEMENTS, placement, ws=ws) or {}
        return list((obj.get("status") or {}).get("decisions") or [])

    def decided_names(self, placement: str, ws: str = "root") -> list[str]:
        return sorted(d["syncTarget"]["name"] for d in self.decisions(placement, ws))

    def keys_on(self, info: ResourceInfo, name: str, ns: str | None = None, ws: str = "root") -> dict[str, str]:
        """key -> state for each state label on the object."""
        labels = ((self.get(info, name, ns, ws) or {}).get("metadata") or {}).get("labels") or {}
        prefix = "state.workload.kcp.io/"
        return {k[len(prefix) :]: v for k, v in labels.items() if k.startswith(prefix)}

    def annotations(self, info: ResourceInfo, name: str, ns: str | None = None, ws: str = "root") -> dict[str, str]:
        return dict(((self.get(info, name, ns, ws) or {}).get("metadata") or {}).get("annotations") or {})

    def events_about(self, name: str, ns: str = "default", ws: str = "root") -> list[dict[str, Any]]:
        return [
            e.obj
            for e in self.store.list(EVENTS.key_prefix(ws, ns))
            if (e.obj.get("involvedObject") or {}).get("name") == name
        ]

    # ------------------------------------------------------------- writes

    async def target(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        *,
        ws: str = "root",
        ready: bool = True,
        spec: dict[str, Any] | None = None,
        status: dict[str, Any] | None = None,
    ) -> str:
        """Create a SyncTarget (Ready through a fresh heartbeat, or NotReady through a stale one); returns its key."""
        body = {"metadata": {"name": name, "labels": labels or {}}, "spec": spec or {}}
        await self.service.create(SYNC_TARGETS, ws, None, body, WriteOptions())
        await self.heartbeat(name, ws=ws, ready=ready, extra=status)
        await self.until(lambda: self.ready(name, ws) is ready, f"SyncTarget {name} Ready={ready}")
        return sync_target_key(ws, name)

    def ready(self, name: str, ws: str = "root") -> bool | None:
        """The Ready condition as a bool, None while the heartbeat controller has not set it."""
        conditions = ((self.get(SYNC_TARGETS, name, ws=ws) or {}).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        return None if ready is None else ready.get("status") == "True"

    async def heartbeat(
        self, name: str, *, ws: str = "root", ready: bool = True, extra: dict[str, Any] | None = None
    ) -> None:
        beat = time.time() if ready else time.time() - 10 * self.threshold
        patch = {"status": {"lastSyncerHeartbeatTime": rfc3339(beat), **(extra or {})}}
        await self.service.patch(
            SYNC_TARGETS, ws, None, name, MERGE_PATCH, orjson.dumps(patch), WriteOptions(), "status"
        )

    async def patch(
        self, info: ResourceInfo, name: str, patch: dict[str, Any], ns: str | None = None, ws: str = "root"
    ) -> None:
        await self.service.patch(info, ws, ns, name, MERGE_PATCH, orjson.dumps(patch), WriteOptions())

    async def location(
        self, name: str, labels: dict[str, str] | None = None, selector: dict[str, Any] | None = None, ws: str = "root"
    ) -> None:
        body = {
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"resource": LOCATION_RESOURCE, "instanceSelector": {} if selector is None else selector},
        }
        await self.service.create(LOCATIONS, ws, None, body, WriteOptions())

    async def placement(self, name: str, spec: dict[str, Any], ws: str = "root") -> None:
        full = {"locationResource": LOCATION_RESOURCE, "namespaceSelector": {}, **spec}
        await self.service.create(PLACEMENTS, ws, None, {"metadata": {"name": name}, "spec": full}, WriteOptions())

    async def namespace(self, name: str, labels: dict[str, str] | None = None, ws: str = "root") -> None:
        body = {"metadata": {"name": name, "labels": labels or {}}}
        await self.service.create(NAMESPACES, ws, None, body, WriteOptions())

    async def deployment(
        self,
        ns: str,
        name: str,
        replicas: int = 1,
        *,
        labels: dict[str, str] | None = None,
        pod: dict[str, Any] | None = None,
        ws: str = "root",
    ) -> None:
        pod_spec = {"containers": [{"name": "app", "image": "nginx"}], **(pod or {})}
        body = {
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            },
        }
        await self.service.create(DEPLOYMENTS, ws, ns, body, WriteOptions())

    async def configmap(self, ns: str, name: str, ws: str = "root") -> None:
        await self.service.create(CONFIGMAPS, ws, ns, {"metadata": {"name": name}, "data": {"k": "v"}}, WriteOptions())

    async def report(self, ns: str, deployment: str, key: str, available: int, ws: str = "root") -> None:
        """What a syncer writes: the target's view of the status in diff.syncer.internal.kcp.io/<key>."""
        view = {"status": {"replicas": available, "readyReplicas": available, "availableReplicas": available}}
        await self.patch(
            DEPLOYMENTS,
            deployment,
            {"metadata": {"annotations": {status_diff_annotation(key): orjson.dumps(view).decode()}}},
            ns,
            ws,
        )


__all__ = ["Env", "state_label"]
