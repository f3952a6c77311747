"""What the rollback controller's parts share: the store and service, the object kinds it reads and writes, and
small helpers over storage keys and time."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from tmc.api.rollback import (
    REVISION_LABEL,
    ROLLBACK_POLICIES,
    WORKLOAD_KIND_LABEL,
    WORKLOAD_NAME_LABEL,
    WORKLOAD_REVISIONS,
)
from tmc.apimachinery import meta
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.controllers.placement.events import EventRecorder
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService, WriteOptions
from tmc.storage.interface import Store

FIELD_MANAGER = "tmc-rollback"
CONFIGMAPS = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "configmaps")
SECRETS = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "secrets")


@dataclass(frozen=True)
class WorkloadKey:
    """A namespaced object's storage key, taken apart: /registry/<group|core>/<plural>/<cluster>/<ns>/<name>."""

    group: str
    plural: str
    cluster: str
    namespace: str
    name: str

    @staticmethod
    def parse(key: str) -> WorkloadKey | None:
        parts = key.split("/")
        if len(parts) != 7 or parts[1] != "registry":
            return None
        _, _, group, plural, cluster, namespace, name = parts
        return WorkloadKey("" if group == "core" else group, plural, cluster, namespace, name)

    def sibling(self, info: ResourceInfo, name: str) -> str:
        return info.key(self.cluster, self.namespace, name)


@dataclass(frozen=True)
class Pending:
    """A restore in flight: the revision it will produce is recorded with this cause instead of the writer's."""

    fingerprint: str
    cause: str
    rollback_to: int
    automatic: bool
    user: str
    started: float


@dataclass
class Shared:
    store: Store
    registry: ResourceRegistry
    service: ObjectService
    events: EventRecorder
    pending: dict[str, Pending] = field(default_factory=dict)  # workload key -> restore in flight
    target_names: dict[str, str] = field(default_factory=dict)  # SyncTarget key -> name
    # Revision uid -> (when its status was last written, the status seen since): see tracker.track.
    progress: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    opts: WriteOptions = field(default_factory=lambda: WriteOptions(field_manager=FIELD_MANAGER))

    def info(self, wk: WorkloadKey) -> ResourceInfo | None:
        candidates = [
            r
            for r in self.registry.resources(wk.cluster)
            if r.group == wk.group and r.plural == wk.plural and r.namespaced
        ]
        if not candidates:
            return None
        return next((r for r in candidates if r.storage_version and r.version == r.storage_version), candidates[0])

    def revisions(self, wk: WorkloadKey, kind: str) -> list[dict[str, Any]]:
        """The workload's WorkloadRevisions, oldest first."""
        out = []
        for entry in self.store.list(WORKLOAD_REVISIONS.key_prefix(wk.cluster, wk.namespace)):
            labels = (entry.obj.get("metadata") or {}).get("labels") or {}
            if labels.get(WORKLOAD_KIND_LABEL) == kind.lower() and labels.get(WORKLOAD_NAME_LABEL) == wk.name:
                out.append(entry.obj)
        return sorted(out, key=lambda r: int((r.get("metadata") or {}).get("labels", {}).get(REVISION_LABEL, 0)))

    def policy_for(self, wk: WorkloadKey, kind: str) -> dict[str, Any] | None:
        for entry in self.store.list(ROLLBACK_POLICIES.key_prefix(wk.cluster, wk.namespace)):
            ref = (entry.obj.get("spec") or {}).get("targetRef") or {}
            if ref.get("kind") == kind and ref.get("name") == wk.name:
                return entry.obj
        return None

    def named(self, info: ResourceInfo, wk: WorkloadKey) -> dict[str, dict[str, Any]]:
        """The namespace's objects of one kind, by name."""
        return {
            str(e.obj["metadata"]["name"]): e.obj for e in self.store.list(info.key_prefix(wk.cluster, wk.namespace))
        }

    def named_some(self, plural: str, wk: WorkloadKey, names: list[str]) -> dict[str, dict[str, Any]]:
        """ConfigMaps or Secrets of the workload's namespace, by name, of those that exist."""
        info = CONFIGMAPS if plural == "configmaps" else SECRETS
        out = {}
        for name in names:
            entry = self.store.get(info.key(wk.cluster, wk.namespace, name))
            if entry is not None:
                out[name] = entry.obj
        return out


def stamp(t: float) -> str:
    """RFC 3339 with milliseconds: revision timings are shorter than a second in small fleets."""
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_stamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return meta.parse_time(value)


def now() -> float:
    return time.time()
