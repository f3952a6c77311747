"""Location status: `instances` (SyncTargets the instanceSelector matches in the Location's workspace) and
`availableInstances` (those that are also Ready and schedulable), plus the `scheduling.kcp.io/labels` annotation
that renders the Location's labels for a print column. Same rules as kcp's location-status controller."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from tmc.api.scheduling import LOCATION_LABELS_ANNOTATION, LOCATIONS
from tmc.api.workload import CONDITION_READY, SYNC_TARGETS
from tmc.apimachinery.conditions import is_true
from tmc.apimachinery.resources import cluster_of_key
from tmc.apimachinery.selectors import label_selector_from_object
from tmc.controllers.runtime import MultiPrefixController
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-location-controller"  # the field manager its writes are recorded under


def _labels_text(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()))


class LocationStatusController(MultiPrefixController):
    name = "location-status"
    prefixes = (LOCATIONS.key_prefix(None), SYNC_TARGETS.key_prefix(None))

    def __init__(self, store: Store, registry: ResourceRegistry, service: ObjectService) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service

    def initial_keys(self) -> Iterable[str]:
        return [entry.key for entry in self.store.list(LOCATIONS.key_prefix(None))]

    def keys_for(self, event: Event) -> Iterable[str]:
        if event.key.startswith(LOCATIONS.key_prefix(None)):
            return () if event.type == "DELETED" else (event.key,)
        # A SyncTarget changed: every Location of its workspace may count it differently now. Heartbeat-only
        # updates cannot change a count, so they are skipped.
        if event.prev is not None and event.type == "MODIFIED" and not _count_inputs_changed(event):
            return ()
        return [e.key for e in self.store.list(LOCATIONS.key_prefix(cluster_of_key(event.key)))]

    async def reconcile(self, key: str) -> None:
        entry = self.store.get(key)
        if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
            return
        cluster = cluster_of_key(key)
        obj = entry.obj
        md = obj["metadata"]
        name = str(md["name"])
        labels_text = _labels_text(md.get("labels") or {})
        if (md.get("annotations") or {}).get(LOCATION_LABELS_ANNOTATION) != labels_text:
            patch = {"metadata": {"annotations": {LOCATION_LABELS_ANNOTATION: labels_text}}}
            await self.service.patch(
                LOCATIONS,
                cluster,
                None,
                name,
                MERGE_PATCH,
                orjson.dumps(patch),
                WriteOptions(field_manager=FIELD_MANAGER),
            )
            return  # the annotation write comes back as an event; the status is handled then
        selector = label_selector_from_object((obj.get("spec") or {}).get("instanceSelector"))
        instances = available = 0
        for st in self.store.list(SYNC_TARGETS.key_prefix(cluster)):
            st_md = st.obj["metadata"]
            if not selector.matches(st_md.get("labels") or {}):
                continue
            instances += 1
            spec = st.obj.get("spec") or {}
            if is_true((st.obj.get("status") or {}).get("conditions"), CONDITION_READY) and not spec.get(
                "unschedulable"
            ):
                available += 1
        status = obj.get("status") or {}
        if status.get("instances") == instances and status.get("availableInstances") == available:
            return
        # ObjectService copies what it stores, so a shallow copy of the shared object is enough.
        body = {
            **obj,
            "metadata": {**obj["metadata"], "resourceVersion": str(entry.rev)},
            "status": {**status, "instances": instances, "availableInstances": available},
        }
        await self.service.update(
            LOCATIONS, cluster, None, name, body, WriteOptions(field_manager=FIELD_MANAGER), "status"
        )


def _count_inputs_changed(event: Event) -> bool:
    old, new = event.prev or {}, event.obj
    old_md, new_md = old.get("metadata") or {}, new.get("metadata") or {}
    if old_md.get("labels") != new_md.get("labels"):
        return True
    if bool((old.get("spec") or {}).get("unschedulable")) != bool((new.get("spec") or {}).get("unschedulable")):
        return True
    old_ready = is_true((old.get("status") or {}).get("conditions"), CONDITION_READY)
    return old_ready != is_true((new.get("status") or {}).get("conditions"), CONDITION_READY)
